// The retry policy for model calls: which failures are worth another attempt
// and how long to wait. Exponential backoff with full jitter in the upper
// half ([d/2, d]), a provider's retry-after taken as the minimum wait, and
// both the number of attempts and the total time spent waiting bounded.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace kiln::retry {

struct Policy {
  uint32_t max_attempts = 8;  // including the first
  uint64_t initial_backoff_ms = 1000;
  uint64_t max_backoff_ms = 60'000;
  uint64_t max_total_wait_ms = 300'000;  // sum of all waits within one call
  double multiplier = 2.0;
  friend bool operator==(const Policy&, const Policy&) = default;
};

// 408, 409, 429, 500, 502, 503, 504 and 529 (Anthropic's "overloaded").
bool RetryableStatus(long status);

// A 429 that no wait will cure: spend limits, exhausted quota, billing.
bool PermanentRateLimit(std::string_view error_type, std::string_view message);

// "retry-after" as seconds ("2", "0.5") or an HTTP date; also
// "retry-after-ms". Milliseconds, or nothing when absent or unparseable.
std::optional<uint64_t> ParseRetryAfter(std::string_view seconds_or_date, std::string_view ms);

// The wait before attempt `attempt` (2 for the first retry).
uint64_t Backoff(const Policy& p, uint32_t attempt, std::optional<uint64_t> retry_after_ms,
                 std::mt19937_64& rng);

}  // namespace kiln::retry
