// The pipeline's inbox: the events table of the kiln store, fed by the local
// forge (in the transaction of each write) and by the GitHub adapter's
// webhooks (Append). Deliveries are unique, so a webhook delivered twice is
// stored once; the pipeline takes Pending events in seq order and marks each
// processed with its outcome.
//
// Thread-safe: one connection, its use serialised by a mutex. Several
// Inboxes (and Local forges) may share the file, in this process or others.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "controller/forge/forge.h"
#include "controller/store/sql.h"

namespace kiln::forge {

// An event with what the pipeline made of it.
struct InboxEntry {
  Event event;
  int64_t processed_ms = 0;  // 0: not processed yet
  std::string outcome;       // the pipeline's note: "queued triage r2025...", "ignored: ..."
};

class Inbox {
 public:
  static Result<std::unique_ptr<Inbox>> Open(const std::string& store_path);

  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Stores e (its seq and received_ms are ignored; received_ms = now_ms).
  // false when e.delivery is already stored: nothing changes then.
  Result<bool> Append(const Event& e, int64_t now_ms);
  // Unprocessed events, oldest (lowest seq) first, at most limit (0: all).
  Result<std::vector<Event>> Pending(size_t limit);
  // Records that the event seq was handled. An unknown seq is kNotFound.
  // Marking again replaces the outcome and time.
  Status MarkProcessed(int64_t seq, const std::string& outcome, int64_t now_ms);
  // The latest events, newest first, at most limit (0: all); only repo's
  // when repo is not empty.
  Result<std::vector<Event>> Recent(size_t limit, const std::string& repo = "");
  // Every event of repo received up to until_ms, oldest first: a
  // repository's history (the improver's signals).
  Result<std::vector<Event>> History(const std::string& repo, int64_t until_ms);
  // Recent, with the processing state of each.
  Result<std::vector<InboxEntry>> RecentEntries(size_t limit, const std::string& repo = "");

 private:
  explicit Inbox(store::sql::Db db) : db_(std::move(db)) {}

  std::mutex mu_;
  store::sql::Db db_;  // guarded by mu_
};

}  // namespace kiln::forge
