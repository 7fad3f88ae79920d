// The pipeline's own rows in the kiln store (table pipeline_runs, schema
// version 3; docs/store.md): which forge issue and role each pipeline run is
// for, the event that started it, its progress comment, the state that
// comment shows, and whether its result has been applied to the forge.
//
// Thread-safe (one mutex around one connection); several processes may share
// the file, as with the run store.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
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

class State {
 public:
  static Result<std::unique_ptr<State>> Open(const std::string& store_path);

  Status Track(const Tracked& t);
  Status SetComment(const std::string& run_id, int64_t comment_id);
  Status SetShown(const std::string& run_id, const std::string& state);
  Status MarkApplied(const std::string& run_id, const std::string& outcome, int64_t now_ms);
  // The outcome of a run not yet applied (what its writing has reached).
  Status SetOutcome(const std::string& run_id, const std::string& outcome);

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

  std::mutex mu_;
  store::sql::Db db_;  // guarded by mu_
};

}  // namespace kiln::pipeline
