#include <gtest/gtest.h>

#include <filesystem>

#include "controller/forge/local.h"
#include "controller/sessionlog/signer.h"
#include "controller/sessionlog/writer.h"
#include "controller/store/store.h"
#include "controller/store/testutil.h"
#include "controller/web/auth.h"
#include "controller/web/runview.h"
#include "controller/web/site.h"
#include "tests/support/temp_dir.h"

namespace kiln::web {
namespace {

using forge::ApiRequest;
using forge::ApiResponse;
using nlohmann::json;

std::string Header(const ApiResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

// The value a Set-Cookie header of the response gives name.
std::string CookieValue(const ApiResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == "Set-Cookie" && v.starts_with(name + "=")) {
      return v.substr(name.size() + 1, v.find(';') - name.size() - 1);
    }
  }
  return "";
}

// The web view on both store backends: its sessions and share links, the
// forge's users and the runs in a SQLite file or on the test PostgreSQL.
class Web : public store::testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store_path_ = location_;
    auto store = store::Open(store_path_);
    ASSERT_TRUE(store.ok()) << store.error().message();
    store_ = std::move(*store);
    auto users = forge::Users::Open(store_path_);
    ASSERT_TRUE(users.ok());
    auto token = (*users)->Add("alice", false, 1);
    ASSERT_TRUE(token.ok());
    token_ = *token;
    SiteOptions o;
    o.store_path = store_path_;
    o.key_dir = dir_ / "keys";
    o.now = [this] { return now_; };
    auto site = Site::Open(*store_, o);
    ASSERT_TRUE(site.ok()) << site.error().message();
    site_ = std::move(*site);
  }

  ApiResponse Call(const std::string& method, const std::string& target,
                   const std::string& cookie = "", const std::string& body = "",
                   const std::string& type = "application/x-www-form-urlencoded") {
    ApiRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    if (!cookie.empty()) r.headers["cookie"] = cookie;
    if (!body.empty()) r.headers["content-type"] = type;
    return site_->Handle(r);
  }

  // Signs alice in through the login form; returns the Cookie header.
  std::string SignIn() {
    ApiResponse form = Call("GET", "/login?next=/runs/x");
    EXPECT_EQ(form.status, 200);
    std::string nonce = CookieValue(form, "kiln_login");
    EXPECT_FALSE(nonce.empty());
    ApiResponse in = Call("POST", "/login", "kiln_login=" + nonce,
                          "login_csrf=" + nonce + "&user=alice&token=" + token_ + "&next=%2F");
    EXPECT_EQ(in.status, 303) << in.body;
    std::string session = CookieValue(in, "kiln_session");
    EXPECT_FALSE(session.empty());
    return "kiln_session=" + session;
  }

  // The CSRF token a page gives the signed-in viewer.
  static std::string Csrf(const std::string& page) {
    const std::string marker = "name=\"csrf\" value=\"";
    size_t at = page.find(marker);
    if (at == std::string::npos) return "";
    at += marker.size();
    return page.substr(at, page.find('"', at) - at);
  }

  store::Run Queue(const std::string& task = "fix it") {
    store::RunRequest req;
    req.role = "implement";
    req.repo = "/src/app";
    req.commit = "HEAD";
    req.task = task;
    auto run = store_->Enqueue(req, now_);
    EXPECT_TRUE(run.ok());
    return *run;
  }

  std::string store_path_, token_;
  int64_t now_ = 1'700'000'000'000;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Site> site_;
};

TEST_P(Web, WithoutASessionPagesRedirectToSignInAndTheApiAnswers401) {
  ApiResponse page = Call("GET", "/");
  EXPECT_EQ(page.status, 303);
  EXPECT_EQ(Header(page, "Location"), "/login?next=/");
  ApiResponse api = Call("GET", "/api/v1/runs");
  EXPECT_EQ(api.status, 401);
  EXPECT_NE(api.body.find("sign in"), std::string::npos);
  // A POST without a session changes nothing.
  store::Run run = Queue();
  EXPECT_EQ(Call("POST", "/runs/" + run.id + "/cancel", "", "csrf=x").status, 401);
  EXPECT_FALSE(store_->Get(run.id)->cancel_requested);
}

TEST_P(Web, SignInSetsAStrictHttpOnlyCookieAndAWrongTokenIsRefused) {
  ApiResponse form = Call("GET", "/login");
  std::string nonce = CookieValue(form, "kiln_login");
  ApiResponse wrong = Call("POST", "/login", "kiln_login=" + nonce,
                           "login_csrf=" + nonce + "&user=alice&token=kiln_nope");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_NE(wrong.body.find("do not match"), std::string::npos);
  // Another user's name with alice's token is no better.
  ApiResponse other = Call("POST", "/login", "kiln_login=" + nonce,
                           "login_csrf=" + nonce + "&user=bob&token=" + token_);
  EXPECT_EQ(other.status, 401);
  // A form posted from elsewhere (no matching nonce cookie) signs nobody in.
  ApiResponse forged =
      Call("POST", "/login", "", "login_csrf=" + nonce + "&user=alice&token=" + token_);
  EXPECT_EQ(forged.status, 403);
  ApiResponse ok = Call("POST", "/login", "kiln_login=" + nonce,
                        "login_csrf=" + nonce + "&user=alice&token=" + token_ +
                            "&next=https%3A%2F%2Fevil.example%2F");
  ASSERT_EQ(ok.status, 303);
  EXPECT_EQ(Header(ok, "Location"), "/");  // never off-site
  std::string cookie;
  for (const auto& [k, v] : ok.headers) {
    if (k == "Set-Cookie" && v.starts_with("kiln_session=")) cookie = v;
  }
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(cookie.find("Secure"), std::string::npos);  // plain HTTP here
}

TEST_P(Web, PagesCarryAContentSecurityPolicyWithoutInlineScript) {
  std::string cookie = SignIn();
  ApiResponse page = Call("GET", "/", cookie);
  ASSERT_EQ(page.status, 200);
  std::string csp = Header(page, "Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos);
  EXPECT_EQ(page.body.find("<script>"), std::string::npos);
  EXPECT_NE(page.body.find("<script src=\"/static/kiln.js\""), std::string::npos);
  ApiResponse js = Call("GET", "/static/kiln.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_NE(js.body.find("EventSource"), std::string::npos);
  EXPECT_EQ(Call("GET", "/static/nope.js").status, 404);
}

TEST_P(Web, SteerAndCancelNeedTheCsrfToken) {
  std::string cookie = SignIn();
  store::Run run = Queue();
  ApiResponse page = Call("GET", "/runs/" + run.id, cookie);
  ASSERT_EQ(page.status, 200);
  std::string csrf = Csrf(page.body);
  ASSERT_FALSE(csrf.empty());
  // Without the token, or with another: refused, nothing queued.
  EXPECT_EQ(Call("POST", "/runs/" + run.id + "/steer", cookie, "message=hi").status, 403);
  EXPECT_EQ(Call("POST", "/runs/" + run.id + "/steer", cookie, "message=hi&csrf=0" + csrf).status,
            403);
  EXPECT_EQ(Call("POST", "/runs/" + run.id + "/cancel", cookie, "csrf=").status, 403);
  EXPECT_TRUE(store_->TakeSteering(run.id)->empty());
  EXPECT_FALSE(store_->Get(run.id)->cancel_requested);
  // With it: the message is queued for the agent, from the signed-in user.
  ApiResponse steer =
      Call("POST", "/runs/" + run.id + "/steer", cookie, "message=look+at+the+tests&csrf=" + csrf);
  EXPECT_EQ(steer.status, 303);
  auto queued = store_->TakeSteering(run.id);
  ASSERT_TRUE(queued.ok());
  ASSERT_EQ(queued->size(), 1u);
  EXPECT_EQ((*queued)[0].message, "look at the tests");
  EXPECT_EQ((*queued)[0].from, "web:alice");
  EXPECT_EQ(Call("POST", "/runs/" + run.id + "/steer", cookie, "message=+&csrf=" + csrf).status,
            422);
  EXPECT_EQ(Call("POST", "/runs/" + run.id + "/cancel", cookie, "csrf=" + csrf).status, 303);
  EXPECT_EQ(store_->Get(run.id)->status, store::Status::kCancelled);
}

TEST_P(Web, TheRunsApiTakesAnApiTokenWithoutCsrf) {
  store::Run run = Queue();
  ApiRequest r;
  r.method = "POST";
  r.target = "/api/v1/runs/" + run.id + "/steer";
  r.authorization = "Bearer " + token_;
  r.headers["content-type"] = "application/json";
  r.body = R"({"message": "from a script"})";
  ApiResponse out = site_->Handle(r);
  EXPECT_EQ(out.status, 202) << out.body;
  EXPECT_EQ(store_->TakeSteering(run.id)->at(0).from, "web:alice");
  r.body = R"({"message": 7})";
  EXPECT_EQ(site_->Handle(r).status, 422);
  r.body = "[";
  EXPECT_EQ(site_->Handle(r).status, 400);
  r.method = "GET";
  r.target = "/api/v1/runs?status=queued";
  r.body.clear();
  ApiResponse list = site_->Handle(r);
  ASSERT_EQ(list.status, 200);
  json runs = json::parse(list.body);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["id"], run.id);
  r.target = "/api/v1/runs?status=sleeping";
  EXPECT_EQ(site_->Handle(r).status, 422);
  r.target = "/api/v1/runs/nope";
  EXPECT_EQ(site_->Handle(r).status, 404);
  r.authorization = "Bearer kiln_wrong";
  r.target = "/api/v1/runs";
  EXPECT_EQ(site_->Handle(r).status, 401);
}

TEST_P(Web, AShareLinkShowsTheRunReadOnlyUntilRevokedOrExpired) {
  store::Run run = Queue("<img src=x onerror=alert(1)>");
  auto share = site_->auth().CreateShare(run.id, "alice", now_ + 3'600'000, now_);
  ASSERT_TRUE(share.ok());
  ApiResponse page = Call("GET", "/s/" + share->token);
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find(run.id), std::string::npos);
  EXPECT_EQ(page.body.find("/steer"), std::string::npos);  // no steer box
  EXPECT_EQ(page.body.find("Cancel run"), std::string::npos);
  EXPECT_EQ(page.body.find("<img src=x"), std::string::npos);
  EXPECT_NE(page.body.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  EXPECT_EQ(Header(page, "Referrer-Policy"), "no-referrer");
  EXPECT_EQ(Call("POST", "/s/" + share->token + "/steer", "", "message=hi").status, 403);
  EXPECT_EQ(Call("POST", "/s/" + share->token + "/cancel", "", "x=1").status, 403);
  EXPECT_FALSE(store_->Get(run.id)->cancel_requested);
  EXPECT_TRUE(store_->TakeSteering(run.id)->empty());
  // A guessed token shows nothing.
  EXPECT_EQ(Call("GET", "/s/" + std::string(64, 'a')).status, 404);
  // Expired, then revoked.
  now_ += 3'600'001;
  EXPECT_EQ(Call("GET", "/s/" + share->token).status, 404);
  now_ -= 3'600'001;
  ASSERT_TRUE(site_->auth().Revoke(share->share.id, now_).ok());
  EXPECT_EQ(Call("GET", "/s/" + share->token).status, 404);
  EXPECT_FALSE(site_->auth().Revoke("sh000000000000", now_).ok());
}

TEST_P(Web, SignOutEndsTheSession) {
  std::string cookie = SignIn();
  ApiResponse page = Call("GET", "/", cookie);
  std::string csrf = Csrf(page.body);
  EXPECT_EQ(Call("POST", "/logout", cookie, "csrf=" + csrf).status, 303);
  EXPECT_EQ(Call("GET", "/", cookie).status, 303);
}

TEST_P(Web, ASessionExpires) {
  std::string cookie = SignIn();
  EXPECT_EQ(Call("GET", "/", cookie).status, 200);
  now_ += kSessionMs;
  EXPECT_EQ(Call("GET", "/", cookie).status, 303);
}

// The local forge's pages: the forge's own permission checks hold for what
// is done from them, and what a page shows is escaped.
TEST_P(Web, ForgePagesActAsTheSignedInUserWithTheForgesPermissions) {
  const std::string repos = dir_ / "repos";
  std::filesystem::create_directories(dir_ / "src");
  dir_.Write("src/README.md", "hello\n");
  {
    auto alice = forge::Local::Open(store_path_, repos, "alice", forge::Access::kUser);
    ASSERT_TRUE(alice.ok());
    ASSERT_TRUE((*alice)->CreateRepo("acme/widget", dir_ / "src", {"alice"}, "main").ok());
    auto bob = forge::Local::Open(store_path_, repos, "bob", forge::Access::kUser);
    ASSERT_TRUE((*bob)->CreateIssue("acme/widget", "<b>bold</b> & \"quoted\"", "body").ok());
  }
  // A run that acted on the issue, and a re-run of it (kiln replay --rerun,
  // which carries its context and acts on nothing).
  store::RunRequest acted;
  acted.role = "triage";
  acted.repo = "/src/app";
  acted.commit = "HEAD";
  acted.task = "triage #1";
  acted.requested_by = "local:bob";
  acted.context = {{"repo", "acme/widget"}, {"number", 1}};
  auto pipeline_run = store_->Enqueue(acted, now_);
  ASSERT_TRUE(pipeline_run.ok());
  acted.requested_by = "rerun:" + pipeline_run->id;
  auto rerun = store_->Enqueue(acted, now_);
  ASSERT_TRUE(rerun.ok());
  auto users = forge::Users::Open(store_path_);
  std::string bob_token = *(*users)->Add("bob", false, 1);
  SiteOptions o;
  o.store_path = store_path_;
  o.key_dir = dir_ / "keys";
  o.repos_dir = repos;
  o.now = [this] { return now_; };
  site_ = std::move(*Site::Open(*store_, o));
  std::string cookie = SignIn();
  ApiResponse list = Call("GET", "/repos", cookie);
  ASSERT_EQ(list.status, 200);
  EXPECT_NE(list.body.find("href=\"/acme/widget\""), std::string::npos);
  ApiResponse page = Call("GET", "/acme/widget/issues/1", cookie);
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_NE(page.body.find("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;"), std::string::npos);
  EXPECT_EQ(page.body.find("<b>bold</b>"), std::string::npos);
  EXPECT_NE(page.body.find(pipeline_run->id), std::string::npos) << "the issue's runs";
  EXPECT_EQ(page.body.find(rerun->id), std::string::npos) << "a re-run is not among them";
  EXPECT_EQ(Header(Call("GET", "/acme/widget/pull/1", cookie), "Location"),
            "/acme/widget/issues/1");
  EXPECT_EQ(Call("GET", "/acme/nothing", cookie).status, 404);
  // Without the CSRF token: nothing; with it: the comment, by alice.
  const std::string csrf = Csrf(page.body);
  EXPECT_EQ(Call("POST", "/acme/widget/issues/1/comment", cookie, "body=hi").status, 403);
  EXPECT_EQ(Call("POST", "/acme/widget/issues/1/comment", cookie, "body=hi&csrf=" + csrf).status,
            303);
  EXPECT_EQ(Call("POST", "/acme/widget/issues/1/comment", cookie, "body=+&csrf=" + csrf).status,
            422);
  auto alice = forge::Local::Open(store_path_, repos, "alice", forge::Access::kUser);
  auto comments = (*alice)->Comments("acme/widget", 1);
  ASSERT_EQ(comments->size(), 1u);
  EXPECT_EQ((*comments)[0].author, "alice");
  // bob may comment, but not close another's... he is the author: he may
  // close his own issue; he may not label it (maintainers only).
  ApiRequest r;
  r.method = "POST";
  r.authorization = "Bearer " + bob_token;
  r.headers["content-type"] = "application/x-www-form-urlencoded";
  r.target = "/acme/widget/issues/1/label";
  r.body = "label=bug";
  ApiResponse refused = site_->Handle(r);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_TRUE((*alice)->GetIssue("acme/widget", 1)->labels.empty());
  r.target = "/acme/widget/issues/1/state";
  r.body = "state=closed";
  ApiResponse closed = site_->Handle(r);
  EXPECT_EQ(closed.status, 303) << closed.body;
  EXPECT_EQ((*alice)->GetIssue("acme/widget", 1)->state, "closed");
  r.body = "state=burnt";
  EXPECT_EQ(site_->Handle(r).status, 422);
  r.target = "/acme/widget/issues/1/explode";
  EXPECT_EQ(site_->Handle(r).status, 404);
}

// The timeline folds a log as it grows, and escapes what the model and the
// tools wrote.
INSTANTIATE_TEST_SUITE_P(Backends, Web, store::testing::AllBackends(), store::testing::BackendName);

TEST(RunViewTest, FoldsAGrowingLogAndEscapesWhatItShows) {
  testing::TempDir dir;
  auto signer = sessionlog::Signer::Generate();
  ASSERT_TRUE(signer.ok());
  std::shared_ptr<const sessionlog::Signer> key(std::move(*signer));
  const std::string log = dir / "run.log";
  auto w = sessionlog::Writer::Create(log, "r1", key);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("run.start", {{"run_id", "r1"}, {"budgets", {{"max_turns", 5}}}}).ok());
  ASSERT_TRUE((*w)->Append("tool.call", {{"turn", 1},
                                         {"call_id", "c1"},
                                         {"tool", "shell"},
                                         {"input", {{"command", "echo '<script>'"}}}})
                  .ok());
  RunView view(log);
  auto first = view.Poll();
  ASSERT_TRUE(first.ok()) << first.error().message();
  ASSERT_EQ(first->size(), 1u);
  ASSERT_EQ(view.items().size(), 1u);
  EXPECT_NE(view.items()[0].html.find("pending"), std::string::npos);
  ASSERT_TRUE(
      (*w)->Append("tool.result",
                   {{"call_id", "c1"}, {"exit_status", 0}, {"output", "<script>alert(1)</script>"}})
          .ok());
  auto second = view.Poll();
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(*second, std::vector<size_t>{0});  // the call's item, changed
  const Item& item = view.items()[0];
  EXPECT_EQ(item.html.find("<script>"), std::string::npos);
  EXPECT_NE(item.html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(item.html.find("pending"), std::string::npos);
  EXPECT_EQ(item.rev, view.last_seq());
  // Nothing new: nothing changed.
  EXPECT_TRUE(view.Poll()->empty());
}

}  // namespace
}  // namespace kiln::web
