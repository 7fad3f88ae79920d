// The pipeline's event handling against the real local forge and run store:
// which events start which runs, duplicates, ordering per issue, stale
// events, trust, and the forge writes made from a finished run's decision.
// Runs are queued but not executed here (pipeline_e2e_test runs them):
// a test ends a run itself through the store, as a runner would. Each test
// runs on both store backends: a SQLite file, and a database on the test
// PostgreSQL server (the forge, the inbox and the pipeline's table there).
#include "controller/pipeline/pipeline.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "controller/config/config.h"
#include "controller/config/secrets.h"
#include "controller/forge/inbox.h"
#include "controller/forge/local.h"
#include "controller/git/testutil.h"
#include "controller/pipeline/fenced_forge.h"
#include "controller/store/testutil.h"

namespace kiln::pipeline {
namespace {

using nlohmann::json;
using namespace kiln::git::testing;

constexpr char kRepo[] = "acme/calc";

class PipelineEvents : public store::testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    cfg_ = config::Defaults();
    cfg_.state_dir = tmp_.path();
    cfg_.store = location_;
    cfg_.skills_dir = std::string(KILN_SOURCE_DIR) + "/skills";
    auto store = store::Open(cfg_.store);
    ASSERT_TRUE(store.ok()) << store.error().message();
    store_ = std::move(*store);
    cache_ = std::make_unique<git::Cache>(tmp_ / "cache");
    services_.config = &cfg_;
    services_.store = store_.get();
    services_.cache = cache_.get();
    services_.vault = &vault_;
    services_.owner = "test:1";
    bot_ = Open("kiln", forge::Access::kApp);
    maintainer_ = Open("maintainer");
    reporter_ = Open("reporter");
    WriteText(tmp_ / "src/calc.py", "def add(a, b):\n    return a - b\n");
    auto repo = maintainer_->CreateRepo(kRepo, tmp_ / "src", {"maintainer"}, "main");
    ASSERT_TRUE(repo.ok()) << repo.error().message();
    auto inbox = forge::Inbox::Open(cfg_.store);
    ASSERT_TRUE(inbox.ok());
    inbox_ = std::move(*inbox);
    auto state = State::Open(cfg_.store);
    ASSERT_TRUE(state.ok());
    state_ = std::move(*state);
    pipeline_ = std::make_unique<Pipeline>(services_, *bot_, *inbox_, *state_, Options{});
    Tick();  // repo.created: nothing to do
    ASSERT_TRUE(inbox_->Pending(0)->empty());
  }

  std::unique_ptr<forge::Local> Open(const std::string& actor,
                                     forge::Access access = forge::Access::kUser) {
    auto f = forge::Local::Open(cfg_.store, tmp_ / "repos", actor, access);
    EXPECT_TRUE(f.ok()) << f.error().message();
    return f.ok() ? std::move(*f) : nullptr;
  }

  void Tick() {
    auto n = pipeline_->Tick();
    ASSERT_TRUE(n.ok()) << n.error().message();
  }

  // Runs of role, oldest first.
  std::vector<store::Run> Runs(const std::string& role) {
    store::ListFilter f;
    f.role = role;
    auto runs = store_->List(f);
    EXPECT_TRUE(runs.ok());
    std::vector<store::Run> out(runs->rbegin(), runs->rend());
    return out;
  }

  // Ends a queued run as a runner would, with actions as its decision.
  void Finish(const std::string& id, const json& actions) {
    ASSERT_TRUE(store_->Start(id, "test:1", 1).ok());
    store::Finish f{store::Status::kSucceeded, "submitted", {{"actions", actions}}, "", ""};
    ASSERT_TRUE(store_->Complete(id, f, 2).ok());
  }

  std::vector<forge::Comment> CommentsOn(int64_t number, const std::string& repo = kRepo) {
    auto c = bot_->Comments(repo, number);
    EXPECT_TRUE(c.ok());
    return c.ok() ? *c : std::vector<forge::Comment>();
  }

  // Kinds of the pending events people caused (kiln's own are noise here).
  std::vector<std::string> PendingByPeople() {
    auto pending = inbox_->Pending(0);
    EXPECT_TRUE(pending.ok());
    std::vector<std::string> kinds;
    if (!pending.ok()) return kinds;
    for (const auto& e : *pending) {
      if (e.actor != "kiln") kinds.push_back(e.kind);
    }
    return kinds;
  }

  // A pull request kiln opens for issue 1 from branch, whose one commit on
  // main writes path; *sha is that commit.
  Result<forge::PullRequest> OpenKilnPull(const std::string& branch, const std::string& path,
                                          const std::string& text, std::string* sha) {
    KILN_ASSIGN_OR_RETURN(auto repo, bot_->GetRepo(kRepo));
    std::string work = tmp_ / "work";
    Git(tmp_.path(), "clone -q " + repo.info.clone_url + " work");
    WriteText(work + "/" + path, text);
    *sha = CommitAll(work, "change");
    KILN_TRY(bot_->PushBranch(kRepo, branch, work + "/.git", *sha, true));
    return bot_->OpenPull(kRepo, "Pull for #1", "Fixes #1", branch, "");
  }

  std::string Outcome(const std::string& kind) {
    auto entries = inbox_->RecentEntries(0, kRepo);
    EXPECT_TRUE(entries.ok());
    for (const auto& e : *entries) {
      if (e.event.kind == kind && e.event.actor != "kiln") return e.outcome;
    }
    return "(no " + kind + " event)";
  }

  TempDir tmp_;
  config::Config cfg_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<git::Cache> cache_;
  secrets::Vault vault_;
  runner::Services services_;
  std::unique_ptr<forge::Local> bot_, maintainer_, reporter_;
  std::unique_ptr<forge::Inbox> inbox_;
  std::unique_ptr<State> state_;
  std::unique_ptr<Pipeline> pipeline_;
};

// While a run goes, its progress comment links the run page and shows what
// the run has used so far, edited at most every few seconds for use alone.
TEST_P(PipelineEvents, TheProgressCommentLinksTheRunAndShowsLiveUse) {
  runner::LiveUsage live;
  services_.live = &live;
  Options o;
  o.web_url = "http://kiln.example:9465";
  pipeline_ = std::make_unique<Pipeline>(services_, *bot_, *inbox_, *state_, o);
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "add is wrong", "add(1, 2) is -1").ok());
  Tick();
  auto runs = Runs("triage");
  ASSERT_EQ(runs.size(), 1u);
  const std::string id = runs[0].id;
  const std::string link = "[Watch, steer or cancel it](http://kiln.example:9465/runs/" + id + ")";
  EXPECT_NE(CommentsOn(1).front().body.find(link), std::string::npos) << CommentsOn(1).front().body;
  ASSERT_TRUE(store_->Start(id, "test:1", 1).ok());
  live.Set(id, runner::Usage{3, 1200, 80, 2});
  Tick();
  std::string body = CommentsOn(1).front().body;
  EXPECT_NE(body.find("**running**"), std::string::npos) << body;
  EXPECT_NE(body.find("Budget use so far: 3 turns, 1200 input and 80 output tokens, 2 tool calls"),
            std::string::npos)
      << body;
  // More use at once: not another edit yet.
  live.Set(id, runner::Usage{4, 1500, 90, 3});
  Tick();
  EXPECT_NE(CommentsOn(1).front().body.find("3 turns"), std::string::npos);
  // Ended: the totals of the result, no "so far".
  live.Erase(id);
  store::Finish f{store::Status::kSucceeded,
                  "submitted",
                  {{"actions", {{"labels", {"triaged"}}}},
                   {"totals", {{"turns", 5}, {"input_tokens", 1600}, {"output_tokens", 99}}}},
                  "",
                  ""};
  ASSERT_TRUE(store_->Complete(id, f, 2).ok());
  Tick();
  body = CommentsOn(1).front().body;
  EXPECT_NE(body.find("**succeeded**"), std::string::npos) << body;
  EXPECT_EQ(body.find("so far"), std::string::npos) << body;
  EXPECT_NE(body.find("Budget use: 5 turns, 1600 input and 99 output tokens"), std::string::npos)
      << body;
  EXPECT_NE(body.find(link), std::string::npos);
}

// On a fleet the run may go on another host: the leader shows the use that
// host records in the store for the run's current attempt, and nothing of
// an earlier attempt's.
TEST_P(PipelineEvents, TheProgressCommentShowsAnotherHostsRunFromTheStore) {
  runner::LiveUsage here;  // this host runs nothing
  services_.live = &here;
  pipeline_ = std::make_unique<Pipeline>(services_, *bot_, *inbox_, *state_, Options{});
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "add is wrong", "add(1, 2) is -1").ok());
  Tick();
  auto runs = Runs("triage");
  ASSERT_EQ(runs.size(), 1u);
  const std::string id = runs[0].id;
  auto started = store_->Start(id, "host-b/7:1", 1);
  ASSERT_TRUE(started.ok()) << started.error().message();
  auto use_of = [&] {
    auto run = store_->Get(id);
    EXPECT_TRUE(run.ok());
    return run.ok() ? runner::LiveUsageOf(&here, *run) : std::nullopt;
  };
  EXPECT_EQ(use_of(), std::nullopt) << "nothing recorded yet";
  store::Progress p;
  p.live = runner::LiveJson(runner::Usage{9, 9, 9, 9}, started->attempt - 1);
  ASSERT_TRUE(store_->SetProgress(id, p).ok());
  EXPECT_EQ(use_of(), std::nullopt) << "an earlier attempt's use";

  p.live = runner::LiveJson(runner::Usage{6, 2400, 120, 5}, started->attempt);
  ASSERT_TRUE(store_->SetProgress(id, p).ok());
  EXPECT_EQ(use_of(), (runner::Usage{6, 2400, 120, 5}));
  Tick();
  const std::string body = CommentsOn(1).front().body;
  EXPECT_NE(body.find("**running**"), std::string::npos) << body;
  EXPECT_NE(body.find("Budget use so far: 6 turns, 2400 input and 120 output tokens, 5 tool calls"),
            std::string::npos)
      << body;
}

TEST_P(PipelineEvents, AnOpenedIssueIsTriagedOnceWhateverTheDeliveries) {
  auto issue = reporter_->CreateIssue(kRepo, "add is wrong", "add(1, 2) is -1");
  ASSERT_TRUE(issue.ok()) << issue.error().message();
  auto pending = inbox_->Pending(0);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  // The same delivery again (a webhook retried) is stored once.
  auto again = inbox_->Append(pending->front(), 5);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  Tick();
  auto runs = Runs("triage");
  ASSERT_EQ(runs.size(), 1u);
  const store::Run& run = runs[0];
  EXPECT_EQ(run.request.context["repo"], kRepo);
  EXPECT_EQ(run.request.context["number"], issue->number);
  EXPECT_EQ(run.request.requested_by, "local:reporter");
  EXPECT_EQ(run.request.commit, "main");
  EXPECT_NE(run.request.task.find("<untrusted source=\"issue #1 by reporter\">"),
            std::string::npos);
  // A different delivery of the same happening starts nothing either.
  forge::Event dup = pending->front();
  dup.delivery = "redelivered-1";
  ASSERT_TRUE(*inbox_->Append(dup, 6));
  Tick();
  EXPECT_EQ(Runs("triage").size(), 1u);
  EXPECT_EQ(Outcome("issue.opened").substr(0, 8), "ignored:");
  // One progress comment, saying queued.
  auto comments = CommentsOn(1);
  ASSERT_EQ(comments.size(), 1u);
  EXPECT_NE(comments.front().body.find("`triage` run `" + run.id + "`: **queued**"),
            std::string::npos)
      << comments.front().body;
}

TEST_P(PipelineEvents, EventsOfAnIssueWaitForItsActiveRunInOrder) {
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "one", "first").ok());
  Tick();
  auto triage = Runs("triage");
  ASSERT_EQ(triage.size(), 1u);
  // While triage runs: a re-triage request, then a spec request, on issue 1;
  // and a new issue 2.
  ASSERT_TRUE(maintainer_->AddComment(kRepo, 1, "/kiln triage").ok());
  ASSERT_TRUE(maintainer_->AddLabels(kRepo, 1, {"ready-to-spec"}).ok());
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "two", "second").ok());
  Tick();
  EXPECT_EQ(Runs("triage").size(), 2u) << "issue 2 does not wait for issue 1";
  EXPECT_EQ(Runs("spec").size(), 0u) << "the spec request waits behind the re-triage";
  EXPECT_EQ(PendingByPeople(), (std::vector<std::string>{"comment.created", "issue.labeled"}));

  Finish(triage[0].id, {{"labels", {"triaged"}}});
  Tick();
  auto now = Runs("triage");
  ASSERT_EQ(now.size(), 3u);
  EXPECT_EQ(now[2].request.context["number"], 1);
  EXPECT_EQ(Runs("spec").size(), 1u);
  EXPECT_TRUE(PendingByPeople().empty());
}

TEST_P(PipelineEvents, StaleEventsStartNothing) {
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "one", "first").ok());
  ASSERT_TRUE(maintainer_->AddLabels(kRepo, 1, {"ready-to-spec"}).ok());
  ASSERT_TRUE(maintainer_->RemoveLabel(kRepo, 1, "ready-to-spec").ok());
  Tick();
  EXPECT_EQ(Runs("spec").size(), 0u);
  EXPECT_EQ(Outcome("issue.labeled"), "stale: label ready-to-spec was removed since");
}

TEST_P(PipelineEvents, UntrustedUsersCannotStartExpensiveRoles) {
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "one", "first").ok());
  // The local forge lets no one but a maintainer label; a forge where others
  // may (a GitHub user with triage access) delivers their label as this.
  EXPECT_EQ(reporter_->AddLabels(kRepo, 1, {"ready-to-spec"}).error().code(),
            Error::Code::kPermission);
  forge::Event labeled;
  labeled.delivery = "gh-1";
  labeled.source = "github";
  labeled.kind = "issue.labeled";
  labeled.repo = kRepo;
  labeled.number = 1;
  labeled.actor = "reporter";
  labeled.payload = {{"label", "ready-to-spec"}};
  // The label is on the issue (put there by kiln itself, whose own events
  // start nothing), so the delivery is not stale.
  ASSERT_TRUE(bot_->AddLabels(kRepo, 1, {"ready-to-spec"}).ok());
  ASSERT_TRUE(inbox_->Append(labeled, 1).ok());
  ASSERT_TRUE(reporter_->AddComment(kRepo, 1, "/kiln implement").ok());
  Tick();
  EXPECT_EQ(Runs("spec").size(), 0u);
  EXPECT_EQ(Runs("implement").size(), 0u);
  EXPECT_EQ(Outcome("issue.labeled"), "refused: reporter is not trusted to start spec");
  EXPECT_EQ(Outcome("comment.created"), "refused: reporter is not trusted to start implement");
}

TEST_P(PipelineEvents, ImplementWithoutASpecIsBlocked) {
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "one", "first").ok());
  ASSERT_TRUE(maintainer_->AddLabels(kRepo, 1, {"plan-approved"}).ok());
  Tick();
  EXPECT_EQ(Runs("implement").size(), 0u);
  auto issue = bot_->GetIssue(kRepo, 1);
  EXPECT_NE(std::find(issue->labels.begin(), issue->labels.end(), "blocked"), issue->labels.end());
  bool told = false;
  for (const auto& c : CommentsOn(1)) {
    told = told ||
           c.body.find("will not implement #1: it has no spec pull request") != std::string::npos;
  }
  EXPECT_TRUE(told);
  EXPECT_EQ(Outcome("issue.labeled"), "blocked: it has no spec pull request from kiln");
}

TEST_P(PipelineEvents, UnknownCommandsAreAnsweredAndStartNothing) {
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "one", "first").ok());
  Tick();
  ASSERT_TRUE(maintainer_->AddComment(kRepo, 1, "/kiln deploy").ok());
  ASSERT_TRUE(maintainer_->AddComment(kRepo, 1, "/kiln review").ok());  // not a pull request
  Tick();
  EXPECT_EQ(Runs("review").size(), 0u);
  int answers = 0;
  for (const auto& c : CommentsOn(1)) {
    answers += c.body.find("unknown command") != std::string::npos;
  }
  EXPECT_EQ(answers, 2);
}

TEST_P(PipelineEvents, AFinishedRunsDecisionIsWrittenToTheForge) {
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "one", "first").ok());
  Tick();
  auto triage = Runs("triage");
  ASSERT_EQ(triage.size(), 1u);
  Finish(triage[0].id, {{"labels", {"triaged", "bug"}}, {"comment", "A bug in add()."}});
  Tick();
  auto issue = bot_->GetIssue(kRepo, 1);
  std::vector<std::string> labels = issue->labels;
  std::sort(labels.begin(), labels.end());
  EXPECT_EQ(labels, (std::vector<std::string>{"bug", "triaged"}));
  auto comments = CommentsOn(1);
  ASSERT_EQ(comments.size(), 2u);  // the progress comment, edited; the triage comment
  EXPECT_NE(comments[0].body.find("**succeeded**"), std::string::npos) << comments[0].body;
  EXPECT_NE(comments[0].body.find("Applied: labels added; comment posted"), std::string::npos)
      << comments[0].body;
  EXPECT_EQ(comments[1].body, "A bug in add().");
  EXPECT_EQ(comments[1].author, "kiln");
  auto idle = pipeline_->Idle();
  ASSERT_TRUE(idle.ok());
  EXPECT_TRUE(*idle);
  // Applied once: another tick writes nothing more.
  Tick();
  EXPECT_EQ(CommentsOn(1).size(), 2u);
}

// A controller that dies while writing a result leaves it "applying"; the
// next one writes it again without posting a review or comment twice.
TEST_P(PipelineEvents, AResultHalfWrittenBeforeACrashIsNotWrittenTwice) {
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "one", "first").ok());
  Tick();
  auto triage = Runs("triage");
  ASSERT_EQ(triage.size(), 1u);
  // Died before writing anything: the comment is posted, once.
  Finish(triage[0].id, {{"comment", "A bug in add()."}});
  ASSERT_TRUE(state_->SetOutcome(triage[0].id, "applying").ok());
  Tick();
  auto count = [&](int64_t number, const std::string& body) {
    int n = 0;
    for (const auto& c : CommentsOn(number)) n += c.body == body;
    return n;
  };
  EXPECT_EQ(count(1, "A bug in add()."), 1);

  // kiln's pull request for the issue, and its review run.
  std::string sha;
  auto pull =
      OpenKilnPull("kiln/implement-1", "calc.py", "def add(a, b):\n    return a + b\n", &sha);
  ASSERT_TRUE(pull.ok()) << pull.error().message();
  const int64_t pr = pull->issue.number;
  Tick();
  auto review_runs = Runs("review");
  ASSERT_EQ(review_runs.size(), 1u);
  Finish(review_runs[0].id, {{"review",
                              {{"verdict", "approve"},
                               {"body", "Looks right."},
                               {"commit_sha", sha},
                               {"comments", json::array()}}},
                             {"comment", "Reviewed."}});
  // Died after posting both, before recording the run as applied.
  ASSERT_TRUE(state_->SetOutcome(review_runs[0].id, "applying").ok());
  forge::Review posted;
  posted.verdict = "comment";
  // As GitHub shows kiln's review of its own pull request: the verdict first.
  posted.body = "**Verdict: approve**\n\nLooks right.";
  posted.commit_sha = sha;
  ASSERT_TRUE(bot_->AddReview(kRepo, pr, posted).ok());
  ASSERT_TRUE(bot_->AddComment(kRepo, pr, "Reviewed.").ok());
  Tick();
  auto reviews = bot_->Reviews(kRepo, pr);
  ASSERT_TRUE(reviews.ok());
  EXPECT_EQ(reviews->size(), 1u);
  EXPECT_EQ(count(pr, "Reviewed."), 1);
  auto tracked = state_->ForIssue(kRepo, pr, "review");
  ASSERT_TRUE(tracked.ok());
  ASSERT_EQ(tracked->size(), 1u);
  EXPECT_NE((*tracked)[0].applied_ms, 0);
  EXPECT_EQ((*tracked)[0].outcome, "review already posted; comment already posted");
}

TEST_P(PipelineEvents, ClosingAnIssueCancelsItsRuns) {
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "one", "first").ok());
  Tick();
  ASSERT_TRUE(maintainer_->Close(kRepo, 1).ok());
  Tick();
  auto runs = Runs("triage");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, store::Status::kCancelled);
}

TEST_P(PipelineEvents, ImplementNeedsATrustedApprovalOfTheSpecHead) {
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "one", "first").ok());
  // kiln's spec pull request for issue 1 (#2), as a spec run would leave it.
  std::string spec_sha;
  auto pull = OpenKilnPull("kiln/spec-1", "specs/1/PRODUCT.md", "stories\n", &spec_sha);
  ASSERT_TRUE(pull.ok()) << pull.error().message();
  Tick();
  ASSERT_EQ(Runs("triage").size(), 1u);

  // Asked for before anyone approved: refused.
  ASSERT_TRUE(maintainer_->AddComment(kRepo, 1, "/kiln implement").ok());
  Tick();
  EXPECT_EQ(Runs("implement").size(), 0u);
  EXPECT_EQ(
      Outcome("comment.created").rfind("blocked: its spec pull request #2 is not approved", 0), 0u)
      << Outcome("comment.created");
  // An untrusted approval starts nothing.
  forge::Review approve;
  approve.verdict = "approve";
  ASSERT_TRUE(reporter_->AddReview(kRepo, pull->issue.number, approve).ok());
  Tick();
  EXPECT_EQ(Runs("implement").size(), 0u);
  EXPECT_EQ(Outcome("review.submitted"), "refused: reporter is not trusted to start implement");
  // The maintainer's approval of the head starts it, pinned to that head.
  ASSERT_TRUE(maintainer_->AddReview(kRepo, pull->issue.number, approve).ok());
  Tick();
  auto runs = Runs("implement");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].request.commit, spec_sha);
  EXPECT_EQ(runs[0].request.context["number"], 1);
}

TEST_P(PipelineEvents, ABadKilnYmlFailsTheEventWithAComment) {
  WriteText(tmp_ / "bad/calc.py", "x = 1\n");
  WriteText(tmp_ / "bad/.kiln/kiln.yml", "tset: make test\n");
  ASSERT_TRUE(maintainer_->CreateRepo("acme/bad", tmp_ / "bad", {"maintainer"}, "main").ok());
  ASSERT_TRUE(reporter_->CreateIssue("acme/bad", "one", "first").ok());
  auto repo = bot_->GetRepo("acme/bad");
  ASSERT_TRUE(repo.ok());
  std::string work = tmp_ / "work";
  Git(tmp_.path(), "clone -q " + repo->info.clone_url + " work");
  WriteText(work + "/calc.py", "x = 2\n");
  std::string sha = CommitAll(work, "fix");
  ASSERT_TRUE(bot_->PushBranch("acme/bad", "kiln/implement-1", work + "/.git", sha, true).ok());
  auto pull = bot_->OpenPull("acme/bad", "Fix", "Fixes #1", "kiln/implement-1", "");
  ASSERT_TRUE(pull.ok()) << pull.error().message();
  Tick();
  Tick();
  bool failed = false;  // processed, not left pending for ever
  auto entries = inbox_->RecentEntries(0, "acme/bad");
  ASSERT_TRUE(entries.ok());
  for (const auto& e : *entries) {
    if (e.event.kind == "pull.opened")
      failed = e.processed_ms != 0 && e.outcome.rfind("failed: ", 0) == 0;
  }
  EXPECT_TRUE(failed);
  EXPECT_EQ(Runs("verify").size(), 0u);
  bool told = false;
  for (const auto& c : CommentsOn(pull->issue.number, "acme/bad")) {
    told = told || c.body.find(".kiln/kiln.yml:1: unknown field 'tset'") != std::string::npos;
  }
  EXPECT_TRUE(told);
}

TEST_P(PipelineEvents, AMentionReRunsTriageForTrustedUsersOnly) {
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "one", "first").ok());
  Tick();
  auto triage = Runs("triage");
  ASSERT_EQ(triage.size(), 1u);
  Finish(triage[0].id, {{"labels", {"triaged"}}});
  ASSERT_TRUE(reporter_->AddComment(kRepo, 1, "@kiln look again please").ok());
  Tick();
  EXPECT_EQ(Runs("triage").size(), 1u);
  EXPECT_EQ(Outcome("comment.created"), "refused: reporter is not trusted to start triage");
  ASSERT_TRUE(maintainer_->AddComment(kRepo, 1, "Thanks. @kiln, once more with the logs.").ok());
  Tick();
  EXPECT_EQ(Runs("triage").size(), 2u);
}

// Two hosts of a fleet on one store: the one that leads turns the events
// into runs; the other does nothing until the lead's lease runs out, then
// takes it over with a new epoch.
TEST_P(PipelineEvents, OneHostOfAFleetLeadsThePipeline) {
  Options a_options, b_options;
  a_options.host = "host-a";
  b_options.host = "host-b";
  a_options.lead_ms = b_options.lead_ms = 400;
  auto b_state = State::Open(cfg_.store);
  ASSERT_TRUE(b_state.ok());
  Pipeline a(services_, *bot_, *inbox_, *state_, a_options);
  Pipeline b(services_, *bot_, *inbox_, **b_state, b_options);
  ASSERT_TRUE(a.Tick().ok());  // host-a leads from now on
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "add is wrong", "add(1, 2) is -1").ok());
  auto by_b = b.Tick();
  ASSERT_TRUE(by_b.ok()) << by_b.error().message();
  EXPECT_EQ(*by_b, 0u);
  EXPECT_TRUE(Runs("triage").empty());
  auto by_a = a.Tick();
  ASSERT_TRUE(by_a.ok()) << by_a.error().message();
  EXPECT_EQ(Runs("triage").size(), 1u);
  // host-a stops beating: after its lease, host-b leads, at epoch 2.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(reporter_->CreateIssue(kRepo, "sub is wrong", "sub(1, 2) is 3").ok());
  by_b = b.Tick();
  ASSERT_TRUE(by_b.ok()) << by_b.error().message();
  EXPECT_EQ(Runs("triage").size(), 2u);
  auto lead = (*b_state)->TakeLead("host-b", 0, 400);
  ASSERT_TRUE(lead.ok());
  EXPECT_EQ(lead->holder, "host-b");
  EXPECT_EQ(lead->epoch, 2);
  // A clean stop gives the lead up at once.
  ASSERT_TRUE(b.Resign().ok());
  ASSERT_TRUE(a.Tick().ok());
  lead = state_->TakeLead("host-a", 0, 400);
  ASSERT_TRUE(lead.ok());
  EXPECT_EQ(lead->holder, "host-a");
  EXPECT_EQ(lead->epoch, 3);
}

// A leader paused past its lease (or cut off) and resumed: its forge writes
// and its record of a result applied are refused, since another host leads.
TEST_P(PipelineEvents, AFormerLeadersWritesAreRefusedAndNothingIsWritten) {
  auto issue = reporter_->CreateIssue(kRepo, "add is wrong", "add(1, 2) is -1");
  ASSERT_TRUE(issue.ok());
  Tick();
  auto runs = Runs("triage");
  ASSERT_EQ(runs.size(), 1u);
  const size_t comments_before = CommentsOn(1).size();
  // host-a led at epoch 1; host-b took over at epoch 2 after its lease.
  ASSERT_EQ(state_->TakeLead("host-a", 1'000, 100)->epoch, 1);
  state_->Fence("host-a", 1);
  auto b_state = State::Open(cfg_.store);
  ASSERT_TRUE(b_state.ok());
  ASSERT_EQ((*b_state)->TakeLead("host-b", 2'000, 100)->holder, "host-b");

  const std::string refused = "the pipeline's lead passed to 'host-b' (epoch 2, ours 1)";
  auto applied = state_->MarkApplied(runs[0].id, "applied", 3'000);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), Error::Code::kPermission);
  EXPECT_NE(applied.error().message().find(refused), std::string::npos)
      << applied.error().message();
  FencedForge fenced(*bot_, [&](const std::string& doing) { return state_->Leads(doing); });
  auto comment = fenced.AddComment(kRepo, 1, "a late word");
  ASSERT_FALSE(comment.ok());
  EXPECT_EQ(comment.error().message(),
            "commenting on acme/calc #1: " + refused + ": nothing written");
  auto labels = fenced.AddLabels(kRepo, 1, {"bug"});
  ASSERT_FALSE(labels.ok());
  EXPECT_EQ(labels.error().code(), Error::Code::kPermission);
  // The local forge checks again, in the transaction of its own write,
  // whatever checked before it (here: nothing).
  bot_->SetWriteGuard(
      [&](store::sql::Db& db, const std::string& doing) { return state_->LeadsOn(db, doing); });
  auto direct = bot_->AddComment(kRepo, 1, "a late word");
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(direct.error().message(),
            "commenting on acme/calc #1: " + refused + ": nothing written");
  EXPECT_FALSE(bot_->AddLabels(kRepo, 1, {"bug"}).ok());
  bot_->SetWriteGuard(nullptr);
  // Nothing reached the forge or the pipeline's record.
  EXPECT_EQ(CommentsOn(1).size(), comments_before);
  EXPECT_TRUE(bot_->GetIssue(kRepo, 1)->labels.empty());
  auto tracked = state_->ForIssue(kRepo, 1);
  ASSERT_TRUE(tracked.ok());
  ASSERT_EQ(tracked->size(), 1u);
  EXPECT_EQ((*tracked)[0].applied_ms, 0);
  // host-b's own writes go through.
  (*b_state)->Fence("host-b", 2);
  EXPECT_TRUE((*b_state)->MarkApplied(runs[0].id, "applied", 3'000).ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, PipelineEvents, store::testing::AllBackends(),
                         store::testing::BackendName);

}  // namespace
}  // namespace kiln::pipeline
