// The queue: claim order, limits, not_before, retries, and claims racing
// from several connections.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "controller/store/store.h"
#include "controller/store/testutil.h"

namespace kiln::store {
namespace {

using testing::ClaimId;
using testing::Ended;
using testing::MustEnqueue;
using testing::MustGet;
using testing::Request;
using testing::StoreTest;

constexpr ClaimLimits kWide{.max_running = 100, .max_running_per_repo = 100};

TEST_P(StoreTest, ClaimTakesHighestPriorityThenOldest) {
  Run low = MustEnqueue(*store_, Request("r1", 0), 1);
  Run high_old = MustEnqueue(*store_, Request("r2", 5), 2);
  Run mid = MustEnqueue(*store_, Request("r3", 1), 3);
  Run high_new = MustEnqueue(*store_, Request("r4", 5), 4);
  // Equal priority and equal clock: enqueue order still decides.
  Run low_same_time = MustEnqueue(*store_, Request("r5", 0), 1);

  auto first = store_->Claim(kWide, "host-a:7", 10);
  ASSERT_TRUE(first.ok()) << first.error().message();
  ASSERT_TRUE(first->has_value());
  const Run& run = **first;
  EXPECT_EQ(run.id, high_old.id);
  EXPECT_EQ(run.status, Status::kRunning);
  EXPECT_EQ(run.attempt, 1);
  EXPECT_EQ(run.started_ms, 10);
  EXPECT_EQ(run.owner, "host-a:7");
  EXPECT_EQ(MustGet(*store_, high_old.id).owner, "host-a:7");

  EXPECT_EQ(ClaimId(*store_, kWide, 10), high_new.id);
  EXPECT_EQ(ClaimId(*store_, kWide, 10), mid.id);
  EXPECT_EQ(ClaimId(*store_, kWide, 10), low.id);
  EXPECT_EQ(ClaimId(*store_, kWide, 10), low_same_time.id);
  EXPECT_EQ(ClaimId(*store_, kWide, 10), "");
}

TEST_P(StoreTest, ClaimStopsAtMaxRunningWhoeverOwnsThem) {
  Run a = MustEnqueue(*store_, Request("r1"), 1);
  Run b = MustEnqueue(*store_, Request("r2"), 2);
  Run c = MustEnqueue(*store_, Request("r3"), 3);
  const ClaimLimits two{.max_running = 2, .max_running_per_repo = 5};
  EXPECT_EQ(ClaimId(*store_, two, 10, "daemon-1"), a.id);
  EXPECT_EQ(ClaimId(*store_, two, 10, "daemon-2"), b.id);
  EXPECT_EQ(ClaimId(*store_, two, 10, "daemon-3"), "");
  EXPECT_EQ(MustGet(*store_, c.id).status, Status::kQueued);
  ASSERT_TRUE(store_->Complete(a.id, Ended(Status::kSucceeded), 11).ok());
  EXPECT_EQ(ClaimId(*store_, two, 12, "daemon-3"), c.id);
  EXPECT_EQ(ClaimId(*store_, {0, 2}, 12), "");
}

TEST_P(StoreTest, ClaimSkipsRunsOfAFullRepository) {
  Run a1 = MustEnqueue(*store_, Request("repo-a", 9), 1);
  Run a2 = MustEnqueue(*store_, Request("repo-a", 9), 2);
  Run a3 = MustEnqueue(*store_, Request("repo-a", 9), 3);
  Run b1 = MustEnqueue(*store_, Request("repo-b", 0), 4);
  const ClaimLimits per_repo{.max_running = 10, .max_running_per_repo = 2};
  EXPECT_EQ(ClaimId(*store_, per_repo, 10, "d1"), a1.id);
  EXPECT_EQ(ClaimId(*store_, per_repo, 10, "d2"), a2.id);
  // a3 has the higher priority but repo-a is full (two running, other owners included).
  EXPECT_EQ(ClaimId(*store_, per_repo, 10, "d3"), b1.id);
  EXPECT_EQ(ClaimId(*store_, per_repo, 10, "d3"), "");
  ASSERT_TRUE(store_->Complete(a2.id, Ended(Status::kFailed), 11).ok());
  EXPECT_EQ(ClaimId(*store_, per_repo, 12, "d3"), a3.id);
}

TEST_P(StoreTest, CancelRequestedQueuedRunIsNeverClaimed) {
  // RequestCancel ends a queued run at once; a queued run can still carry the
  // flag when set by another tool or a future version. It must not start.
  Run flagged = MustEnqueue(*store_, Request("r", 5), 1);
  Run plain = MustEnqueue(*store_, Request("r", 0), 2);
  RawExec("UPDATE runs SET cancel_requested = 1 WHERE id = $1", {flagged.id});
  EXPECT_EQ(ClaimId(*store_, kWide, 10), plain.id);
  EXPECT_EQ(ClaimId(*store_, kWide, 10), "");
  EXPECT_EQ(MustGet(*store_, flagged.id).status, Status::kQueued);
}

TEST_P(StoreTest, RetriesWaitTheirBackoffThenEndAsError) {
  RunRequest req = Request();
  req.max_attempts = 3;
  Run run = MustEnqueue(*store_, req, 0);
  Run other = MustEnqueue(*store_, Request("other", -1), 0);
  const RetryPolicy policy{.initial_backoff_ms = 1000, .max_backoff_ms = 5000, .multiplier = 10};

  ASSERT_EQ(ClaimId(*store_, kWide, 100), run.id);
  auto retried = store_->FailInfrastructure(run.id, "mirror fetch failed", policy, 100);
  ASSERT_TRUE(retried.ok()) << retried.error().message();
  EXPECT_TRUE(*retried);
  Run waiting = MustGet(*store_, run.id);
  EXPECT_EQ(waiting.status, Status::kQueued);
  EXPECT_EQ(waiting.not_before_ms, 1100);  // 1000 * 10^0
  EXPECT_EQ(waiting.owner, "");
  EXPECT_EQ(waiting.attempt, 1);
  EXPECT_EQ(waiting.error, "mirror fetch failed");
  EXPECT_EQ(waiting.finished_ms, 0);

  // Before not_before the lower-priority run goes first.
  EXPECT_EQ(ClaimId(*store_, kWide, 1099), other.id);
  EXPECT_EQ(ClaimId(*store_, kWide, 1099), "");
  auto second = store_->Claim(kWide, "daemon-2", 1100);
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->id, run.id);
  EXPECT_EQ((*second)->attempt, 2);
  EXPECT_EQ((*second)->started_ms, 1100);

  auto again = store_->FailInfrastructure(run.id, "sandbox setup failed", policy, 2000);
  ASSERT_TRUE(again.ok() && *again);
  EXPECT_EQ(MustGet(*store_, run.id).not_before_ms, 7000);  // min(1000 * 10^1, 5000)
  EXPECT_EQ(ClaimId(*store_, kWide, 6999), "");
  EXPECT_EQ(ClaimId(*store_, kWide, 7000), run.id);

  auto last = store_->FailInfrastructure(run.id, "disk full", policy, 8000);
  ASSERT_TRUE(last.ok()) << last.error().message();
  EXPECT_FALSE(*last);
  Run ended = MustGet(*store_, run.id);
  EXPECT_EQ(ended.status, Status::kError);
  EXPECT_EQ(ended.attempt, 3);
  EXPECT_EQ(ended.finished_ms, 8000);
  EXPECT_EQ(ended.error, "disk full");
  EXPECT_EQ(ClaimId(*store_, kWide, 100'000), "");
}

TEST_P(StoreTest, InfrastructureFailureAfterCancelIsNotRetried) {
  Run run = MustEnqueue(*store_, Request(), 0);
  ASSERT_EQ(ClaimId(*store_, kWide, 1), run.id);
  ASSERT_TRUE(store_->RequestCancel(run.id, 2).ok());
  auto retried = store_->FailInfrastructure(run.id, "lost the sandbox", {}, 3);
  ASSERT_TRUE(retried.ok()) << retried.error().message();
  EXPECT_FALSE(*retried);
  Run got = MustGet(*store_, run.id);
  EXPECT_EQ(got.status, Status::kError);
  EXPECT_EQ(got.error, "lost the sandbox");
}

TEST_P(StoreTest, InfrastructureFailureNeedsARunningRun) {
  Run run = MustEnqueue(*store_, Request(), 0);
  auto queued = store_->FailInfrastructure(run.id, "x", {}, 1);
  ASSERT_FALSE(queued.ok());
  EXPECT_EQ(queued.error().code(), Error::Code::kInvalidArgument);
  EXPECT_NE(queued.error().message().find("is queued, not running"), std::string::npos)
      << queued.error().message();
  auto unknown = store_->FailInfrastructure("r-none", "x", {}, 1);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Error::Code::kNotFound);
  EXPECT_EQ(MustGet(*store_, run.id).status, Status::kQueued);
}

TEST_P(StoreTest, RunningListsEveryOwnersRuns) {
  Run a = MustEnqueue(*store_, Request("a"), 1);
  Run b = MustEnqueue(*store_, Request("b"), 2);
  Run c = MustEnqueue(*store_, Request("c"), 3);
  MustEnqueue(*store_, Request("d"), 4);
  ASSERT_EQ(ClaimId(*store_, kWide, 5, "host-a:1"), a.id);
  ASSERT_EQ(ClaimId(*store_, kWide, 5, "host-b:2"), b.id);
  ASSERT_EQ(ClaimId(*store_, kWide, 5, "host-a:1"), c.id);
  ASSERT_TRUE(store_->Complete(b.id, Ended(Status::kSucceeded), 6).ok());
  auto running = store_->Running();
  ASSERT_TRUE(running.ok()) << running.error().message();
  ASSERT_EQ(running->size(), 2u);
  EXPECT_EQ((*running)[0].id, a.id);
  EXPECT_EQ((*running)[0].owner, "host-a:1");
  EXPECT_EQ((*running)[1].id, c.id);
}

// Two Store objects have two connections, as `kiln serve` on two hosts (or
// two daemons on one) would. Threads on both claim, check the limits against
// a snapshot, and complete, until every run has run once.
using QueueRaceTest = testing::BackendTest;

TEST_P(QueueRaceTest, ClaimsFromTwoConnectionsNeverCollideOrExceedLimits) {
  auto first = testing::MustOpen(location_);
  auto second = testing::MustOpen(location_);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  constexpr int kRuns = 200;
  constexpr int kRepos = 4;
  const ClaimLimits limits{.max_running = 3, .max_running_per_repo = 2};
  for (int i = 0; i < kRuns; ++i) {
    MustEnqueue(*first, Request("repo-" + std::to_string(i % kRepos), i % 3), i);
  }

  std::mutex mu;
  std::set<std::string> claimed;  // guarded by mu
  std::atomic<int> done{0};
  std::atomic<int> failures{0};
  auto worker = [&](Store* store, std::string owner) {
    int idle = 0;
    while (done.load() < kRuns && failures.load() == 0 && idle < 20'000) {
      auto got = store->Claim(limits, owner, kRuns);
      if (!got.ok()) {
        ADD_FAILURE() << got.error().message();
        failures++;
        return;
      }
      if (!*got) {
        // Sleep rather than spin: a spinning claimer would hold the write
        // lock so often that the other connection's busy wait could expire.
        ++idle;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      const store::Run& run = **got;
      {
        std::lock_guard lock(mu);
        if (!claimed.insert(run.id).second || run.attempt != 1) {
          ADD_FAILURE() << run.id << " claimed twice (attempt " << run.attempt << ")";
          failures++;
        }
      }
      // One snapshot: the claimed run is still running, so the limits held.
      auto running = store->Running();
      if (!running.ok()) {
        ADD_FAILURE() << running.error().message();
        failures++;
        return;
      }
      std::map<std::string, int> per_repo;
      for (const store::Run& r : *running) per_repo[r.request.repo]++;
      if (static_cast<int>(running->size()) > limits.max_running) {
        ADD_FAILURE() << running->size() << " runs running";
        failures++;
      }
      for (const auto& [repo, n] : per_repo) {
        if (n > limits.max_running_per_repo) {
          ADD_FAILURE() << n << " runs of " << repo << " running";
          failures++;
        }
      }
      // "Run" it for a moment outside any transaction, so that the other
      // connection gets the write lock and the claims interleave.
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      auto st = store->Complete(run.id, Ended(Status::kSucceeded, owner), kRuns);
      if (!st.ok()) {
        ADD_FAILURE() << st.error().message();
        failures++;
        return;
      }
      done++;
      idle = 0;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back(worker, t % 2 == 0 ? first.get() : second.get(),
                         "worker-" + std::to_string(t));
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(done.load(), kRuns);
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kRuns));
  auto counts = second->CountByStatus();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->at(Status::kSucceeded), static_cast<uint64_t>(kRuns));
  EXPECT_EQ(counts->at(Status::kRunning), 0u);
  EXPECT_EQ(counts->at(Status::kQueued), 0u);
  // Both connections did some of the work.
  auto runs = first->List({std::nullopt, "", "", 0});
  ASSERT_TRUE(runs.ok());
  std::map<std::string, int> by_owner;
  for (const store::Run& r : *runs) by_owner[r.owner]++;
  EXPECT_GT(by_owner["worker-0"] + by_owner["worker-2"], 0);
  EXPECT_GT(by_owner["worker-1"] + by_owner["worker-3"], 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, testing::AllBackends(), testing::BackendName);
INSTANTIATE_TEST_SUITE_P(Backends, QueueRaceTest, testing::AllBackends(), testing::BackendName);

}  // namespace
}  // namespace kiln::store
