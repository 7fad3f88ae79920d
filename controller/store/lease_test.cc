// Leases and fencing, on both backends: a claim's epoch and lease, renewal,
// rescue of a run whose host stopped renewing, the refusal of a late write
// from the host that lost it, and the hosts' records.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include "controller/store/store.h"
#include "controller/store/testutil.h"

namespace kiln::store {
namespace {

using testing::Ended;
using testing::MustEnqueue;
using testing::MustGet;
using testing::Request;
using testing::StoreTest;

constexpr int64_t kLease = 30'000;

// The run claimed by owner at now_ms with a lease; a failure when none is.
Run MustClaim(Store& store, std::string_view owner, int64_t now_ms) {
  auto claimed = store.Claim({}, owner, now_ms, kLease);
  EXPECT_TRUE(claimed.ok()) << claimed.error().message();
  EXPECT_TRUE(claimed.ok() && claimed->has_value()) << "nothing to claim";
  return claimed.ok() && claimed->has_value() ? **claimed : Run{};
}

TEST_P(StoreTest, EveryClaimTakesTheNextEpochAndALease) {
  Run queued = MustEnqueue(*store_, Request(), 1);
  EXPECT_EQ(queued.epoch, 0);
  Run first = MustClaim(*store_, "host-a", 1'000);
  EXPECT_EQ(first.epoch, 1);
  EXPECT_EQ(first.lease_expires_ms, 1'000 + kLease);
  auto again = store_->FailInfrastructure(first.id, "disk full", {}, 2'000, first.epoch);
  ASSERT_TRUE(again.ok()) << again.error().message();
  ASSERT_TRUE(*again);
  Run requeued = MustGet(*store_, first.id);
  EXPECT_EQ(requeued.lease_expires_ms, 0);
  EXPECT_EQ(requeued.owner, "");
  Run second = MustClaim(*store_, "host-b", 1'000'000);
  EXPECT_EQ(second.id, first.id);
  EXPECT_EQ(second.epoch, 2);
  EXPECT_EQ(second.attempt, 2);
  // The first claim's epoch no longer holds.
  auto late = store_->Holds(first.id, first.epoch);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), Error::Code::kPermission);
  EXPECT_TRUE(store_->Holds(second.id, second.epoch).ok());
  // A run started in the foreground has no lease: nobody rescues it.
  auto started = store_->StartNew(Request(), "cli:1", 5);
  ASSERT_TRUE(started.ok()) << started.error().message();
  EXPECT_EQ(started->epoch, 1);
  EXPECT_EQ(started->lease_expires_ms, 0);
}

TEST_P(StoreTest, RenewExtendsOnlyTheOwnersLeases) {
  Run a1 = MustEnqueue(*store_, Request("r1"), 1);
  Run a2 = MustEnqueue(*store_, Request("r2"), 2);
  Run b1 = MustEnqueue(*store_, Request("r3"), 3);
  MustClaim(*store_, "host-a", 10);
  MustClaim(*store_, "host-a", 10);
  MustClaim(*store_, "host-b", 10);
  auto renewed = store_->Renew("host-a", kLease, 20'000);
  ASSERT_TRUE(renewed.ok()) << renewed.error().message();
  std::vector<std::string> expected = {a1.id, a2.id};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(*renewed, expected);
  EXPECT_EQ(MustGet(*store_, a1.id).lease_expires_ms, 20'000 + kLease);
  EXPECT_EQ(MustGet(*store_, b1.id).lease_expires_ms, 10 + kLease);
  // An ended run is not renewed.
  ASSERT_TRUE(store_->Complete(a1.id, Ended(Status::kSucceeded), 21'000).ok());
  renewed = store_->Renew("host-a", kLease, 22'000);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(*renewed, std::vector<std::string>{a2.id});
  EXPECT_EQ(MustGet(*store_, a1.id).lease_expires_ms, 0);
}

TEST_P(StoreTest, AnExpiredLeaseIsRescuedAndTheLateHostIsRefused) {
  Run run = MustEnqueue(*store_, Request(), 1);
  Run held = MustClaim(*store_, "host-a", 1'000);
  Run other = MustEnqueue(*store_, Request("other"), 2);
  Run fresh = MustClaim(*store_, "host-c", 20'000);
  ASSERT_EQ(fresh.id, other.id);

  // Before the lease ends, nothing is rescued.
  auto none = store_->RescueExpired("host-b", true, 1'000 + kLease);
  ASSERT_TRUE(none.ok()) << none.error().message();
  EXPECT_TRUE(none->empty());

  auto rescued = store_->RescueExpired("host-b", true, 1'001 + kLease);
  ASSERT_TRUE(rescued.ok()) << rescued.error().message();
  ASSERT_EQ(rescued->size(), 1u);
  EXPECT_EQ((*rescued)[0].id, run.id);
  EXPECT_EQ((*rescued)[0].from, "host-a");
  EXPECT_EQ((*rescued)[0].status, Status::kQueued);
  Run after = MustGet(*store_, run.id);
  EXPECT_EQ(after.status, Status::kQueued);
  EXPECT_EQ(after.epoch, held.epoch + 1);
  EXPECT_EQ(after.owner, "");
  EXPECT_NE(after.error.find("rescued by host-b: the lease of 'host-a' ended at"),
            std::string::npos)
      << after.error;
  EXPECT_EQ(MustGet(*store_, other.id).status, Status::kRunning);  // its lease holds

  // host-b claims it; host-a wakes up and tries each write: refused,
  // naming the epochs, and nothing changes.
  Run taken = MustClaim(*store_, "host-b", 40'000);
  ASSERT_EQ(taken.id, run.id);
  const Run before = MustGet(*store_, run.id);
  Finish finish = Ended(Status::kSucceeded, "submitted");
  finish.result = {{"summary", "late"}};
  auto late = store_->Complete(run.id, finish, 41'000, held.epoch);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), Error::Code::kPermission);
  EXPECT_NE(late.error().message().find("taken over (epoch 3, owner 'host-b'); this claim was "
                                        "epoch 1: nothing written"),
            std::string::npos)
      << late.error().message();
  Progress progress;
  progress.log_head = "late";
  EXPECT_EQ(store_->SetProgress(run.id, progress, held.epoch).error().code(),
            Error::Code::kPermission);
  auto failed = store_->FailInfrastructure(run.id, "late", {}, 41'000, held.epoch);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), Error::Code::kPermission);
  testing::ExpectSameRun(MustGet(*store_, run.id), before);

  // The new owner's writes go through.
  EXPECT_TRUE(store_->Complete(run.id, finish, 42'000, taken.epoch).ok());
  EXPECT_EQ(MustGet(*store_, run.id).status, Status::kSucceeded);
}

TEST_P(StoreTest, ARescueEndsARunWithoutAttemptsOrWithACancel) {
  RunRequest once = Request("a");
  once.max_attempts = 1;
  Run last = MustEnqueue(*store_, once, 1);
  Run cancelled = MustEnqueue(*store_, Request("b"), 2);
  Run not_requeued = MustEnqueue(*store_, Request("c"), 3);
  MustClaim(*store_, "host-a", 10);
  MustClaim(*store_, "host-a", 10);
  MustClaim(*store_, "host-a", 10);
  ASSERT_TRUE(store_->RequestCancel(cancelled.id, 20).ok());

  auto rescued = store_->RescueExpired("host-b", true, 100'000);
  ASSERT_TRUE(rescued.ok()) << rescued.error().message();
  ASSERT_EQ(rescued->size(), 3u);
  EXPECT_EQ(MustGet(*store_, last.id).status, Status::kError);
  EXPECT_EQ(MustGet(*store_, last.id).finished_ms, 100'000);
  EXPECT_EQ(MustGet(*store_, cancelled.id).status, Status::kCancelled);
  EXPECT_EQ(MustGet(*store_, not_requeued.id).status, Status::kQueued);

  // The "fail" policy ends it even with attempts left.
  Run claimed = MustClaim(*store_, "host-b", 200'000);
  ASSERT_EQ(claimed.id, not_requeued.id);
  rescued = store_->RescueExpired("host-c", false, 300'000);
  ASSERT_TRUE(rescued.ok());
  ASSERT_EQ(rescued->size(), 1u);
  EXPECT_EQ((*rescued)[0].status, Status::kError);
  EXPECT_EQ(MustGet(*store_, not_requeued.id).status, Status::kError);
}

TEST_P(StoreTest, HostsRecordTheirBeats) {
  Host a{"host-a", 4, "0.1.0", 100, 0, "http://host-a:9465", "-----BEGIN PUBLIC KEY-----a"};
  Host b{"host-b", 2, "0.1.0", 200, 0, "", ""};
  ASSERT_TRUE(store_->Beat(b, 1'000).ok());
  ASSERT_TRUE(store_->Beat(a, 1'500).ok());
  a.capacity = 8;
  ASSERT_TRUE(store_->Beat(a, 2'000).ok());
  auto hosts = store_->Hosts();
  ASSERT_TRUE(hosts.ok()) << hosts.error().message();
  ASSERT_EQ(hosts->size(), 2u);
  EXPECT_EQ((*hosts)[0].name, "host-a");
  EXPECT_EQ((*hosts)[0].capacity, 8);
  EXPECT_EQ((*hosts)[0].heartbeat_ms, 2'000);
  EXPECT_EQ((*hosts)[0].started_ms, 100);
  EXPECT_EQ((*hosts)[0].url, "http://host-a:9465");
  EXPECT_EQ((*hosts)[0].log_key, "-----BEGIN PUBLIC KEY-----a");
  EXPECT_EQ((*hosts)[1].name, "host-b");
  EXPECT_EQ((*hosts)[1].url, "");
  EXPECT_EQ((*hosts)[1].heartbeat_ms, 1'000);
  EXPECT_EQ(store_->Beat(Host{"", 1, "x", 0, 0, "", ""}, 1).error().code(),
            Error::Code::kInvalidArgument);
}

// Two hosts rescue at once, from their own connections: every expired run
// is rescued exactly once.
TEST_P(StoreTest, TwoRescuersRescueEachRunOnce) {
  auto other = testing::MustOpen(location_);
  ASSERT_NE(other, nullptr);
  constexpr int kRuns = 40;
  for (int i = 0; i < kRuns; ++i) MustEnqueue(*store_, Request("r" + std::to_string(i)), i);
  const ClaimLimits wide{.max_running = 100, .max_running_per_repo = 100};
  for (int i = 0; i < kRuns; ++i) ASSERT_TRUE(store_->Claim(wide, "dead", 10, kLease).ok());
  std::vector<Rescue> by_b, by_c;
  std::thread b([&] {
    auto r = store_->RescueExpired("host-b", true, 100'000);
    ASSERT_TRUE(r.ok()) << r.error().message();
    by_b = *r;
  });
  std::thread c([&] {
    auto r = other->RescueExpired("host-c", true, 100'000);
    ASSERT_TRUE(r.ok()) << r.error().message();
    by_c = *r;
  });
  b.join();
  c.join();
  std::set<std::string> ids;
  for (const auto& r : by_b) ids.insert(r.id);
  for (const auto& r : by_c) ids.insert(r.id);
  EXPECT_EQ(by_b.size() + by_c.size(), static_cast<size_t>(kRuns));
  EXPECT_EQ(ids.size(), static_cast<size_t>(kRuns));
  auto runs = store_->List({std::nullopt, "", "", 0});
  ASSERT_TRUE(runs.ok());
  for (const Run& r : *runs) {
    EXPECT_EQ(r.status, Status::kQueued) << r.id;
    EXPECT_EQ(r.epoch, 2) << r.id;
  }
}

}  // namespace
}  // namespace kiln::store
