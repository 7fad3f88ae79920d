// The events table (docs/store.md): what the forge's writes append in their
// own transaction, and what the Inbox reads for the pipeline. Shared by the
// local forge and the inbox so both write rows the same way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "controller/forge/forge.h"
#include "controller/store/sql.h"

namespace kiln::forge::events {

// Appends e (seq and received_ms are ignored) with received_ms = now_ms.
// Returns its seq, or 0 when an event with the same delivery is already
// stored (nothing is written then). delivery, source and kind must not be
// empty. Runs inside the caller's transaction when there is one.
Result<int64_t> Insert(store::sql::Db& db, const Event& e, int64_t now_ms);

// A fresh delivery id for an event of the local forge: "local-" followed by
// 32 hex digits from getrandom(2).
Result<std::string> NewDelivery();

// "SELECT <event columns> FROM events <rest>" and the row under such a
// statement. Corrupt JSON in payload is an error naming the seq.
std::string Select(std::string_view rest);
Result<Event> FromRow(const store::sql::Db& db, const store::sql::Stmt& stmt);

// Extra columns after the event's, in Select order: processed_ms, outcome.
inline constexpr int kProcessedColumn = 9;
inline constexpr int kOutcomeColumn = 10;

}  // namespace kiln::forge::events
