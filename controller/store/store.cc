#include "controller/store/store.h"

#include <array>
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

}  // namespace kiln::store
