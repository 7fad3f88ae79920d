#include "controller/store/store.h"

#include <array>
#include <ctime>
#include <utility>

namespace kiln::store {
namespace {

constexpr std::array<std::pair<Status, std::string_view>, 7> kStatusNames = {{
    {Status::kQueued, "queued"},
    {Status::kRunning, "running"},
    {Status::kSucceeded, "succeeded"},
    {Status::kFailed, "failed"},
    {Status::kBudgetExhausted, "budget_exhausted"},
    {Status::kCancelled, "cancelled"},
    {Status::kError, "error"},
}};

}  // namespace

std::string_view ToString(Status s) {
  for (const auto& [status, name] : kStatusNames) {
    if (status == s) return name;
  }
  return "unknown";
}

Result<Status> ParseStatus(std::string_view text) {
  for (const auto& [status, name] : kStatusNames) {
    if (name == text) return status;
  }
  std::string known;
  for (const auto& entry : kStatusNames)
    known += (known.empty() ? "" : ", ") + std::string(entry.second);
  return Error::Invalid("unknown run status " + Quote(text) + " (known: " + known + ")");
}

bool IsTerminal(Status s) { return s != Status::kQueued && s != Status::kRunning; }

std::string Utc(int64_t ms) {
  if (ms == 0) return "-";
  time_t t = static_cast<time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string OwnerHost(std::string_view owner) {
  const size_t slash = owner.find('/');
  return slash == std::string_view::npos ? "" : std::string(owner.substr(0, slash));
}

nlohmann::json ToJson(const Run& r) {
  return {{"id", r.id},
          {"status", ToString(r.status)},
          {"role", r.request.role},
          {"repo", r.request.repo},
          {"commit", r.request.commit},
          {"commit_sha", r.commit_sha},
          {"task", r.request.task},
          {"priority", r.request.priority},
          {"attempt", r.attempt},
          {"max_attempts", r.request.max_attempts},
          {"requested_by", r.request.requested_by},
          {"owner", r.owner},
          {"context", r.request.context},
          {"created", Utc(r.created_ms)},
          {"started", Utc(r.started_ms)},
          {"finished", Utc(r.finished_ms)},
          {"created_ms", r.created_ms},
          {"started_ms", r.started_ms},
          {"finished_ms", r.finished_ms},
          {"cancel_requested", r.cancel_requested},
          {"outcome", r.outcome},
          {"error", r.error},
          {"image_digest", r.image_digest},
          {"sandbox_id", r.sandbox_id},
          {"log_path", r.log_path},
          {"log_head", r.log_head},
          {"epoch", r.epoch},
          {"lease_expires_ms", r.lease_expires_ms},
          {"live", r.live},
          {"result", r.result}};
}

}  // namespace kiln::store
