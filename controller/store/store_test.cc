// The store's records: statuses, run ids, enqueue, progress, completion,
// cancellation, listing, counting, and reopening the file.
#include "controller/store/store.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>

#include "controller/store/run_id.h"
#include "controller/store/testutil.h"

namespace kiln::store {
namespace {

using testing::Ended;
using testing::ExpectSameRun;
using testing::MustEnqueue;
using testing::MustGet;
using testing::Progressed;
using testing::Request;
using testing::StoreTest;

constexpr Status kAllStatuses[] = {Status::kQueued, Status::kRunning,         Status::kSucceeded,
                                   Status::kFailed, Status::kBudgetExhausted, Status::kCancelled,
                                   Status::kError};

// id is prefix followed by 8 lowercase hex digits. (std::regex would do, but
// GCC 12 reports a false -Wmaybe-uninitialized inside it under ASan.)
bool IdOfSecond(const std::string& id, std::string_view prefix) {
  if (id.size() != prefix.size() + 8 || !id.starts_with(prefix)) return false;
  for (char c : id.substr(prefix.size())) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

// [A-Za-z0-9._:-]{1,128}, what the session log requires of run ids.
bool SafeRunId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("._:-").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

TEST(StatusTest, NamesRoundTripAndOnlyEndsAreTerminal) {
  std::set<std::string> names;
  for (Status s : kAllStatuses) {
    names.insert(std::string(ToString(s)));
    auto parsed = ParseStatus(ToString(s));
    ASSERT_TRUE(parsed.ok()) << parsed.error().message();
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(names.size(), 7u);
  EXPECT_EQ(ToString(Status::kBudgetExhausted), "budget_exhausted");
  EXPECT_FALSE(IsTerminal(Status::kQueued));
  EXPECT_FALSE(IsTerminal(Status::kRunning));
  EXPECT_TRUE(IsTerminal(Status::kSucceeded));
  EXPECT_TRUE(IsTerminal(Status::kCancelled));
  EXPECT_TRUE(IsTerminal(Status::kError));
  auto bad = ParseStatus("done");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("'done'"), std::string::npos) << bad.error().message();
}

TEST(RunIdTest, NamesTheUtcSecondAndIsSafe) {
  auto id = NewRunId(1'710'408'413'999);  // 2024-03-14 09:26:53.999 UTC
  ASSERT_TRUE(id.ok()) << id.error().message();
  EXPECT_TRUE(IdOfSecond(*id, "r20240314T092653-")) << *id;
  EXPECT_TRUE(SafeRunId(*id)) << *id;
  auto before_epoch = NewRunId(-1);
  ASSERT_TRUE(before_epoch.ok());
  EXPECT_EQ(before_epoch->substr(0, 17), "r19691231T235959-");
  auto other = NewRunId(1'710'408'413'999);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*id, *other);  // 32 random bits: equal once in four billion
}

TEST_P(StoreTest, EnqueueAndGetKeepEveryField) {
  RunRequest req;
  req.role = "review";
  req.repo = "/srv/git/widget";
  req.commit = "v1.2.3";
  req.task = "review PR 12\nwith a second line and 'quotes' \"too\"";
  req.priority = -3;
  req.budgets = {{"max_turns", 40}, {"timeout", "30m"}, {"nested", {{"a", {1, 2}}}}};
  req.requested_by = "webhook:github";
  req.max_attempts = 5;
  Run queued = MustEnqueue(*store_, req, 1'710'408'413'000);
  EXPECT_TRUE(IdOfSecond(queued.id, "r20240314T092653-")) << queued.id;
  EXPECT_EQ(queued.status, Status::kQueued);
  EXPECT_EQ(queued.created_ms, 1'710'408'413'000);

  Run got = MustGet(*store_, queued.id);
  ExpectSameRun(got, queued);
  EXPECT_EQ(got.request.role, "review");
  EXPECT_EQ(got.request.repo, "/srv/git/widget");
  EXPECT_EQ(got.request.commit, "v1.2.3");
  EXPECT_EQ(got.request.task, req.task);
  EXPECT_EQ(got.request.priority, -3);
  EXPECT_EQ(got.request.budgets["nested"]["a"][1], 2);
  EXPECT_EQ(got.request.budgets["timeout"], "30m");
  EXPECT_EQ(got.request.requested_by, "webhook:github");
  EXPECT_EQ(got.request.max_attempts, 5);
  EXPECT_EQ(got.attempt, 0);
  EXPECT_EQ(got.started_ms, 0);
  EXPECT_EQ(got.finished_ms, 0);
  EXPECT_EQ(got.not_before_ms, 0);
  EXPECT_EQ(got.owner, "");
  EXPECT_FALSE(got.cancel_requested);
  EXPECT_TRUE(got.result.is_null());
  EXPECT_EQ(got.error, "");
}

TEST_P(StoreTest, EnqueueRefusesEmptyFieldsAndNoAttempts) {
  RunRequest no_task = Request();
  no_task.task.clear();
  auto r = store_->Enqueue(no_task, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Error::Code::kInvalidArgument);
  EXPECT_NE(r.error().message().find("task"), std::string::npos) << r.error().message();

  RunRequest no_repo = Request("");
  EXPECT_FALSE(store_->Enqueue(no_repo, 1).ok());
  RunRequest zero = Request();
  zero.max_attempts = 0;
  EXPECT_FALSE(store_->Enqueue(zero, 1).ok());
  auto all = store_->List({});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_P(StoreTest, UnknownRunIsNotFound) {
  auto r = store_->Get("r20240101T000000-deadbeef");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Error::Code::kNotFound);
  EXPECT_EQ(r.error().message(), "no run 'r20240101T000000-deadbeef'");
  EXPECT_EQ(store_->SetProgress("nope", {}).error().code(), Error::Code::kNotFound);
  EXPECT_EQ(store_->Complete("nope", {}, 1).error().code(), Error::Code::kNotFound);
}

TEST_P(StoreTest, ProgressFillsFieldsAndKeepsThoseLeftEmpty) {
  Run run = MustEnqueue(*store_, Request(), 10);
  auto early = store_->SetProgress(run.id, Progressed("a", "", "", "", ""));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code(), Error::Code::kInvalidArgument);
  EXPECT_NE(early.error().message().find("is queued, not running"), std::string::npos)
      << early.error().message();

  ASSERT_EQ(testing::ClaimId(*store_, {}, 20), run.id);
  const std::string sha(40, 'c');
  ASSERT_TRUE(store_->SetProgress(run.id, Progressed(sha, "sha256:11", "", "", "")).ok());
  ASSERT_TRUE(
      store_->SetProgress(run.id, Progressed("", "", "sb-1", "/var/lib/kiln/logs/x.jsonl", "ab12"))
          .ok());
  ASSERT_TRUE(store_->SetProgress(run.id, Progressed("", "", "", "", "cd34")).ok());
  ASSERT_TRUE(store_->SetProgress(run.id, Progressed("", "sha256:22", "", "", "")).ok());
  Run got = MustGet(*store_, run.id);
  EXPECT_EQ(got.commit_sha, sha);
  EXPECT_EQ(got.image_digest, "sha256:22");
  EXPECT_EQ(got.sandbox_id, "sb-1");
  EXPECT_EQ(got.log_path, "/var/lib/kiln/logs/x.jsonl");
  EXPECT_EQ(got.log_head, "cd34");
  EXPECT_EQ(got.status, Status::kRunning);
}

// A running attempt's use so far, recorded by its host: what the other
// hosts of a fleet read. Other progress leaves it; a newer record replaces it.
TEST_P(StoreTest, ProgressRecordsTheUseSoFarAndKeepsItUntilReplaced) {
  Run run = MustEnqueue(*store_, Request(), 10);
  ASSERT_EQ(testing::ClaimId(*store_, {}, 20), run.id);
  EXPECT_TRUE(MustGet(*store_, run.id).live.is_null());
  Progress p;
  p.live = {{"attempt", 1}, {"turns", 3}, {"tool_calls", 2}};
  ASSERT_TRUE(store_->SetProgress(run.id, p).ok());
  ASSERT_TRUE(store_->SetProgress(run.id, Progressed("", "", "", "", "ab12")).ok());
  Run got = MustGet(*store_, run.id);
  EXPECT_EQ(got.live, p.live);
  EXPECT_EQ(got.log_head, "ab12");
  EXPECT_EQ(ToJson(got)["live"]["turns"], 3);
  p.live["turns"] = 4;
  ASSERT_TRUE(store_->SetProgress(run.id, p).ok());
  EXPECT_EQ(MustGet(*store_, run.id).live["turns"], 4);
  // Ended: the result has the totals; nothing is "so far" any more.
  ASSERT_TRUE(
      store_->Complete(run.id, {Status::kSucceeded, "submitted", nullptr, "", ""}, 30).ok());
  EXPECT_TRUE(MustGet(*store_, run.id).live.is_null());
}

TEST_P(StoreTest, CompleteEndsTheRunWithItsResult) {
  Run run = MustEnqueue(*store_, Request(), 10);
  ASSERT_EQ(testing::ClaimId(*store_, {}, 20), run.id);
  ASSERT_TRUE(store_->SetProgress(run.id, Progressed("", "", "", "", "early")).ok());

  auto not_terminal = store_->Complete(run.id, Ended(Status::kRunning), 30);
  ASSERT_FALSE(not_terminal.ok());
  EXPECT_NE(not_terminal.error().message().find("not terminal"), std::string::npos);

  Finish finish{Status::kBudgetExhausted,
                "budget_exhausted",
                {{"summary", "ran out"}, {"files", 3}},
                "token budget of 100000 spent",
                "final"};
  ASSERT_TRUE(store_->Complete(run.id, finish, 99).ok());
  Run got = MustGet(*store_, run.id);
  EXPECT_EQ(got.status, Status::kBudgetExhausted);
  EXPECT_EQ(got.outcome, "budget_exhausted");
  EXPECT_EQ(got.result, finish.result);
  EXPECT_EQ(got.error, "token budget of 100000 spent");
  EXPECT_EQ(got.log_head, "final");
  EXPECT_EQ(got.started_ms, 20);
  EXPECT_EQ(got.finished_ms, 99);
  EXPECT_EQ(got.owner, "daemon-1");
  EXPECT_EQ(got.attempt, 1);

  auto again = store_->Complete(run.id, Ended(Status::kSucceeded), 100);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message().find("is budget_exhausted, not running"), std::string::npos)
      << again.error().message();
  EXPECT_EQ(MustGet(*store_, run.id).status, Status::kBudgetExhausted);
}

TEST_P(StoreTest, CompleteKeepsTheProgressLogHeadWhenFinishHasNone) {
  Run run = MustEnqueue(*store_, Request(), 10);
  ASSERT_EQ(testing::ClaimId(*store_, {}, 20), run.id);
  ASSERT_TRUE(store_->SetProgress(run.id, Progressed("", "", "", "", "from-progress")).ok());
  ASSERT_TRUE(store_->Complete(run.id, Ended(Status::kSucceeded, "submitted"), 30).ok());
  Run got = MustGet(*store_, run.id);
  EXPECT_EQ(got.log_head, "from-progress");
  EXPECT_EQ(got.status, Status::kSucceeded);
  EXPECT_TRUE(got.result.is_null());
}

TEST_P(StoreTest, CancelQueuedEndsItAtOnce) {
  Run run = MustEnqueue(*store_, Request(), 10);
  auto cancelled = store_->RequestCancel(run.id, 50);
  ASSERT_TRUE(cancelled.ok()) << cancelled.error().message();
  EXPECT_EQ(cancelled->status, Status::kCancelled);
  EXPECT_EQ(cancelled->finished_ms, 50);
  EXPECT_TRUE(cancelled->cancel_requested);
  ExpectSameRun(MustGet(*store_, run.id), *cancelled);
  EXPECT_EQ(testing::ClaimId(*store_, {}, 60), "");
}

TEST_P(StoreTest, CancelRunningFlagsItForItsOwner) {
  Run run = MustEnqueue(*store_, Request(), 10);
  ASSERT_EQ(testing::ClaimId(*store_, {}, 20), run.id);
  auto flagged = store_->RequestCancel(run.id, 50);
  ASSERT_TRUE(flagged.ok()) << flagged.error().message();
  EXPECT_EQ(flagged->status, Status::kRunning);
  EXPECT_TRUE(flagged->cancel_requested);
  EXPECT_EQ(flagged->finished_ms, 0);
  auto twice = store_->RequestCancel(run.id, 60);  // asking again changes nothing
  ASSERT_TRUE(twice.ok());
  ExpectSameRun(*twice, *flagged);

  ASSERT_TRUE(store_->Complete(run.id, Ended(Status::kCancelled, "killed"), 70).ok());
  Run got = MustGet(*store_, run.id);
  EXPECT_EQ(got.status, Status::kCancelled);
  EXPECT_EQ(got.finished_ms, 70);
}

TEST_P(StoreTest, CancelEndedOrUnknownRunIsRefused) {
  Run run = MustEnqueue(*store_, Request(), 10);
  ASSERT_EQ(testing::ClaimId(*store_, {}, 20), run.id);
  ASSERT_TRUE(store_->Complete(run.id, Ended(Status::kSucceeded), 30).ok());
  auto ended = store_->RequestCancel(run.id, 40);
  ASSERT_FALSE(ended.ok());
  EXPECT_EQ(ended.error().code(), Error::Code::kInvalidArgument);
  EXPECT_EQ(ended.error().message(),
            "cannot cancel run '" + run.id + "': it has already ended as succeeded");
  EXPECT_EQ(MustGet(*store_, run.id).status, Status::kSucceeded);
  EXPECT_FALSE(MustGet(*store_, run.id).cancel_requested);

  auto unknown = store_->RequestCancel("r-missing", 40);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Error::Code::kNotFound);
  EXPECT_EQ(unknown.error().message(), "no run 'r-missing'");
}

TEST_P(StoreTest, ListFiltersNewestFirstWithLimit) {
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    RunRequest req = Request(i % 2 == 0 ? "repo-even" : "repo-odd");
    req.role = i < 3 ? "triage" : "implement";
    ids.push_back(MustEnqueue(*store_, req, 100 + i).id);
  }
  // Claims the oldest run (ids[0]): the only one running.
  ASSERT_EQ(testing::ClaimId(*store_, {}, 200), ids[0]);

  auto id_list = [](const Result<std::vector<Run>>& runs) {
    std::vector<std::string> out;
    EXPECT_TRUE(runs.ok()) << runs.error().message();
    if (runs.ok()) {
      for (const Run& r : *runs) out.push_back(r.id);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(id_list(store_->List({})), (V{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}));
  EXPECT_EQ(id_list(store_->List({std::nullopt, "", "", 2})), (V{ids[5], ids[4]}));
  EXPECT_EQ(id_list(store_->List({std::nullopt, "", "", 0})).size(), 6u);
  EXPECT_EQ(id_list(store_->List({Status::kRunning, "", "", 100})), (V{ids[0]}));
  EXPECT_EQ(id_list(store_->List({Status::kQueued, "", "", 100})),
            (V{ids[5], ids[4], ids[3], ids[2], ids[1]}));
  EXPECT_EQ(id_list(store_->List({std::nullopt, "triage", "", 100})), (V{ids[2], ids[1], ids[0]}));
  EXPECT_EQ(id_list(store_->List({std::nullopt, "", "repo-odd", 100})),
            (V{ids[5], ids[3], ids[1]}));
  EXPECT_EQ(id_list(store_->List({std::nullopt, "implement", "repo-even", 100})), (V{ids[4]}));
  EXPECT_EQ(id_list(store_->List({Status::kQueued, "triage", "", 1})), (V{ids[2]}));
  EXPECT_TRUE(id_list(store_->List({Status::kError, "", "", 100})).empty());
  EXPECT_TRUE(id_list(store_->List({std::nullopt, "spec", "", 100})).empty());
}

TEST_P(StoreTest, CountByStatusHasEveryStatus) {
  auto empty = store_->CountByStatus();
  ASSERT_TRUE(empty.ok()) << empty.error().message();
  ASSERT_EQ(empty->size(), 7u);
  for (Status s : kAllStatuses) EXPECT_EQ(empty->at(s), 0u) << ToString(s);

  Run a = MustEnqueue(*store_, Request("a"), 1);
  Run b = MustEnqueue(*store_, Request("b"), 2);
  MustEnqueue(*store_, Request("c"), 3);
  MustEnqueue(*store_, Request("d"), 4);
  ASSERT_EQ(testing::ClaimId(*store_, {}, 5), a.id);
  ASSERT_EQ(testing::ClaimId(*store_, {}, 5), b.id);
  ASSERT_TRUE(store_->Complete(b.id, Ended(Status::kFailed), 6).ok());
  auto counts = store_->CountByStatus();
  ASSERT_TRUE(counts.ok());
  ASSERT_EQ(counts->size(), 7u);
  EXPECT_EQ(counts->at(Status::kQueued), 2u);
  EXPECT_EQ(counts->at(Status::kRunning), 1u);
  EXPECT_EQ(counts->at(Status::kFailed), 1u);
  EXPECT_EQ(counts->at(Status::kSucceeded), 0u);
  EXPECT_EQ(counts->at(Status::kError), 0u);
}

TEST_P(StoreTest, ReopeningTheFileKeepsEverything) {
  RunRequest req = Request("/srv/git/x", 4);
  req.budgets = {{"max_turns", 9}};
  Run done = MustEnqueue(*store_, req, 1000);
  Run waiting = MustEnqueue(*store_, Request("/srv/git/y"), 1001);
  ASSERT_EQ(testing::ClaimId(*store_, {}, 2000, "host-a:1"), done.id);
  ASSERT_TRUE(
      store_->SetProgress(done.id, Progressed(std::string(40, 'f'), "sha256:99", "sb", "/l", ""))
          .ok());
  ASSERT_TRUE(store_
                  ->Complete(done.id,
                             Finish{Status::kSucceeded, "submitted", {{"diff", "+1 -0"}}, "", "h"},
                             3000)
                  .ok());
  Run before_done = MustGet(*store_, done.id);
  Run before_waiting = MustGet(*store_, waiting.id);
  store_.reset();

  auto reopened = testing::MustOpen(location_);
  ASSERT_NE(reopened, nullptr);
  Run after_done = MustGet(*reopened, done.id);
  ExpectSameRun(after_done, before_done);
  ExpectSameRun(MustGet(*reopened, waiting.id), before_waiting);
  EXPECT_EQ(after_done.result["diff"], "+1 -0");
  EXPECT_EQ(after_done.request.budgets["max_turns"], 9);
  EXPECT_EQ(after_done.owner, "host-a:1");
  EXPECT_EQ(after_done.commit_sha, std::string(40, 'f'));
  // The queue order survives too: the waiting run is next.
  EXPECT_EQ(testing::ClaimId(*reopened, {}, 4000), waiting.id);
}

TEST_P(StoreTest, StartRunsAQueuedRunWhateverTheLimits) {
  Run a = MustEnqueue(*store_, Request(), 1);
  Run b = MustEnqueue(*store_, Request(), 2);
  ASSERT_EQ(testing::ClaimId(*store_, {.max_running = 1, .max_running_per_repo = 1}, 3), a.id);
  auto started = store_->Start(b.id, "cli-1", 4);
  ASSERT_TRUE(started.ok()) << started.error().message();
  EXPECT_EQ(started->status, Status::kRunning);
  EXPECT_EQ(started->attempt, 1);
  EXPECT_EQ(started->owner, "cli-1");
  EXPECT_EQ(started->started_ms, 4);
  auto again = store_->Start(b.id, "cli-2", 5);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message().find("it is running"), std::string::npos)
      << again.error().message();
  EXPECT_EQ(store_->Start("r-none", "x", 5).error().code(), Error::Code::kNotFound);
  Run c = MustEnqueue(*store_, Request(), 6);
  ASSERT_TRUE(store_->RequestCancel(c.id, 7).ok());
  EXPECT_FALSE(store_->Start(c.id, "x", 8).ok());
}

TEST_P(StoreTest, StartNewAddsARunningRunNoClaimSees) {
  auto started = store_->StartNew(Request(), "cli-1", 4);
  ASSERT_TRUE(started.ok()) << started.error().message();
  EXPECT_EQ(started->status, Status::kRunning);
  EXPECT_EQ(started->attempt, 1);
  EXPECT_EQ(started->owner, "cli-1");
  EXPECT_EQ(started->started_ms, 4);
  EXPECT_EQ(started->created_ms, 4);
  ExpectSameRun(MustGet(*store_, started->id), *started);
  auto claimed = store_->Claim({}, "daemon", 5);
  ASSERT_TRUE(claimed.ok());
  EXPECT_FALSE(claimed->has_value());
  // The request is checked as Enqueue checks it, and nothing is added.
  RunRequest bad = Request();
  bad.task = "";
  EXPECT_FALSE(store_->StartNew(bad, "cli-1", 6).ok());
  EXPECT_FALSE(store_->StartNew(Request(), "", 6).ok());
  auto all = store_->List({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

TEST_P(StoreTest, SteeringIsTakenOnceInOrder) {
  Run run = MustEnqueue(*store_, Request(), 1);
  Run other = MustEnqueue(*store_, Request(), 1);
  ASSERT_TRUE(store_->AddSteering(run.id, "alice", "first", 2).ok());
  ASSERT_TRUE(store_->AddSteering(other.id, "bob", "not yours", 2).ok());
  ASSERT_TRUE(store_->AddSteering(run.id, "carol", "second", 3).ok());
  auto taken = store_->TakeSteering(run.id);
  ASSERT_TRUE(taken.ok()) << taken.error().message();
  ASSERT_EQ(taken->size(), 2u);
  EXPECT_EQ((*taken)[0].from, "alice");
  EXPECT_EQ((*taken)[0].message, "first");
  EXPECT_EQ((*taken)[0].created_ms, 2);
  EXPECT_EQ((*taken)[1].message, "second");
  EXPECT_TRUE(store_->TakeSteering(run.id)->empty());
  // Another process (connection) sees the same queue.
  auto reopened = testing::MustOpen(location_);
  ASSERT_EQ(reopened->TakeSteering(other.id)->size(), 1u);
  EXPECT_TRUE(store_->TakeSteering(other.id)->empty());
}

TEST_P(StoreTest, EndedOrUnknownRunsCannotBeSteered) {
  Run run = MustEnqueue(*store_, Request(), 1);
  ASSERT_TRUE(store_->RequestCancel(run.id, 2).ok());
  auto s = store_->AddSteering(run.id, "alice", "too late", 3);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("already ended as cancelled"), std::string::npos)
      << s.error().message();
  EXPECT_EQ(store_->AddSteering("r-none", "a", "b", 1).error().code(), Error::Code::kNotFound);
}

}  // namespace
}  // namespace kiln::store
