#include "runtime/model/retry.h"

#include <gtest/gtest.h>

namespace kiln::retry {
namespace {

TEST(Retry, RetryableStatuses) {
  for (long s : {408, 409, 429, 500, 502, 503, 504, 529}) EXPECT_TRUE(RetryableStatus(s)) << s;
  for (long s : {200, 400, 401, 403, 404, 413, 422}) EXPECT_FALSE(RetryableStatus(s)) << s;
}

TEST(Retry, QuotaAndSpendLimitsAreNotRetried) {
  EXPECT_TRUE(PermanentRateLimit("insufficient_quota", ""));
  EXPECT_TRUE(PermanentRateLimit("", "You exceeded your current quota, please check your plan"));
  EXPECT_TRUE(PermanentRateLimit("rate_limit_error", "You have reached your spend limit"));
  EXPECT_FALSE(PermanentRateLimit("rate_limit_error", "Number of requests per minute exceeded"));
}

TEST(Retry, ParsesRetryAfter) {
  EXPECT_EQ(ParseRetryAfter("2", ""), 2000u);
  EXPECT_EQ(ParseRetryAfter("0.25", ""), 250u);
  EXPECT_EQ(ParseRetryAfter("", "150"), 150u);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", ""), 0u);  // in the past
  EXPECT_FALSE(ParseRetryAfter("soon", "").has_value());
  EXPECT_FALSE(ParseRetryAfter("", "").has_value());
}

TEST(Retry, BackoffGrowsIsCappedJitteredAndHonoursRetryAfter) {
  Policy p;
  p.initial_backoff_ms = 100;
  p.max_backoff_ms = 1000;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) {
    uint64_t first = Backoff(p, 2, std::nullopt, rng);
    EXPECT_GE(first, 50u);
    EXPECT_LE(first, 100u);
    uint64_t third = Backoff(p, 4, std::nullopt, rng);
    EXPECT_GE(third, 200u);
    EXPECT_LE(third, 400u);
    EXPECT_LE(Backoff(p, 30, std::nullopt, rng), 1000u);
    EXPECT_GE(Backoff(p, 2, 5000, rng), 5000u);
  }
}

}  // namespace
}  // namespace kiln::retry
