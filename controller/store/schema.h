// The store's SQLite schema and its migrations.
//
// A kiln store is a SQLite database with a kiln_meta table whose
// 'schema_version' row says how many migration steps have been applied.
// Step i (counting from 0) takes the database from version i to i + 1; steps
// are only ever appended, never edited, so that every store can be brought up
// to date from any older version. docs/store.md describes the tables.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "controller/store/sqlite.h"

namespace kiln::store::schema {

// kiln's migration steps, oldest first; their count is the current version.
std::span<const std::string_view> Migrations();

// The version of the store in db, or nullopt for a database without tables
// (a new or empty file). Refuses, naming the path, a file that is not SQLite,
// a database with tables but no kiln_meta, and a version newer than `known`.
// Only reads, so a refused file is left as it was.
Result<std::optional<int64_t>> ReadVersion(sqlite::Db& db, int64_t known);

// Brings db to version steps.size(): creates kiln_meta (version 0) in a
// database without tables, then applies each missing step in its own
// BEGIN IMMEDIATE transaction together with the version bump. A crash leaves
// the last completed version; a process migrating the same file at the same
// time is seen inside the transaction and its steps are not repeated.
Status Migrate(sqlite::Db& db, std::span<const std::string_view> steps);

// A connection to the kiln store at path, as every part that keeps tables
// in it opens one (the run store, the forge, the pipeline): created when
// missing, a foreign file refused before anything is written, WAL mode,
// synchronous NORMAL, a busy timeout, and migrated to the current version.
Result<sqlite::Db> Open(const std::string& path, int busy_timeout_ms);

}  // namespace kiln::store::schema
