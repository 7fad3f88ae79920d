// The scheduler against a real store on both backends (a SQLite file, and a
// database on the test PostgreSQL server), with the clock in the test's
// hands: a new schedule counts from its first sight, missed ticks fire once,
// a restart does not fire again, an active run makes the next tick skip, two
// schedulers on one store (two daemons) fire each tick once, a fire whose
// host died before queueing its run is queued by another, jitter.
#include "controller/schedule/scheduler.h"

#include <time.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "base/strings.h"
#include "controller/store/testutil.h"

namespace kiln::schedule {
namespace {

using store::testing::AllBackends;
using store::testing::BackendName;
using store::testing::TempDir;

int64_t Ms(const char* iso) {  // "YYYY-MM-DDTHH:MM" UTC
  struct tm tm = {};
  EXPECT_NE(strptime(iso, "%Y-%m-%dT%H:%M", &tm), nullptr) << iso;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

constexpr int64_t kMinute = 60'000;

class SchedulerTest : public store::testing::BackendTest {
 protected:
  void Configure(const std::string& schedules) {
    auto c = config::Parse("store: " + location_ + "\nschedules:\n" + schedules, "kiln.yaml");
    ASSERT_TRUE(c.ok()) << c.error().message();
    config_ = std::move(*c);
    auto s = store::Open(config_.store);
    ASSERT_TRUE(s.ok()) << s.error().message();
    store_ = std::move(*s);
  }

  std::unique_ptr<Scheduler> Open(const std::string& host = "host-a") {
    auto s = Scheduler::Open(config_, *store_, host);
    EXPECT_TRUE(s.ok()) << s.error().message();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::vector<Fire> Tick(Scheduler& s, int64_t now) {
    auto fires = s.Tick(now);
    EXPECT_TRUE(fires.ok()) << fires.error().message();
    return fires.ok() ? *fires : std::vector<Fire>();
  }

  size_t Runs() {
    auto runs = store_->List({});
    EXPECT_TRUE(runs.ok());
    return runs.ok() ? runs->size() : 0;
  }

  config::Config config_;
  std::unique_ptr<store::Store> store_;
};

const char* kHourly = R"(  - name: hourly
    cron: "0 * * * *"
    run: {role: triage, repo: /srv/repo.git, task: look at the new issues}
)";

TEST_P(SchedulerTest, ANewScheduleCountsFromItsFirstSight) {
  Configure(kHourly);
  auto s = Open();
  EXPECT_TRUE(Tick(*s, Ms("2026-12-06T10:30")).empty());
  EXPECT_EQ(Runs(), 0u);  // 10:00 was before kiln knew the schedule
  auto fires = Tick(*s, Ms("2026-12-06T11:00"));
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].outcome, "fired");
  EXPECT_EQ(fires[0].tick_ms, Ms("2026-12-06T11:00"));
  auto run = store_->Get(fires[0].run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->request.role, "triage");
  EXPECT_EQ(run->request.repo, "/srv/repo.git");
  EXPECT_EQ(run->request.commit, "HEAD");
  EXPECT_EQ(run->request.task, "look at the new issues");
  EXPECT_EQ(run->request.requested_by, "schedule:hourly");
}

TEST_P(SchedulerTest, ThreeMissedTicksFireOnceAtTheLatest) {
  Configure(kHourly);
  Tick(*Open(), Ms("2026-12-06T10:30"));
  // kiln was down from 10:30 to 14:10: 11:00, 12:00, 13:00 and 14:00 passed.
  auto s = Open();
  auto fires = Tick(*s, Ms("2026-12-06T14:10"));
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].tick_ms, Ms("2026-12-06T14:00"));
  EXPECT_EQ(Runs(), 1u);
  EXPECT_TRUE(Tick(*s, Ms("2026-12-06T14:20")).empty());
  auto totals = State::Open(config_.store).value()->TotalsOf("hourly");
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->fires, 1u);
  EXPECT_EQ(totals->last_lateness_ms, 10 * kMinute);
}

TEST_P(SchedulerTest, ARestartDoesNotFireTheSameTickAgain) {
  Configure(kHourly);
  Tick(*Open(), Ms("2026-12-06T10:30"));
  ASSERT_EQ(Tick(*Open(), Ms("2026-12-06T11:00")).size(), 1u);
  // Restarted at 11:05, and again at 11:59: nothing is due.
  EXPECT_TRUE(Tick(*Open(), Ms("2026-12-06T11:05")).empty());
  EXPECT_TRUE(Tick(*Open(), Ms("2026-12-06T11:59")).empty());
  EXPECT_EQ(Runs(), 1u);
}

TEST_P(SchedulerTest, AScheduleWhoseRunIsActiveSkipsItsNextTick) {
  Configure(kHourly);
  auto s = Open();
  Tick(*s, Ms("2026-12-06T10:30"));
  auto first = Tick(*s, Ms("2026-12-06T11:00"));
  ASSERT_EQ(first.size(), 1u);
  // Still queued at 12:00.
  auto skipped = Tick(*s, Ms("2026-12-06T12:00"));
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].outcome, "skipped");
  EXPECT_EQ(skipped[0].reason, "its previous run " + first[0].run_id + " is still queued");
  // Running at 13:00.
  auto claimed = store_->Claim({}, "daemon", Ms("2026-12-06T12:30"));
  ASSERT_TRUE(claimed.ok() && *claimed);
  auto again = Tick(*s, Ms("2026-12-06T13:00"));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].reason, "its previous run " + first[0].run_id + " is still running");
  EXPECT_EQ(Runs(), 1u);
  // Done by 14:00: the tick fires.
  ASSERT_TRUE(store_
                  ->Complete(first[0].run_id,
                             {store::Status::kSucceeded, "submitted", nullptr, "", ""},
                             Ms("2026-12-06T13:30"))
                  .ok());
  auto fired = Tick(*s, Ms("2026-12-06T14:00"));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].outcome, "fired");
  EXPECT_EQ(Runs(), 2u);
  auto totals = State::Open(config_.store).value()->TotalsOf("hourly");
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->fires, 2u);
  EXPECT_EQ(totals->skips, 2u);
  std::string metrics = s->Metrics();
  EXPECT_NE(metrics.find("kiln_schedule_fires_total{schedule=\"hourly\"} 2\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("kiln_schedule_skips_total{schedule=\"hourly\"} 2\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("kiln_schedule_lateness_seconds{schedule=\"hourly\"} 0\n"),
            std::string::npos)
      << metrics;
}

TEST_P(SchedulerTest, TwoSchedulersOnOneStoreFireEachTickOnce) {
  Configure(kHourly);
  Tick(*Open(), Ms("2026-12-06T00:00") - kMinute);
  // Two daemons, each with its own connections, racing through a day of
  // ticks minute by minute; each run ends before the next tick.
  auto second_store = store::Open(config_.store);
  ASSERT_TRUE(second_store.ok());
  std::unique_ptr<Scheduler> a = Open("host-a");
  auto b_or = Scheduler::Open(config_, **second_store, "host-b");
  ASSERT_TRUE(b_or.ok());
  std::unique_ptr<Scheduler> b = std::move(*b_or);
  std::atomic<int> fired{0};
  for (int64_t t = Ms("2026-12-06T00:00"); t < Ms("2026-12-07T00:00"); t += 15 * kMinute) {
    std::thread ta([&] {
      for (const Fire& f : Tick(*a, t)) fired += f.outcome == "fired";
    });
    std::thread tb([&] {
      for (const Fire& f : Tick(*b, t)) fired += f.outcome == "fired";
    });
    ta.join();
    tb.join();
    // The run of this tick ends.
    auto claimed = store_->Claim({100, 100}, "daemon", t);
    ASSERT_TRUE(claimed.ok());
    if (*claimed) {
      ASSERT_TRUE(store_
                      ->Complete((*claimed)->id,
                                 {store::Status::kSucceeded, "submitted", nullptr, "", ""}, t)
                      .ok());
    }
  }
  EXPECT_EQ(fired.load(), 24);
  EXPECT_EQ(Runs(), 24u);
  EXPECT_EQ(RawQuery("SELECT COUNT(*) FROM schedule_fires"), "24");
  EXPECT_EQ(RawQuery("SELECT COUNT(DISTINCT tick_ms) FROM schedule_fires"), "24");
}

TEST_P(SchedulerTest, AFireWhoseHostDiedBeforeQueueingIsQueuedByAnother) {
  Configure(kHourly);
  Tick(*Open(), Ms("2026-12-06T10:30"));
  // A host claims 11:00 and dies before queueing the run.
  auto state = State::Open(config_.store);
  ASSERT_TRUE(state.ok());
  auto claimed = (*state)->ClaimTick("hourly", Ms("2026-12-06T10:30"), Ms("2026-12-06T11:00"),
                                     "dead-host", Ms("2026-12-06T11:00"));
  ASSERT_TRUE(claimed.ok() && *claimed);
  EXPECT_EQ((*claimed)->outcome, "claimed");
  auto s = Open("host-b");
  // Within the minute the claim stands (and blocks a manual fire).
  EXPECT_TRUE(Tick(*s, Ms("2026-12-06T11:00") + 30'000).empty());
  auto manual = s->FireNow("hourly", Ms("2026-12-06T11:00") + 40'000);
  ASSERT_TRUE(manual.ok());
  EXPECT_EQ(manual->outcome, "skipped");
  EXPECT_EQ(manual->reason, "its previous fire is being started by dead-host");
  EXPECT_EQ(Runs(), 0u);
  // After it, the other host queues the run, once.
  auto fires = Tick(*s, Ms("2026-12-06T11:01") + 1'000);
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].seq, (*claimed)->seq);
  EXPECT_EQ(fires[0].outcome, "fired");
  EXPECT_EQ(fires[0].host, "host-b");
  EXPECT_TRUE(Tick(*s, Ms("2026-12-06T11:05")).empty());
  EXPECT_EQ(Runs(), 1u);
}

TEST_P(SchedulerTest, FireNowQueuesARunUnderTheSameSingleFlightRule) {
  Configure(kHourly);
  auto s = Open();
  auto fire = s->FireNow("hourly", Ms("2026-12-06T10:10"));
  ASSERT_TRUE(fire.ok()) << fire.error().message();
  EXPECT_EQ(fire->kind, "manual");
  EXPECT_EQ(fire->outcome, "fired");
  auto again = s->FireNow("hourly", Ms("2026-12-06T10:11"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome, "skipped");
  EXPECT_EQ(again->reason, "its previous run " + fire->run_id + " is still queued");
  // The tick after it is skipped too; the manual fire did not move the ticks.
  Tick(*s, Ms("2026-12-06T10:30"));
  auto tick = Tick(*s, Ms("2026-12-06T11:00"));
  ASSERT_EQ(tick.size(), 1u);
  EXPECT_EQ(tick[0].outcome, "skipped");
  EXPECT_EQ(Runs(), 1u);

  auto unknown = s->FireNow("weekly", Ms("2026-12-06T11:00"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message(), "no schedule named 'weekly' in kiln.yaml (it has hourly)");
}

TEST_P(SchedulerTest, JitterDelaysATickByTheSameAmountOnEveryHost) {
  Configure(R"(  - name: nightly
    cron: "@daily"
    jitter: 30m
    run: {role: triage, repo: /srv/repo.git, task: t}
)");
  Tick(*Open(), Ms("2026-12-06T12:00"));
  // Minute by minute from midnight: the tick fires within its 30 minutes.
  int64_t fired_at = -1;
  auto s = Open();
  for (int64_t t = Ms("2026-12-07T00:00"); t < Ms("2026-12-07T00:30"); t += kMinute) {
    if (!Tick(*s, t).empty()) {
      fired_at = t;
      break;
    }
  }
  ASSERT_GE(fired_at, Ms("2026-12-07T00:00"));
  // Another store, the same schedule: the same minute.
  TempDir other;
  auto c = config::Parse("store: " + other / "kiln.db" + R"(
schedules:
  - name: nightly
    cron: "@daily"
    jitter: 30m
    run: {role: triage, repo: /srv/repo.git, task: t}
)",
                         "kiln.yaml");
  ASSERT_TRUE(c.ok());
  auto st = store::OpenSqlite(c->store);
  ASSERT_TRUE(st.ok());
  auto b = Scheduler::Open(*c, **st, "host-b");
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->Tick(Ms("2026-12-06T12:00")).ok());
  if (fired_at > Ms("2026-12-07T00:00")) {
    EXPECT_TRUE((*b)->Tick(fired_at - kMinute)->empty());
  }
  EXPECT_EQ((*b)->Tick(fired_at)->size(), 1u);
}

TEST_P(SchedulerTest, ListShowsTheNextTickInTheZoneAndTheLastFire) {
  Configure(R"(  - name: berlin
    cron: "30 2 * * *"
    time_zone: Europe/Berlin
    run: {role: triage, repo: /srv/repo.git, task: t}
)");
  auto s = Open();
  Tick(*s, Ms("2026-03-28T12:00"));
  auto list = s->List(Ms("2026-03-28T12:00"));
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  // 02:30 does not exist that night: the clock jumps from 02:00 to 03:00.
  EXPECT_EQ((*list)[0].next_local, "2026-03-29 03:00 CEST");
  EXPECT_FALSE((*list)[0].last);
  Tick(*s, Ms("2026-03-29T01:00"));
  list = s->List(Ms("2026-03-29T01:00"));
  ASSERT_TRUE(list.ok());
  ASSERT_TRUE((*list)[0].last);
  EXPECT_EQ((*list)[0].last->outcome, "fired");
  EXPECT_EQ((*list)[0].last_run_status, "queued");
  EXPECT_EQ((*list)[0].next_local, "2026-03-30 02:30 CEST");
}

INSTANTIATE_TEST_SUITE_P(Backends, SchedulerTest, AllBackends(), BackendName);

}  // namespace
}  // namespace kiln::schedule
