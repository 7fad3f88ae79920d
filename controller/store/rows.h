// What the store's two backends (sqlite_store.cc, postgres_store.cc) share:
// the runs table's columns, a run read from a row of them, the checks of a
// request, and the retry backoff. Internal to controller/store.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "base/strings.h"
#include "controller/store/store.h"

namespace kiln::store {

// The columns ReadRun reads, in its order.
inline constexpr std::string_view kRunColumns =
    "id, role, repo, revision, task, priority, budgets, requested_by, max_attempts, status, "
    "attempt, created_ms, started_ms, finished_ms, not_before_ms, owner, cancel_requested, "
    "commit_sha, image_digest, sandbox_id, log_path, log_head, outcome, result, error, context, "
    "epoch, lease_expires_ms, live";

// "SELECT <run columns> FROM runs <rest>": rest holds the conditions, with
// values as parameters only.
std::string SelectRuns(std::string_view rest);

inline std::string Name(Status s) { return std::string(ToString(s)); }

// Invalid UTF-8 in a string (from a model's reply, say) becomes U+FFFD
// rather than failing the write: the run's record matters more than a byte.
std::string DumpJson(const nlohmann::json& j);

// A column of run id in the store named store (a path or redacted URL)
// that does not hold what it should.
Error Corrupt(std::string_view store, std::string_view id, std::string_view column,
              const std::string& why);
Result<nlohmann::json> ParseJson(std::string_view store, std::string_view id,
                                 std::string_view column, const std::string& text);
Result<Status> ParseStatusColumn(std::string_view store, std::string_view id,
                                 const std::string& text);

// CountByStatus's answer before any row: every status, at 0. CountRow adds
// a row of "SELECT status, COUNT(*)": a status it does not know is
// corruption.
std::map<Status, uint64_t> NoCounts();
kiln::Status CountRow(std::string_view store, const std::string& status, int64_t count,
                      std::map<Status, uint64_t>* counts);

// The non-empty fields and attempts Enqueue requires.
kiln::Status CheckRequest(const RunRequest& request);

// For a write of `what` at epoch (0: unfenced) to run: kPermission when
// another claim has taken the run since, then kInvalidArgument unless it
// is running.
kiln::Status CheckHeld(std::string_view what, const Run& run, int64_t epoch);

// What a rescued run becomes, and the error it keeps (who rescued it from
// whom, and when the lease ended).
Status RescuedStatus(const Run& run, bool requeue);
std::string RescueError(std::string_view rescuer, const Run& run);

// min(initial * multiplier^(attempt-1), max), never negative.
int64_t Backoff(const RetryPolicy& policy, int attempt);

// The run in a row whose columns are kRunColumns; row has Text(column) and
// Int(column), numbered from 0.
template <typename Row>
Result<Run> ReadRun(std::string_view store, const Row& row) {
  Run run;
  int c = 0;
  run.id = row.Text(c++);
  RunRequest& req = run.request;
  req.role = row.Text(c++);
  req.repo = row.Text(c++);
  req.commit = row.Text(c++);
  req.task = row.Text(c++);
  req.priority = static_cast<int>(row.Int(c++));
  KILN_ASSIGN_OR_RETURN(req.budgets, ParseJson(store, run.id, "budgets", row.Text(c++)));
  req.requested_by = row.Text(c++);
  req.max_attempts = static_cast<int>(row.Int(c++));
  KILN_ASSIGN_OR_RETURN(run.status, ParseStatusColumn(store, run.id, row.Text(c++)));
  run.attempt = static_cast<int>(row.Int(c++));
  run.created_ms = row.Int(c++);
  run.started_ms = row.Int(c++);
  run.finished_ms = row.Int(c++);
  run.not_before_ms = row.Int(c++);
  run.owner = row.Text(c++);
  run.cancel_requested = row.Int(c++) != 0;
  run.commit_sha = row.Text(c++);
  run.image_digest = row.Text(c++);
  run.sandbox_id = row.Text(c++);
  run.log_path = row.Text(c++);
  run.log_head = row.Text(c++);
  run.outcome = row.Text(c++);
  KILN_ASSIGN_OR_RETURN(run.result, ParseJson(store, run.id, "result", row.Text(c++)));
  run.error = row.Text(c++);
  KILN_ASSIGN_OR_RETURN(req.context, ParseJson(store, run.id, "context", row.Text(c++)));
  run.epoch = row.Int(c++);
  run.lease_expires_ms = row.Int(c++);
  if (std::string live = row.Text(c++); !live.empty()) {
    KILN_ASSIGN_OR_RETURN(run.live, ParseJson(store, run.id, "live", live));
  }
  return run;
}

}  // namespace kiln::store
