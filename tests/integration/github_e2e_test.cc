// The factory on GitHub, end to end: the real kiln binary as a GitHub App
// against the GitHub double on loopback (REST, git over HTTPS, signed
// webhooks), real sandboxes, the real skills and the scripted model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "controller/github/webhook.h"
#include "tests/github/double.h"
#include "tests/support/factory_test.h"
#include "tests/support/net.h"

namespace kiln::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kRepo[] = "acme/stats";
constexpr char kSecret[] = "webhook-secret-for-tests";

bool WaitFor(const std::function<bool()>& done, int seconds = 180) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return done();
}

class GitHubPipeline : public FactoryTest {
 protected:
  void Stop() override {
    daemon_.reset();
    gh_.reset();
  }

  // The double with the demo's sample repository, the scripted model, and
  // `kiln serve` configured as the double's App.
  void Setup(const std::string& script_path, const std::string& extra_config = "") {
    const uint16_t port = FreePort();
    GitHubDoubleOptions o;
    o.dir = root_ + "/github";
    o.webhook_url = "http://127.0.0.1:" + std::to_string(port) + "/webhooks/github";
    o.webhook_secret = kSecret;
    gh_ = GitHubDouble::Start(o);
    std::string src = root_ + "/src";
    ASSERT_EQ(std::system(("cp -r " + std::string(KILN_SOURCE_DIR) + "/demo/sample " + src +
                           " && cd " + src +
                           " && git init -q -b main && git add -A && git -c user.name=d "
                           "-c user.email=d@d commit -q -m 'The stats module'")
                              .c_str()),
              0);
    gh_->CreateRepo(kRepo, src);
    gh_->AddCollaborator(kRepo, "maintainer", "write");
    main_sha_ = gh_->BranchSha(kRepo, "main");

    WriteAll(root_ + "/webhook-secret", std::string(kSecret) + "\n", 0600);
    Configure(script_path, "pipeline: {forge: github, bot: \"" + gh_->bot_login() +
                               "\", api_listen: \"127.0.0.1:" + std::to_string(port) + "\"}\n" +
                               "github:\n  api_url: " + gh_->api_url() +
                               "\n  ca_file: " + gh_->ca_file() +
                               "\n  app_id: \"4242\"\n  private_key_file: " + gh_->app_key_file() +
                               "\n  webhook_secret_file: " + root_ +
                               "/webhook-secret\n  repos:\n    " + kRepo + ": {}\n" + extra_config);
    daemon_ = std::make_unique<Daemon>(config_, root_ + "/serve.log");
    ASSERT_TRUE(WaitFor([&] { return Listening(port); }, 30)) << ReadAll(root_ + "/serve.log");
  }

  json Json(std::vector<std::string> args) {
    args.insert(args.begin(), KilnBinary());
    args.push_back("--config");
    args.push_back(config_);
    args.push_back("--json");
    Outcome o = kiln::testing::Run(args);
    EXPECT_EQ(o.status, 0) << o.out << o.err;
    json j = json::parse(o.out, nullptr, false);
    return j.is_discarded() ? json::array() : j;
  }

  std::vector<json> Runs(const std::string& role) {
    std::vector<json> out;
    for (const auto& r : Json({"runs", "list"})) {
      if (r["role"] == role) out.insert(out.begin(), r);
    }
    return out;
  }

  bool Ended(const std::string& role, size_t n) {
    auto runs = Runs(role);
    if (runs.size() != n) return false;
    for (const auto& r : runs) {
      std::string s = r["status"];
      if (s == "queued" || s == "running") return false;
    }
    return true;
  }

  std::vector<std::string> Labels(int number) {
    std::vector<std::string> out;
    const json issue = gh_->Get("/repos/acme/stats/issues/" + std::to_string(number));
    for (const auto& l : issue["labels"]) out.push_back(l["name"]);
    std::sort(out.begin(), out.end());
    return out;
  }

  // The open pull request whose head is branch (null: none).
  json PullFor(const std::string& branch) {
    for (const auto& p : gh_->Get("/repos/acme/stats/pulls?state=open")) {
      if (p["head"]["ref"] == branch) return p;
    }
    return nullptr;
  }

  std::string ProgressComments(int number) {
    std::string all;
    for (const auto& c :
         gh_->Get("/repos/acme/stats/issues/" + std::to_string(number) + "/comments")) {
      if (c["user"]["login"] == gh_->bot_login()) all += c["body"].get<std::string>() + "\n---\n";
    }
    return all;
  }

  std::string main_sha_;
  std::unique_ptr<GitHubDouble> gh_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(GitHubPipeline, ASignedIssueDeliveryBecomesAReviewedAndVerifiedPullRequest) {
  Setup(std::string(KILN_SOURCE_DIR) + "/demo/model-script.yaml");
  int issue = static_cast<int>(gh_->OpenIssue(kRepo, "reporter", "median() is wrong",
                                              "median([4, 1, 3, 2]) returns 3, not 2.5."));
  ASSERT_TRUE(WaitFor([&] { return Ended("triage", 1) && Labels(issue).size() == 3; }))
      << ReadAll(root_ + "/serve.log");
  EXPECT_EQ(Labels(issue), (std::vector<std::string>{"area:stats", "bug", "triaged"}));
  // kiln made its labels with a colour and a description.
  for (const auto& l : gh_->Get("/repos/acme/stats/labels")) {
    if (l["name"] == "triaged") {
      EXPECT_EQ(l["color"], "0e8a16");
    }
  }

  // The installation token expires: kiln renews it and goes on.
  gh_->ExpireTokens();
  gh_->AddLabel(kRepo, issue, "maintainer", "ready-to-spec");
  json spec;
  ASSERT_TRUE(WaitFor([&] { return !(spec = PullFor("kiln/spec-1")).is_null(); }))
      << ReadAll(root_ + "/serve.log");
  EXPECT_EQ(spec["user"]["login"], gh_->bot_login());

  gh_->Review(kRepo, spec["number"], "maintainer", "APPROVE", "Good plan.");
  json pull;
  ASSERT_TRUE(WaitFor([&] { return !(pull = PullFor("kiln/implement-1")).is_null(); }))
      << ReadAll(root_ + "/serve.log");
  EXPECT_TRUE(Contains(pull["body"], "Fixes #1")) << pull.dump(2);
  const std::string head = pull["head"]["sha"];
  const std::string n = std::to_string(pull["number"].get<int>());

  // Review and verify ran on the pull_request.opened delivery.
  ASSERT_TRUE(WaitFor([&] { return Ended("review", 1) && Ended("verify", 1); }))
      << ReadAll(root_ + "/serve.log");
  // The run ends before its decision is written: wait for verify's verdict,
  // past the "queued" status set when the run was queued.
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& s : gh_->Get("/repos/acme/stats/commits/" + head + "/statuses")) {
      if (s["context"] == "kiln/verify" && s["state"] != "pending") return true;
    }
    return false;
  })) << gh_->Get("/repos/acme/stats/commits/" + head + "/statuses").dump(2);
  json statuses = gh_->Get("/repos/acme/stats/commits/" + head + "/statuses");
  EXPECT_EQ(statuses[0]["state"], "success") << statuses.dump(2);
  ASSERT_TRUE(
      WaitFor([&] { return !gh_->Get("/repos/acme/stats/pulls/" + n + "/reviews").empty(); }));
  json reviews = gh_->Get("/repos/acme/stats/pulls/" + n + "/reviews");
  ASSERT_EQ(reviews.size(), 1u);
  EXPECT_EQ(reviews[0]["user"]["login"], gh_->bot_login());
  EXPECT_EQ(reviews[0]["state"], "COMMENTED");  // no one approves their own pull request
  EXPECT_TRUE(Contains(reviews[0]["body"], "Verdict: approve")) << reviews[0].dump(2);
  json inline_comments = gh_->Get("/repos/acme/stats/pulls/" + n + "/comments");
  ASSERT_EQ(inline_comments.size(), 1u);
  EXPECT_EQ(inline_comments[0]["path"], "stats.py");
  EXPECT_EQ(inline_comments[0]["line"], 20);

  // One progress comment per run on the issue, edited in place to its end.
  std::string progress;
  auto count_runs = [&progress] {
    size_t count = 0;
    for (size_t at = 0; (at = progress.find("**kiln** `", at)) != std::string::npos; ++at) ++count;
    return count;
  };
  // The last edit follows the run's end, as the decision does.
  WaitFor([&] {
    progress = ProgressComments(issue);
    return count_runs() == 3 && !Contains(progress, "**running**");
  });
  EXPECT_EQ(count_runs(), 3u) << progress;
  EXPECT_FALSE(Contains(progress, "**running**")) << progress;

  // Every run succeeded; main is untouched (humans merge).
  for (const char* role : {"triage", "spec", "implement", "review", "verify"}) {
    auto runs = Runs(role);
    ASSERT_EQ(runs.size(), 1u) << role;
    EXPECT_EQ(runs[0]["status"], "succeeded") << role << ": " << runs[0].dump();
  }
  EXPECT_EQ(gh_->BranchSha(kRepo, "main"), main_sha_);

  // The token was renewed after it expired; every delivery was taken.
  int tokens = 0, refused = 0;
  for (const auto& r : gh_->Requests()) {
    if (Contains(r.target, "/access_tokens")) ++tokens;
    if (r.status == 401) ++refused;
  }
  EXPECT_GE(tokens, 2);
  EXPECT_GE(refused, 1);
  ASSERT_TRUE(gh_->WaitDeliveries());
  for (const auto& d : gh_->Deliveries()) {
    EXPECT_TRUE(d.status == 201 || d.status == 202 || d.status == 200)
        << d.event << "." << d.action << ": " << d.status << " " << d.response;
  }
}

// The improver on GitHub: the maintainer's relabelling arrives as webhooks,
// becomes signals, and the proposal is a pull request on GitHub with the
// evidence and the comparison.
TEST_F(GitHubPipeline, TheMaintainersCorrectionsBecomeAnImproverPullRequest) {
  Setup(std::string(KILN_SOURCE_DIR) + "/tests/integration/data/improve-script.yaml",
        "schedules:\n  - name: improve-triage\n    cron: '@weekly'\n"
        "    improve: {role: triage, repo: acme/stats}\n");
  for (const char* title : {"Crash on an empty list", "Crash with one value"}) {
    gh_->OpenIssue(kRepo, "reporter", title, "boom");
  }
  ASSERT_TRUE(WaitFor([&] {
    return Ended("triage", 2) && Labels(1).size() == 2 && Labels(2).size() == 2;
  })) << ReadAll(root_ + "/serve.log");
  EXPECT_EQ(Labels(1), (std::vector<std::string>{"enhancement", "triaged"}));
  for (int n : {1, 2}) {
    gh_->RemoveLabel(kRepo, n, "maintainer", "enhancement");
    gh_->AddLabel(kRepo, n, "maintainer", "bug");
  }
  ASSERT_TRUE(gh_->WaitDeliveries());

  Outcome fired =
      kiln::testing::Run({KilnBinary(), "schedules", "run", "improve-triage", "--config", config_});
  ASSERT_EQ(fired.status, 0) << fired.err;
  json pull;
  ASSERT_TRUE(WaitFor([&] { return !(pull = PullFor("kiln/improve-triage")).is_null(); }))
      << ReadAll(root_ + "/serve.log");
  EXPECT_EQ(pull["title"], "Improve triage: crash reports are bugs");
  EXPECT_EQ(pull["user"]["login"], gh_->bot_login());
  const std::string body = pull["body"];
  EXPECT_TRUE(Contains(body, "label_added on #1 by maintainer")) << body;
  EXPECT_TRUE(Contains(body, "label_added on #2 by maintainer")) << body;
  EXPECT_TRUE(Contains(body, "| old | succeeded")) << body;
  EXPECT_TRUE(Contains(body, "`{\"labels\":[\"bug\"]}`")) << body;
  EXPECT_TRUE(Contains(body, "`{\"labels\":[\"enhancement\"]}`")) << body;
  // One commit with one file: the companion (the comparison's "new" rows
  // show it took effect).
  json full = gh_->Get("/repos/acme/stats/pulls/" + std::to_string(pull["number"].get<int>()));
  EXPECT_EQ(full["commits"], 1) << full.dump(2);
  EXPECT_EQ(full["changed_files"], 1) << full.dump(2);
  EXPECT_EQ(gh_->BranchSha(kRepo, "main"), main_sha_);
}

TEST_F(GitHubPipeline, ForgedReplayedMalformedAndForeignDeliveriesStartNothing) {
  Setup(std::string(KILN_SOURCE_DIR) + "/demo/model-script.yaml");
  gh_->OpenIssue(kRepo, "reporter", "median() is wrong", "It returns 3.");
  ASSERT_TRUE(gh_->WaitDeliveries());
  GitHubDouble::Delivery opened;
  for (const auto& d : gh_->Deliveries()) {
    if (d.event == "issues" && d.action == "opened") opened = d;
  }
  ASSERT_EQ(opened.status, 201) << opened.response;

  // Replayed: the same delivery id again.
  auto replay = gh_->Redeliver(opened.id);
  EXPECT_EQ(replay.status, 200) << replay.response;
  // Replayed under a fresh delivery id: GitHub signs only the body, so the
  // signature holds, but it is the same event.
  auto renamed =
      gh_->SendRaw("issues", "fresh-id-1", opened.body, github::Sign(kSecret, opened.body));
  EXPECT_EQ(renamed.status, 200) << renamed.response;
  EXPECT_TRUE(Contains(renamed.response, "already received")) << renamed.response;
  // Forged: a new id, the body unchanged, a signature that is not the body's.
  auto forged = gh_->SendRaw("issues", "forged-1", opened.body, "sha256=" + std::string(64, '0'));
  EXPECT_EQ(forged.status, 401) << forged.response;
  auto unsigned_ = gh_->SendRaw("issues", "forged-2", opened.body, "");
  EXPECT_EQ(unsigned_.status, 401) << unsigned_.response;
  // Malformed, but signed.
  const std::string bad = "{\"action\": \"opened\", \"issue\": ";
  auto malformed = gh_->SendRaw("issues", "bad-1", bad, github::Sign(kSecret, bad));
  EXPECT_EQ(malformed.status, 400) << malformed.response;
  // Signed and well formed, for a repository kiln is not configured for.
  json foreign = json::parse(opened.body);
  foreign["repository"]["full_name"] = "acme/elsewhere";
  foreign["repository"]["name"] = "elsewhere";
  const std::string other = foreign.dump();
  auto elsewhere = gh_->SendRaw("issues", "other-1", other, github::Sign(kSecret, other));
  EXPECT_EQ(elsewhere.status, 202) << elsewhere.response;
  EXPECT_TRUE(Contains(elsewhere.response, "not configured")) << elsewhere.response;

  // One triage run, for the one real delivery.
  ASSERT_TRUE(WaitFor([&] { return Ended("triage", 1); })) << ReadAll(root_ + "/serve.log");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(Runs("triage").size(), 1u);
  EXPECT_EQ(Json({"runs", "list"}).size(), 1u);
}

TEST_F(GitHubPipeline, APullRequestGitHubRefusesFailsTheRunAndLeavesNoBranch) {
  Setup(std::string(KILN_SOURCE_DIR) + "/demo/model-script.yaml");
  gh_->Inject({"POST",
               "/repos/acme/stats/pulls",
               422,
               {{"message", "Validation Failed"},
                {"errors", json::array({{{"resource", "PullRequest"},
                                         {"code", "custom"},
                                         {"message", "The base branch is locked"}}})}},
               {},
               1});
  int issue = static_cast<int>(gh_->OpenIssue(kRepo, "reporter", "median() is wrong", "3?"));
  ASSERT_TRUE(WaitFor([&] { return Ended("triage", 1); })) << ReadAll(root_ + "/serve.log");
  gh_->AddLabel(kRepo, issue, "maintainer", "ready-to-spec");
  ASSERT_TRUE(WaitFor([&] {
    return Ended("spec", 1) && Contains(ProgressComments(issue), "The base branch is locked");
  })) << ProgressComments(issue)
      << ReadAll(root_ + "/serve.log");
  std::string progress = ProgressComments(issue);
  EXPECT_TRUE(Contains(progress, "`spec` run")) << progress;
  EXPECT_TRUE(Contains(progress, "**failed**")) << progress;
  EXPECT_TRUE(Contains(progress, "422 Validation Failed: The base branch is locked")) << progress;
  EXPECT_TRUE(Contains(progress, "deleted again")) << progress;
  // Nothing half-written: no branch, no pull request.
  EXPECT_EQ(gh_->BranchSha(kRepo, "kiln/spec-1"), "");
  EXPECT_TRUE(gh_->Get("/repos/acme/stats/pulls?state=all").empty());
  EXPECT_EQ(gh_->BranchSha(kRepo, "main"), main_sha_);
}

}  // namespace
}  // namespace kiln::testing
