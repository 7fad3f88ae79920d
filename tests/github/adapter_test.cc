// The GitHub adapter's production code (Rest, AppAuth, GitHub) against the
// GitHub double on loopback: App auth and token renewal, rate limits,
// pagination, labels, reviews, statuses, trust, git over HTTPS.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>

#include "base/fd.h"
#include "controller/git/git.h"
#include "controller/git/write.h"
#include "controller/github/auth.h"
#include "controller/github/github.h"
#include "controller/github/rest.h"
#include "tests/github/double.h"
#include "tests/support/temp_dir.h"

namespace kiln::github {
namespace {

using nlohmann::json;
using testing::GitHubDouble;
using testing::GitHubDoubleOptions;

constexpr char kRepo[] = "acme/widgets";

void Sh(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }

int Count(const std::vector<GitHubDouble::Request>& requests, const std::string& method,
          const std::string& path_part, int status = 0) {
  int n = 0;
  for (const auto& r : requests) {
    if (r.method == method && r.target.find(path_part) != std::string::npos &&
        (status == 0 || r.status == status)) {
      ++n;
    }
  }
  return n;
}

class Adapter : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  void Start(GitHubDoubleOptions o) {
    gh_.reset();
    const std::string n = std::to_string(++starts_);
    o.dir = tmp_.path() + "/double" + n;
    gh_ = GitHubDouble::Start(o);
    src_ = tmp_.path() + "/src" + n;
    Sh("mkdir -p " + src_ + " && cd " + src_ +
       " && git init -q -b main && printf 'one\\ntwo\\nthree\\n' > a.txt && git add a.txt && "
       "git -c user.name=t -c user.email=t@t commit -q -m first");
    gh_->CreateRepo(kRepo, src_);
    gh_->AddCollaborator(kRepo, "maintainer", "write");
    gh_->AddCollaborator(kRepo, "reader", "read");
    gh_->AddTeamMember("acme", "core", "teammate");

    RestOptions ro;
    ro.api_url = gh_->api_url();
    ro.ca_file = gh_->ca_file();
    ro.sleep = [this](std::chrono::milliseconds ms) {
      std::lock_guard<std::mutex> lock(mu_);
      slept_.push_back(ms.count());
    };
    ro.now_s = [this] { return now_s_.load(); };
    rest_ = std::make_unique<Rest>(ro);
    auto key = ReadFile(gh_->app_key_file());
    ASSERT_TRUE(key.ok());
    auth_ = std::make_unique<AppAuth>(*rest_, "4242", *key, [this] { return now_s_.load(); });
    Settings s;
    s.api_url = gh_->api_url();
    RepoSettings r;
    r.trusted_users = {"configured-friend"};
    r.trusted_teams = {"acme/core"};
    r.labels = {{"ready-to-spec", "kiln: ready"}};
    s.repos[kRepo] = r;
    forge_ = std::make_unique<GitHub>(*rest_, *auth_, s, gh_->bot_login());
  }

  std::vector<int64_t> Slept() {
    std::lock_guard<std::mutex> lock(mu_);
    return slept_;
  }

  // A branch with one more commit than main, pushed by a person.
  void PushTopic(const std::string& branch) {
    Sh("cd " + src_ + " && git checkout -q -b " + branch +
       " && printf 'one\\nTWO\\nthree\\nfour\\n' > a.txt && "
       "git -c user.name=t -c user.email=t@t commit -q -am change && git checkout -q main");
    gh_->PushBranch(kRepo, src_, branch);
  }

  testing::TempDir tmp_;
  std::unique_ptr<GitHubDouble> gh_;
  std::string src_;
  int starts_ = 0;
  std::unique_ptr<Rest> rest_;
  std::unique_ptr<AppAuth> auth_;
  std::unique_ptr<GitHub> forge_;
  std::atomic<int64_t> now_s_{std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count()};
  std::mutex mu_;
  std::vector<int64_t> slept_;
};

TEST_F(Adapter, AppTokensAreMadeOnceAndRenewedBeforeTheyExpire) {
  GitHubDoubleOptions o;
  o.token_ttl_s = AppAuth::kRenewBefore + 100;
  o.now_s = [this] { return now_s_.load(); };
  Start(o);
  auto issue = gh_->OpenIssue(kRepo, "reporter", "It breaks", "Steps: ...");
  auto got = forge_->GetIssue(kRepo, issue);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(got->title, "It breaks");
  EXPECT_EQ(got->author, "reporter");
  EXPECT_FALSE(got->is_pull);
  ASSERT_TRUE(forge_->GetIssue(kRepo, issue).ok());
  auto requests = gh_->Requests();
  EXPECT_EQ(Count(requests, "GET", "/repos/acme/widgets/installation"), 1);
  EXPECT_EQ(Count(requests, "POST", "/access_tokens"), 1);
  for (const auto& r : requests) {
    if (r.target.find("/issues/") != std::string::npos) {
      EXPECT_EQ(r.auth, "installation");
    }
    if (r.target.find("/access_tokens") != std::string::npos) {
      EXPECT_EQ(r.auth, "jwt");
    }
  }
  // Tokens live 400 s here: kiln makes a new one once 300 s or less are left.
  now_s_ += 99;
  ASSERT_TRUE(forge_->GetIssue(kRepo, issue).ok());
  EXPECT_EQ(Count(gh_->Requests(), "POST", "/access_tokens"), 1);
  now_s_ += 2;
  ASSERT_TRUE(forge_->GetIssue(kRepo, issue).ok());
  EXPECT_EQ(Count(gh_->Requests(), "POST", "/access_tokens"), 2);
}

TEST_F(Adapter, AnExpiredTokenIsRenewedAndTheCallRepeated) {
  auto issue = gh_->OpenIssue(kRepo, "reporter", "t", "b");
  ASSERT_TRUE(forge_->GetIssue(kRepo, issue).ok());
  gh_->ExpireTokens();
  auto comment = forge_->AddComment(kRepo, issue, "still here");
  ASSERT_TRUE(comment.ok()) << comment.error().message();
  auto requests = gh_->Requests();
  EXPECT_EQ(Count(requests, "POST", "/issues/1/comments", 401), 1);
  EXPECT_EQ(Count(requests, "POST", "/issues/1/comments", 201), 1);
  EXPECT_EQ(Count(requests, "POST", "/access_tokens"), 2);
  auto comments = gh_->Get("/repos/acme/widgets/issues/1/comments");
  ASSERT_EQ(comments.size(), 1u);  // written once, not twice
  EXPECT_EQ(comments[0]["body"], "still here");
}

TEST_F(Adapter, ASecondaryRateLimitIsWaitedOut) {
  auto issue = gh_->OpenIssue(kRepo, "reporter", "t", "b");
  gh_->Inject({"POST",
               "/repos/acme/widgets/issues/[0-9]+/comments",
               403,
               {{"message",
                 "You have exceeded a secondary rate limit. Please wait a few minutes "
                 "before you try again."}},
               {{"retry-after", "3"}},
               2});
  auto comment = forge_->AddComment(kRepo, issue, "hello");
  ASSERT_TRUE(comment.ok()) << comment.error().message();
  EXPECT_EQ(Slept(), (std::vector<int64_t>{3000, 3000}));
  EXPECT_EQ(gh_->Get("/repos/acme/widgets/issues/1/comments").size(), 1u);
}

TEST_F(Adapter, RedirectsAreFollowedOnTheApiHostOnly) {
  auto issue = gh_->OpenIssue(kRepo, "reporter", "It breaks", "b");
  // A renamed repository: GitHub answers 301 with the new address, 307 for a write.
  gh_->Inject({"GET",
               "/repos/acme/widgets/issues/1",
               301,
               {{"message", "Moved Permanently"}},
               {{"location", gh_->api_url() + "/repos/acme/widgets/issues/1"}}});
  auto got = forge_->GetIssue(kRepo, issue);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(got->title, "It breaks");
  EXPECT_EQ(Count(gh_->Requests(), "GET", "/repos/acme/widgets/issues/1", 301), 1);
  gh_->Inject({"POST",
               "/repos/acme/widgets/issues/1/comments",
               307,
               {{"message", "Temporary Redirect"}},
               {{"location", "/api/v3/repos/acme/widgets/issues/1/comments"}}});  // relative
  auto comment = forge_->AddComment(kRepo, issue, "once");
  ASSERT_TRUE(comment.ok()) << comment.error().message();
  EXPECT_EQ(gh_->Get("/repos/acme/widgets/issues/1/comments").size(), 1u);

  // Another host would get the token: refused, nothing is sent there.
  gh_->Inject({"GET",
               "/repos/acme/widgets/issues/1",
               301,
               {{"message", "Moved Permanently"}},
               {{"location", "https://elsewhere.example/repos/acme/widgets/issues/1"}}});
  auto away = forge_->GetIssue(kRepo, issue);
  ASSERT_FALSE(away.ok());
  EXPECT_NE(away.error().message().find("'https://elsewhere.example/repos/acme/widgets/issues/1'"
                                        ": not on"),
            std::string::npos)
      << away.error().message();
  // One that never ends stops after five.
  gh_->Inject({"GET",
               "/repos/acme/widgets/issues/1",
               301,
               {{"message", "Moved Permanently"}},
               {{"location", gh_->api_url() + "/repos/acme/widgets/issues/1"}},
               100});
  auto loop = forge_->GetIssue(kRepo, issue);
  ASSERT_FALSE(loop.ok());
  EXPECT_NE(loop.error().message().find("301"), std::string::npos) << loop.error().message();
  EXPECT_EQ(Count(gh_->Requests(), "GET", "/repos/acme/widgets/issues/1", 301), 1 + 1 + 6);
}

TEST_F(Adapter, AnExhaustedPrimaryLimitWaitsForItsResetOrGivesUp) {
  auto issue = gh_->OpenIssue(kRepo, "reporter", "t", "b");
  ASSERT_TRUE(forge_->GetIssue(kRepo, issue).ok());
  const int64_t now = now_s_.load();
  gh_->Inject({"GET",
               "/repos/acme/widgets/issues/1",
               403,
               {{"message", "API rate limit exceeded for installation ID 77."}},
               {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", std::to_string(now + 4)}},
               1});
  auto waited = forge_->GetIssue(kRepo, issue);
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_EQ(Slept(), (std::vector<int64_t>{5000}));
  // A reset an hour away is not waited for: the call fails and says why.
  gh_->Inject({"GET",
               "/repos/acme/widgets/issues/1",
               429,
               {{"message", "API rate limit exceeded"}},
               {{"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", std::to_string(now + 3600)}},
               1});
  auto late = forge_->GetIssue(kRepo, issue);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), Error::Code::kTimeout);
  EXPECT_NE(late.error().message().find("API rate limit exceeded"), std::string::npos)
      << late.error().message();
  EXPECT_NE(late.error().message().find("longer than kiln waits"), std::string::npos);
}

TEST_F(Adapter, ServerErrorsAreRetriedOnlyWhereThatIsSafe) {
  auto issue = gh_->OpenIssue(kRepo, "reporter", "t", "b");
  gh_->Inject({"GET", "/repos/acme/widgets/issues/1", 502, {{"message", "Bad gateway"}}, {}, 2});
  ASSERT_TRUE(forge_->GetIssue(kRepo, issue).ok());
  EXPECT_EQ(Slept().size(), 2u);
  gh_->Inject(
      {"POST", "/repos/acme/widgets/issues/1/comments", 502, {{"message", "Bad gateway"}}, {}, 1});
  auto c = forge_->AddComment(kRepo, issue, "maybe");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), Error::Code::kIO);
  EXPECT_NE(c.error().message().find("502 Bad gateway"), std::string::npos) << c.error().message();
  EXPECT_EQ(Count(gh_->Requests(), "POST", "/issues/1/comments"), 1);
}

TEST_F(Adapter, ListsFollowEveryPage) {
  GitHubDoubleOptions o;
  o.max_per_page = 2;
  Start(o);
  auto issue = gh_->OpenIssue(kRepo, "reporter", "t", "b");
  for (int i = 0; i < 5; ++i) gh_->Comment(kRepo, issue, "reporter", "c" + std::to_string(i));
  auto comments = forge_->Comments(kRepo, issue);
  ASSERT_TRUE(comments.ok()) << comments.error().message();
  ASSERT_EQ(comments->size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ((*comments)[i].body, "c" + std::to_string(i));
  EXPECT_EQ(Count(gh_->Requests(), "GET", "/issues/1/comments"), 3);
}

TEST_F(Adapter, LabelsAreCreatedWithColourAndMappedBothWays) {
  auto issue = gh_->OpenIssue(kRepo, "reporter", "t", "b");
  ASSERT_TRUE(forge_->AddLabels(kRepo, issue, {"bug", "ready-to-spec", "area:parser"}).ok());
  std::map<std::string, json> labels;
  for (const auto& l : gh_->Get("/repos/acme/widgets/labels")) labels[l["name"]] = l;
  ASSERT_TRUE(labels.count("bug"));
  EXPECT_EQ(labels["bug"]["color"], "d73a4a");
  ASSERT_TRUE(labels.count("kiln: ready")) << "the repository's name for ready-to-spec";
  EXPECT_EQ(labels["kiln: ready"]["color"], "fbca04");
  EXPECT_FALSE(labels.count("ready-to-spec"));
  EXPECT_EQ(labels["area:parser"]["description"], "An area of the code");
  auto got = forge_->GetIssue(kRepo, issue);
  ASSERT_TRUE(got.ok());
  std::sort(got->labels.begin(), got->labels.end());
  EXPECT_EQ(got->labels, (std::vector<std::string>{"area:parser", "bug", "ready-to-spec"}));
  // A label outside the set is refused before anything is sent.
  size_t before = gh_->Requests().size();
  Status st = forge_->AddLabels(kRepo, issue, {"wontfix"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Error::Code::kInvalidArgument);
  EXPECT_EQ(Count(gh_->Requests(), "POST", "/labels"), 4);  // 3 made + 1 issue write
  EXPECT_LE(gh_->Requests().size(), before + 2);            // at most the repository re-read
  ASSERT_TRUE(forge_->RemoveLabel(kRepo, issue, "ready-to-spec").ok());
  EXPECT_EQ(gh_->Get("/repos/acme/widgets/issues/1")["labels"].size(), 2u);
}

TEST_F(Adapter, TrustComesFromWriteAccessTeamsAndTheSettings) {
  EXPECT_TRUE(*forge_->IsTrusted(kRepo, "maintainer"));
  EXPECT_TRUE(*forge_->IsTrusted(kRepo, "acme"));  // the owner: admin
  EXPECT_TRUE(*forge_->IsTrusted(kRepo, "teammate"));
  EXPECT_TRUE(*forge_->IsTrusted(kRepo, "configured-friend"));
  EXPECT_FALSE(*forge_->IsTrusted(kRepo, "reader"));
  EXPECT_FALSE(*forge_->IsTrusted(kRepo, "stranger"));
  auto other = forge_->IsTrusted("acme/other", "maintainer");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(*other) << "a repository kiln is not configured for trusts no one";
}

TEST_F(Adapter, PullRequestsReviewsAndStatusesAsACarefulIntegration) {
  // kiln's branch, pushed over HTTPS with the installation token.
  Sh("cd " + src_ +
     " && git checkout -q -b kiln/implement-1 && echo four >> a.txt && "
     "git -c user.name=t -c user.email=t@t commit -q -am four && git checkout -q main");
  std::string sha;
  {
    FILE* p = ::popen(("git -C " + src_ + " rev-parse kiln/implement-1").c_str(), "r");
    char buf[64] = {};
    ASSERT_NE(fgets(buf, sizeof buf, p), nullptr);
    ::pclose(p);
    sha = std::string(buf, 40);
  }
  ASSERT_TRUE(git::SetCaFile(gh_->ca_file()).ok());
  Status pushed = forge_->PushBranch(kRepo, "kiln/implement-1", src_ + "/.git", sha, true);
  ASSERT_TRUE(pushed.ok()) << pushed.error().message();
  EXPECT_EQ(gh_->BranchSha(kRepo, "kiln/implement-1"), sha);

  auto pull = forge_->OpenPull(kRepo, "Fix it", "Fixes #1", "kiln/implement-1", "main");
  ASSERT_TRUE(pull.ok()) << pull.error().message();
  EXPECT_EQ(pull->head_sha, sha);
  EXPECT_EQ(pull->issue.author, gh_->bot_login());
  auto found = forge_->FindPull(kRepo, "kiln/implement-1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->issue.number, pull->issue.number);

  // A second pull request for the same head: GitHub's 422, word for word.
  auto again = forge_->OpenPull(kRepo, "Fix it", "Fixes #1", "kiln/implement-1", "main");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Error::Code::kInvalidArgument);
  EXPECT_NE(again.error().message().find("422 Validation Failed: A pull request already exists"),
            std::string::npos)
      << again.error().message();

  // kiln approving its own pull request: GitHub's 422, passed on (the
  // pipeline states its verdict in a COMMENT review instead).
  forge::Review review;
  review.verdict = "approve";
  review.body = "Looks right.";
  review.commit_sha = sha;
  review.comments.push_back({"a.txt", 4, "RIGHT", "nit", "a trailing line"});
  auto own = forge_->AddReview(kRepo, pull->issue.number, review);
  ASSERT_FALSE(own.ok());
  EXPECT_EQ(own.error().code(), Error::Code::kInvalidArgument);
  EXPECT_NE(own.error().message().find("Can not approve your own pull request"), std::string::npos)
      << own.error().message();
  review.verdict = "comment";
  auto posted = forge_->AddReview(kRepo, pull->issue.number, review);
  ASSERT_TRUE(posted.ok()) << posted.error().message();
  json reviews =
      gh_->Get("/repos/acme/widgets/pulls/" + std::to_string(pull->issue.number) + "/reviews");
  ASSERT_EQ(reviews.size(), 1u);
  EXPECT_EQ(reviews[0]["state"], "COMMENTED");
  json inline_comments =
      gh_->Get("/repos/acme/widgets/pulls/" + std::to_string(pull->issue.number) + "/comments");
  ASSERT_EQ(inline_comments.size(), 1u);
  EXPECT_EQ(inline_comments[0]["path"], "a.txt");
  EXPECT_EQ(inline_comments[0]["line"], 4);
  EXPECT_EQ(inline_comments[0]["side"], "RIGHT");
  EXPECT_EQ(inline_comments[0]["body"], "**nit**: a trailing line");
  EXPECT_TRUE(inline_comments[0]["start_line"].is_null());  // one line: no range sent

  // A range reaches GitHub with start_line and start_side, and reads back.
  forge::ReviewComment range{"a.txt", 4, "RIGHT", "minor", "the new line and what it follows"};
  range.start_line = 2;
  range.start_side = "LEFT";
  review.comments = {range};
  auto ranged = forge_->AddReview(kRepo, pull->issue.number, review);
  ASSERT_TRUE(ranged.ok()) << ranged.error().message();
  inline_comments =
      gh_->Get("/repos/acme/widgets/pulls/" + std::to_string(pull->issue.number) + "/comments");
  ASSERT_EQ(inline_comments.size(), 2u);
  EXPECT_EQ(inline_comments[1]["start_line"], 2);
  EXPECT_EQ(inline_comments[1]["start_side"], "LEFT");
  EXPECT_EQ(inline_comments[1]["line"], 4);
  EXPECT_EQ(inline_comments[1]["side"], "RIGHT");
  // A range that ends before it starts is GitHub's 422.
  range.start_line = 4;
  range.start_side = "RIGHT";
  range.line = 3;
  review.comments = {range};
  auto backwards = forge_->AddReview(kRepo, pull->issue.number, review);
  ASSERT_FALSE(backwards.ok());
  EXPECT_EQ(backwards.error().code(), Error::Code::kInvalidArgument);
  EXPECT_NE(backwards.error().message().find("start line must precede the end line"),
            std::string::npos)
      << backwards.error().message();

  // A comment off the diff is GitHub's 422, and no review is posted.
  review.comments = {{"a.txt", 9, "RIGHT", "nit", "not in the diff"}};
  auto off = forge_->AddReview(kRepo, pull->issue.number, review);
  ASSERT_FALSE(off.ok());
  EXPECT_EQ(off.error().code(), Error::Code::kInvalidArgument);

  // Statuses: GitHub's 140-character limit is kept.
  forge::CommitStatus status{"kiln/verify", "success", std::string(300, 'x'), "", 0};
  ASSERT_TRUE(forge_->SetStatus(kRepo, sha, status).ok());
  auto statuses = forge_->Statuses(kRepo, sha);
  ASSERT_TRUE(statuses.ok());
  ASSERT_EQ(statuses->size(), 1u);
  EXPECT_EQ((*statuses)[0].state, "success");
  EXPECT_EQ((*statuses)[0].description.size(), 140u);

  // A person's approval of kiln's pull request is read back as approve.
  gh_->Review(kRepo, pull->issue.number, "maintainer", "APPROVE", "ship it");
  auto all = forge_->Reviews(kRepo, pull->issue.number);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);  // kiln's two (one line, a range), then the maintainer's
  EXPECT_EQ(all->back().verdict, "approve");
  EXPECT_EQ(all->back().author, "maintainer");
  EXPECT_EQ(all->back().commit_sha, sha);
}

TEST_F(Adapter, TheMirrorFetchesOverHttpsWithTheToken) {
  ASSERT_TRUE(git::SetCaFile(gh_->ca_file()).ok());
  auto info = forge_->Repo(kRepo);
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info->clone_url, gh_->git_url(kRepo));
  git::Cache cache(tmp_.path() + "/cache");
  // Without a token the double refuses, as GitHub does for a private repository.
  auto refused = cache.Resolve(info->clone_url, "main");
  ASSERT_FALSE(refused.ok());
  cache.set_tokens(
      [this](const std::string& url, bool renew) { return forge_->TokenForUrl(url, renew); });
  auto resolved = cache.Resolve(info->clone_url, "main");
  ASSERT_TRUE(resolved.ok()) << resolved.error().message();
  EXPECT_EQ(resolved->commit, gh_->BranchSha(kRepo, "main"));
  EXPECT_EQ(Count(gh_->Requests(), "POST", "/access_tokens"), 1);

  // The token is revoked before the expiry kiln knows of: the origin refuses
  // it, kiln buys a fresh one and the fetch goes through.
  gh_->ExpireTokens();
  auto again = cache.Resolve(info->clone_url, "main");
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->commit, gh_->BranchSha(kRepo, "main"));
  EXPECT_TRUE(again->fetched);
  EXPECT_EQ(Count(gh_->Requests(), "POST", "/access_tokens"), 2);
  auto other = forge_->TokenForUrl("https://elsewhere.example/acme/widgets.git");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, "") << "a token goes only to the repositories kiln is configured for";
}

TEST(Rest, NextLinkAndErrorText) {
  EXPECT_EQ(
      NextLink(
          R"(<https://h/api/v3/x?page=2>; rel="next", <https://h/api/v3/x?page=5>; rel="last")"),
      "https://h/api/v3/x?page=2");
  EXPECT_EQ(NextLink(R"(<https://h/x?page=1>; rel="prev", <https://h/x?page=3>; rel="next")"),
            "https://h/x?page=3");
  EXPECT_EQ(NextLink(R"(<https://h/x?page=1>; rel="first", <https://h/x?page=1>; rel="prev")"), "");
  EXPECT_EQ(NextLink(""), "");
  EXPECT_EQ(ErrorText(json::parse(R"({"message":"Validation Failed","errors":[
      {"resource":"Label","code":"already_exists","field":"name"},
      {"message":"No commits between main and x"}]})")),
            "Validation Failed: Label.name already_exists: No commits between main and x");
}

TEST(Auth, AKeyThatIsNotRsaIsRefused) {
  auto jwt = AppJwt("1", "-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n", 0);
  ASSERT_FALSE(jwt.ok());
  EXPECT_EQ(jwt.error().code(), Error::Code::kInvalidArgument);
  EXPECT_EQ(ParseTimestamp("2026-11-25T10:00:00Z").value(), 1795600800);
  EXPECT_FALSE(ParseTimestamp("2026-11-25 10:00").ok());
}

TEST(Rest, ALinkToAnotherHostIsNotFollowed) {
  RestOptions o;
  o.api_url = "https://127.0.0.1:1/api/v3";
  Rest rest(o);
  auto r = rest.Call("GET", "https://evil.example/steal", nullptr, "Bearer secret");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Error::Code::kInvalidArgument);
}

}  // namespace
}  // namespace kiln::github
