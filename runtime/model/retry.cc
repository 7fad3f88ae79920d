#include "runtime/model/retry.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

namespace kiln::retry {

bool RetryableStatus(long status) {
  switch (status) {
    case 408:
    case 409:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
    case 529:
      return true;
    default:
      return false;
  }
}

bool PermanentRateLimit(std::string_view error_type, std::string_view message) {
  std::string m(message);
  for (char& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view t :
       {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active", "spend_limit"}) {
    if (error_type == t) return true;
  }
  for (std::string_view needle : {"insufficient_quota", "exceeded your current quota",
                                  "spend limit", "billing", "credit balance"}) {
    if (m.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::optional<uint64_t> ParseRetryAfter(std::string_view seconds_or_date, std::string_view ms) {
  if (!ms.empty()) {
    try {
      double v = std::stod(std::string(ms));
      if (v >= 0) return static_cast<uint64_t>(v);
    } catch (...) {
    }
  }
  if (seconds_or_date.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(seconds_or_date[0]))) {
    try {
      double v = std::stod(std::string(seconds_or_date));
      if (v >= 0) return static_cast<uint64_t>(v * 1000);
    } catch (...) {
    }
    return std::nullopt;
  }
  // An IMF-fixdate such as "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  std::string s(seconds_or_date);
  if (!strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return std::nullopt;
  time_t when = timegm(&tm);
  time_t now = std::time(nullptr);
  return when > now ? static_cast<uint64_t>(when - now) * 1000 : 0;
}

uint64_t Backoff(const Policy& p, uint32_t attempt, std::optional<uint64_t> retry_after_ms,
                 std::mt19937_64& rng) {
  double base = static_cast<double>(p.initial_backoff_ms) *
                std::pow(p.multiplier, static_cast<double>(attempt >= 2 ? attempt - 2 : 0));
  base = std::min(base, static_cast<double>(p.max_backoff_ms));
  std::uniform_real_distribution<double> half(base / 2, base);
  auto wait = static_cast<uint64_t>(half(rng));
  if (retry_after_ms) wait = std::max(wait, *retry_after_ms);
  return wait;
}

}  // namespace kiln::retry
