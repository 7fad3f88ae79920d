#include "controller/store/rows.h"

#include <algorithm>
#include <cmath>

namespace kiln::store {

std::string SelectRuns(std::string_view rest) {
  std::string sql = "SELECT ";
  sql += kRunColumns;
  sql += " FROM runs ";
  sql += rest;
  return sql;
}

std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Error Corrupt(std::string_view store, std::string_view id, std::string_view column,
              const std::string& why) {
  return Error(Error::Code::kCorruption, "store " + Quote(store) + ": run " + Quote(id) +
                                             ": column " + Quote(column) + ": " + why);
}

Result<nlohmann::json> ParseJson(std::string_view store, std::string_view id,
                                 std::string_view column, const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Corrupt(store, id, column, "not valid JSON");
  return j;
}

Result<Status> ParseStatusColumn(std::string_view store, std::string_view id,
                                 const std::string& text) {
  Result<Status> parsed = ParseStatus(text);
  if (!parsed.ok()) return Corrupt(store, id, "status", parsed.error().message());
  return *parsed;
}

std::map<Status, uint64_t> NoCounts() {
  std::map<Status, uint64_t> counts;
  for (Status s : {Status::kQueued, Status::kRunning, Status::kSucceeded, Status::kFailed,
                   Status::kBudgetExhausted, Status::kCancelled, Status::kError}) {
    counts[s] = 0;
  }
  return counts;
}

kiln::Status CountRow(std::string_view store, const std::string& status, int64_t count,
                      std::map<Status, uint64_t>* counts) {
  Result<Status> parsed = ParseStatus(status);
  if (!parsed.ok()) {
    return Error(Error::Code::kCorruption,
                 "store " + Quote(store) + ": column 'status': " + parsed.error().message());
  }
  (*counts)[*parsed] = static_cast<uint64_t>(count);
  return Ok();
}

namespace {

kiln::Status RequireNonEmpty(std::string_view field, const std::string& value) {
  if (value.empty()) {
    return Error::Invalid("enqueue: the request's " + std::string(field) + " is empty");
  }
  return Ok();
}

}  // namespace

kiln::Status CheckRequest(const RunRequest& request) {
  KILN_TRY(RequireNonEmpty("role", request.role));
  KILN_TRY(RequireNonEmpty("repo", request.repo));
  KILN_TRY(RequireNonEmpty("commit", request.commit));
  KILN_TRY(RequireNonEmpty("task", request.task));
  if (request.max_attempts < 1) {
    return Error::Invalid("enqueue: max_attempts is " + std::to_string(request.max_attempts) +
                          ", must be at least 1");
  }
  return Ok();
}

kiln::Status CheckHeld(std::string_view what, const Run& run, int64_t epoch) {
  if (epoch != 0 && run.epoch != epoch) {
    return Error(
        Error::Code::kPermission,
        std::string(what) + ": run " + Quote(run.id) + " was taken over (epoch " +
            std::to_string(run.epoch) +
            (run.owner.empty() ? ", now " + Name(run.status) : ", owner " + Quote(run.owner)) +
            "); this claim was epoch " + std::to_string(epoch) + ": nothing written");
  }
  if (run.status != Status::kRunning) {
    return Error::Invalid(std::string(what) + ": run " + Quote(run.id) + " is " + Name(run.status) +
                          ", not running");
  }
  return Ok();
}

Status RescuedStatus(const Run& run, bool requeue) {
  if (run.cancel_requested) return Status::kCancelled;
  if (requeue && run.attempt < run.request.max_attempts) return Status::kQueued;
  return Status::kError;
}

std::string RescueError(std::string_view rescuer, const Run& run) {
  return "rescued by " + std::string(rescuer) + ": the lease of " + Quote(run.owner) +
         " ended at " + Utc(run.lease_expires_ms);
}

// Computed in double: a large attempt overflows to infinity, which the cap
// absorbs.
int64_t Backoff(const RetryPolicy& policy, int attempt) {
  double ms = static_cast<double>(policy.initial_backoff_ms) *
              std::pow(policy.multiplier, std::max(attempt - 1, 0));
  const auto cap = static_cast<double>(policy.max_backoff_ms);
  if (!(ms < cap)) ms = cap;  // also catches NaN
  return ms > 0 ? static_cast<int64_t>(ms) : 0;
}

}  // namespace kiln::store
