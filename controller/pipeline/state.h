// The pipeline's own rows in the kiln store (tables pipeline_runs and
// pipeline_lead, on the pipeline's track; docs/store.md): which forge issue
// and role each pipeline run is for, the event that started it, its progress
// comment, the state that comment shows, and whether its result has been
// applied to the forge; and which host of a fleet leads the pipeline.
//
// Thread-safe (one mutex around one connection); several processes may share
// the file, as with the run store.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "controller/store/sql.h"

namespace kiln::pipeline {

struct Tracked {
  std::string run_id;
  std::string repo;
  int64_t number = 0;
  std::string role;
  int64_t event_seq = 0;
  int64_t comment_id = 0;   // the progress comment, 0 before it is posted
  std::string shown_state;  // what that comment shows now
  int64_t applied_ms = 0;   // when the result reached the forge; 0: not yet
  std::string outcome;      // what the controller did with it
};

// The pipeline's lead: the one host of a fleet that turns events into runs
// and results into forge writes, while its lease lasts. Each change of
// holder is a new epoch.
struct Lead {
  std::string holder;  // "" before anyone led
  int64_t epoch = 0;
  int64_t expires_ms = 0;
};

class State {
 public:
  static Result<std::unique_ptr<State>> Open(const std::string& store_path);

  Status Track(const Tracked& t);
  Status SetComment(const std::string& run_id, int64_t comment_id);
  Status SetShown(const std::string& run_id, const std::string& state);
  Status MarkApplied(const std::string& run_id, const std::string& outcome, int64_t now_ms);
  // The outcome of a run not yet applied (what its writing has reached).
  Status SetOutcome(const std::string& run_id, const std::string& outcome);
  // Track, MarkApplied and SetOutcome check the fence (when set) in their own
  // transaction: refused with kPermission, writing nothing, once another
  // host leads.

  // Takes or renews the lead for host until now_ms + lease_ms: it is free,
  // host's already, or its lease ended before now_ms. Returns the lead as
  // it now is: host's, or the other holder's.
  Result<Lead> TakeLead(const std::string& host, int64_t now_ms, int64_t lease_ms);
  // Ends host's lease at once, when host leads (a host that stops cleanly):
  // the next host need not wait for it to run out.
  Status ReleaseLead(const std::string& host);
  // From now on, this State's writes and Leads need host to lead at epoch.
  void Fence(const std::string& host, int64_t epoch);
  // Ok while the fence holds (or none is set); otherwise kPermission naming
  // the new holder, for `doing`. The pipeline asks before each forge write.
  Status Leads(const std::string& doing);
  // Leads, read on another connection to the store: the local forge's,
  // inside the transaction of its write (forge::Local::SetWriteGuard).
  Status LeadsOn(store::sql::Db& db, const std::string& doing);

  // Runs not yet applied, oldest first.
  Result<std::vector<Tracked>> Unapplied();
  // Every run for a repository, oldest first.
  Result<std::vector<Tracked>> ForRepo(const std::string& repo);
  // Every run for an issue (and role, when not empty), oldest first.
  Result<std::vector<Tracked>> ForIssue(const std::string& repo, int64_t number,
                                        const std::string& role = "");

 private:
  explicit State(store::sql::Db db) : db_(std::move(db)) {}
  Result<std::vector<Tracked>> Select(const std::string& where,
                                      const std::vector<std::string>& args);
  // Runs sql with ?1 = run_id and ?2 = value (an UPDATE of one text column).
  Status SetText(const std::string& what, const std::string& sql, const std::string& run_id,
                 const std::string& value);
  Result<Lead> ReadLead();
  Status CheckFence(const std::string& doing);

  std::mutex mu_;
  store::sql::Db db_;          // guarded by mu_
  std::optional<Lead> fence_;  // guarded by mu_
};

}  // namespace kiln::pipeline
