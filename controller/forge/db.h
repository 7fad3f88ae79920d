// The forge's connection to the kiln store (docs/store.md, tables forge_*
// and events): opened the way the run store opens it (WAL, NORMAL sync, a
// busy timeout) and migrated, so the forge works whether or not the run
// store has opened the file before.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/store/sql.h"

namespace kiln::forge::db {

// How long a writer waits for another connection's write lock.
inline constexpr int kBusyTimeoutMs = 5'000;

// Opens (creating if needed) the store at path and brings its schema up to
// date. Refuses a file that is not a kiln store, before writing to it.
Result<store::sql::Db> Open(const std::string& path);

// A compact JSON dump with invalid UTF-8 replaced (U+FFFD), as the store
// writes JSON columns.
std::string Dump(const nlohmann::json& j);

}  // namespace kiln::forge::db
