#include "controller/forge/inbox.h"

#include <cstdint>

#include "controller/forge/db.h"
#include "controller/forge/events.h"

namespace kiln::forge {

Result<std::unique_ptr<Inbox>> Inbox::Open(const std::string& store_path) {
  KILN_ASSIGN_OR_RETURN(store::sql::Db db, db::Open(store_path));
  return std::unique_ptr<Inbox>(new Inbox(std::move(db)));
}

Result<bool> Inbox::Append(const Event& e, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(int64_t seq, events::Insert(db_, e, now_ms));
  return seq != 0;
}

Result<std::vector<Event>> Inbox::Pending(size_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt stmt,
      db_.Prepare("reading pending events",
                  events::Select("WHERE processed_ms = 0 ORDER BY seq LIMIT ?1")));
  stmt.Bind(1, limit == 0 ? INT64_MAX : static_cast<int64_t>(limit));
  std::vector<Event> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    KILN_ASSIGN_OR_RETURN(Event e, events::FromRow(db_, stmt));
    out.push_back(std::move(e));
  }
}

Status Inbox::MarkProcessed(int64_t seq, const std::string& outcome, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt stmt,
      db_.Prepare(
          "marking event " + std::to_string(seq) + " processed",
          "UPDATE events SET processed_ms = ?1, outcome = ?2 WHERE seq = ?3 RETURNING seq"));
  // processed_ms 0 means pending: a clock at the epoch still marks it.
  stmt.Bind(1, now_ms > 0 ? now_ms : 1).Bind(2, outcome).Bind(3, seq);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Error::NotFound("no event with seq " + std::to_string(seq) + " in the inbox");
  KILN_TRY(stmt.Step());
  return Ok();
}

Result<std::vector<Event>> Inbox::Recent(size_t limit, const std::string& repo) {
  KILN_ASSIGN_OR_RETURN(std::vector<InboxEntry> entries, RecentEntries(limit, repo));
  std::vector<Event> out;
  out.reserve(entries.size());
  for (auto& e : entries) out.push_back(std::move(e.event));
  return out;
}

Result<std::vector<Event>> Inbox::History(const std::string& repo, int64_t until_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt stmt,
      db_.Prepare("reading a repository's events",
                  events::Select("WHERE repo = ?1 AND received_ms <= ?2 ORDER BY seq")));
  stmt.Bind(1, repo).Bind(2, until_ms);
  std::vector<Event> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    KILN_ASSIGN_OR_RETURN(Event e, events::FromRow(db_, stmt));
    out.push_back(std::move(e));
  }
}

Result<std::vector<InboxEntry>> Inbox::RecentEntries(size_t limit, const std::string& repo) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt stmt,
      db_.Prepare("listing events",
                  events::Select("WHERE (?1 = '' OR repo = ?1) ORDER BY seq DESC LIMIT ?2")));
  stmt.Bind(1, repo).Bind(2, limit == 0 ? INT64_MAX : static_cast<int64_t>(limit));
  std::vector<InboxEntry> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    InboxEntry entry;
    KILN_ASSIGN_OR_RETURN(entry.event, events::FromRow(db_, stmt));
    entry.processed_ms = stmt.Int(events::kProcessedColumn);
    entry.outcome = stmt.Text(events::kOutcomeColumn);
    out.push_back(std::move(entry));
  }
}

}  // namespace kiln::forge
