// The GitHub double against real clients: a Beast HTTPS client that checks the
// double's certificate, JWTs signed with the App key, the git CLI over HTTPS,
// and a webhook receiver that checks signatures.
#include "tests/github/double.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>

#include <cstdio>
#include <mutex>
#include <set>
#include <thread>
#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "base/fd.h"
#include "controller/github/auth.h"
#include "tests/support/temp_dir.h"

namespace kiln::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

struct Resp {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  json j() const { return json::parse(body, nullptr, false); }
};

uint16_t PortOf(const std::string& url) {
  size_t colon = url.find(':', 8);
  return static_cast<uint16_t>(std::stoi(url.substr(colon + 1)));
}

// One HTTPS request to the double, verifying its certificate against its CA.
Resp Https(const GitHubDouble& gh, const std::string& method, const std::string& api_path,
           const std::string& auth, const std::string& body = "") {
  asio::io_context io;
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(gh.ca_file());
  ctx.set_verify_mode(ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  stream.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
  stream.next_layer().connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), PortOf(gh.api_url())));
  stream.handshake(ssl::stream_base::client);
  std::string target = api_path.rfind("https://", 0) == 0 ? api_path.substr(api_path.find('/', 8))
                                                          : "/api/v3" + api_path;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::user_agent, "kiln-test");
  if (!auth.empty()) req.set(http::field::authorization, auth);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  Resp out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& h : res) {
    std::string name(h.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(h.value());
  }
  out.body = res.body();
  return out;
}

// An RS256 JWT signed with the PEM key in key_file, by kiln's own signer.
std::string Jwt(const std::string& key_file, const json& claims) {
  auto pem = ReadFile(key_file);
  auto jwt = pem.ok() ? github::SignJwt(*pem, claims) : Result<std::string>(pem.error());
  EXPECT_TRUE(jwt.ok()) << jwt.error().message();
  return jwt.ok() ? *jwt : "";
}

std::string AppJwt(const GitHubDouble& gh, int64_t app_id = 4242) {
  int64_t now = static_cast<int64_t>(::time(nullptr));
  return Jwt(gh.app_key_file(), {{"iat", now - 60}, {"exp", now + 540}, {"iss", app_id}});
}

// Runs a shell command; its exit code and output (stdout and stderr).
std::pair<int, std::string> Sh(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  return {WEXITSTATUS(rc), out};
}

// A local repository with a 20-line file on main.
std::string MakeSource(const TempDir& tmp) {
  std::string src = tmp / "src";
  std::string lines;
  for (int i = 1; i <= 20; ++i) lines += "line " + std::to_string(i) + "\n";
  tmp.Write("src/file.txt", lines);
  auto [rc, out] = Sh("cd " + src +
                      " && git init -q -b main && git -c user.name=t -c user.email=t@e add . && "
                      "git -c user.name=t -c user.email=t@e commit -q -m initial");
  EXPECT_EQ(rc, 0) << out;
  return src;
}

// A branch of src changing line 10 of file.txt.
void MakeBranch(const std::string& src, const std::string& branch, const std::string& text) {
  auto [rc, out] =
      Sh("cd " + src + " && git checkout -q -B " + branch + " main && sed -i 's/^line 10$/" + text +
         "/' file.txt && git -c user.name=t -c user.email=t@e commit -q -am " + branch +
         " && git checkout -q main");
  ASSERT_EQ(rc, 0) << out;
}

// Webhook receiver: plain HTTP on loopback, one request per connection.
class Receiver {
 public:
  struct Got {
    std::map<std::string, std::string> headers;
    std::string body;
  };
  Receiver() {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    thread_ = std::thread([this] { Loop(); });
  }
  ~Receiver() {
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) +
           "/webhooks/github";
  }
  std::vector<Got> got() const {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }

 private:
  void Loop() {
    for (;;) {
      tcp::socket sock(io_);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec) return;
      beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(sock, buf, req, ec);
      if (ec) continue;
      Got g;
      for (const auto& h : req) g.headers[std::string(h.name_string())] = std::string(h.value());
      g.body = req.body();
      {
        std::lock_guard<std::mutex> lock(mu_);
        got_.push_back(g);
      }
      http::response<http::string_body> res{http::status::accepted, 11};
      res.body() = "queued";
      res.prepare_payload();
      http::write(sock, res, ec);
    }
  }
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Got> got_;
};

std::string HmacHex(const EVP_MD* md, const std::string& key, const std::string& body) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), out, &len);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(b, sizeof b, "%02x", out[i]);
    hex += b;
  }
  return hex;
}

class GitHubDoubleTest : public ::testing::Test {
 protected:
  void StartDouble(GitHubDoubleOptions opt = {}) {
    opt.dir = tmp_ / "gh";
    if (opt.webhook_secret.empty()) opt.webhook_secret = "s3cret";
    gh_ = GitHubDouble::Start(opt);
    src_ = MakeSource(tmp_);
    gh_->CreateRepo("acme/demo", src_);
  }
  std::string Token() {
    Resp r = Https(*gh_, "POST", "/app/installations/77/access_tokens", "Bearer " + AppJwt(*gh_));
    EXPECT_EQ(r.status, 201) << r.body;
    return r.j()["token"].get<std::string>();
  }

  TempDir tmp_;
  std::string src_;
  std::unique_ptr<GitHubDouble> gh_;
};

TEST_F(GitHubDoubleTest, JwtThenInstallationTokenThenRest) {
  StartDouble();
  std::string jwt = AppJwt(*gh_);
  Resp app = Https(*gh_, "GET", "/app", "Bearer " + jwt);
  ASSERT_EQ(app.status, 200) << app.body;
  EXPECT_EQ(app.j()["slug"], "kiln-factory");
  Resp inst = Https(*gh_, "GET", "/repos/acme/demo/installation", "Bearer " + jwt);
  ASSERT_EQ(inst.status, 200) << inst.body;
  EXPECT_EQ(inst.j()["id"], 77);
  Resp tok = Https(*gh_, "POST", "/app/installations/77/access_tokens", "Bearer " + jwt);
  ASSERT_EQ(tok.status, 201) << tok.body;
  std::string token = tok.j()["token"];
  EXPECT_EQ(token.rfind("ghs_", 0), 0u);
  EXPECT_EQ(token.size(), 40u);
  EXPECT_EQ(tok.j()["expires_at"].get<std::string>().back(), 'Z');

  Resp repo = Https(*gh_, "GET", "/repos/acme/demo", "token " + token);
  ASSERT_EQ(repo.status, 200) << repo.body;
  EXPECT_EQ(repo.j()["full_name"], "acme/demo");
  EXPECT_EQ(repo.j()["default_branch"], "main");
  EXPECT_EQ(repo.j()["clone_url"], gh_->git_url("acme/demo"));
  EXPECT_EQ(repo.headers["x-ratelimit-resource"], "core");
  EXPECT_FALSE(repo.headers["x-ratelimit-remaining"].empty());
  EXPECT_FALSE(repo.headers["x-github-request-id"].empty());
  EXPECT_EQ(repo.headers["content-type"], "application/json; charset=utf-8");

  EXPECT_EQ(Https(*gh_, "GET", "/repos/acme/demo", "").j()["message"], "Requires authentication");
  EXPECT_EQ(Https(*gh_, "GET", "/repos/acme/demo", "Bearer " + jwt).status, 401);
  EXPECT_EQ(Https(*gh_, "GET", "/app", "token " + token).status, 401);
  int64_t now = static_cast<int64_t>(::time(nullptr));
  std::string wrong_iss = AppJwt(*gh_, 1);
  std::string too_long =
      Jwt(gh_->app_key_file(), {{"iat", now}, {"exp", now + 3600}, {"iss", "4242"}});
  EXPECT_EQ(Https(*gh_, "GET", "/app", "Bearer " + wrong_iss).status, 401);
  EXPECT_EQ(Https(*gh_, "GET", "/app", "Bearer " + too_long).status, 401);
  EXPECT_EQ(Https(*gh_, "GET", "/app", "Bearer " + jwt.substr(0, jwt.size() - 4) + "AAAA").status,
            401);
  auto reqs = gh_->Requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs[0].auth, "jwt");
  EXPECT_EQ(reqs[3].auth, "installation");
  EXPECT_EQ(reqs[4].auth, "none");
}

TEST_F(GitHubDoubleTest, ExpiredTokensAre401AndStaticTokenActsAsItsUser) {
  GitHubDoubleOptions opt;
  opt.static_token = "github_pat_test";
  StartDouble(opt);
  std::string token = Token();
  EXPECT_EQ(Https(*gh_, "GET", "/repos/acme/demo", "token " + token).status, 200);
  gh_->ExpireTokens();
  Resp r = Https(*gh_, "GET", "/repos/acme/demo", "token " + token);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.j()["message"], "Bad credentials");
  EXPECT_EQ(r.j()["documentation_url"], "https://docs.github.com/rest");
  EXPECT_EQ(gh_->Requests().back().auth, "bad");
  Resp user = Https(*gh_, "GET", "/user", "Bearer github_pat_test");
  ASSERT_EQ(user.status, 200);
  EXPECT_EQ(user.j()["login"], "kiln-bot");
  EXPECT_EQ(user.j()["type"], "User");
}

TEST_F(GitHubDoubleTest, PaginationLinks) {
  GitHubDoubleOptions opt;
  opt.max_per_page = 2;
  StartDouble(opt);
  int64_t n = gh_->OpenIssue("acme/demo", "alice", "Crash", "on empty input");
  for (int i = 0; i < 5; ++i) gh_->Comment("acme/demo", n, "alice", "c" + std::to_string(i));
  std::string token = Token();
  std::string path = "/repos/acme/demo/issues/" + std::to_string(n) + "/comments";
  Resp p1 = Https(*gh_, "GET", path + "?per_page=100", "token " + token);
  ASSERT_EQ(p1.status, 200);
  EXPECT_EQ(p1.j().size(), 2u);
  std::string base = gh_->api_url() + path;
  EXPECT_EQ(p1.headers["link"], "<" + base + "?per_page=2&page=2>; rel=\"next\", <" + base +
                                    "?per_page=2&page=3>; rel=\"last\"");
  Resp p2 = Https(*gh_, "GET", base + "?per_page=2&page=2", "token " + token);
  EXPECT_EQ(p2.headers["link"], "<" + base + "?per_page=2&page=1>; rel=\"prev\", <" + base +
                                    "?per_page=2&page=3>; rel=\"next\", <" + base +
                                    "?per_page=2&page=3>; rel=\"last\", <" + base +
                                    "?per_page=2&page=1>; rel=\"first\"");
  Resp p3 = Https(*gh_, "GET", path + "?page=3", "token " + token);
  ASSERT_EQ(p3.j().size(), 1u);
  EXPECT_EQ(p3.j()[0]["body"], "c4");
  EXPECT_EQ(p3.headers["link"].find("rel=\"next\""), std::string::npos);
  EXPECT_NE(p3.headers["link"].find("rel=\"first\""), std::string::npos);
  json all = gh_->Get(path);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[4]["user"]["login"], "alice");
}

TEST_F(GitHubDoubleTest, LabelsAndIssueLabels) {
  StartDouble();
  std::string auth = "token " + Token();
  Resp made = Https(*gh_, "POST", "/repos/acme/demo/labels", auth,
                    R"({"name":"kiln:triaged","color":"0e8a16","description":"done"})");
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(made.j()["color"], "0e8a16");
  Resp again = Https(*gh_, "POST", "/repos/acme/demo/labels", auth, R"({"name":"KILN:Triaged"})");
  ASSERT_EQ(again.status, 422);
  EXPECT_EQ(again.j()["message"], "Validation Failed");
  EXPECT_EQ(again.j()["errors"][0]["code"], "already_exists");
  EXPECT_EQ(again.j()["errors"][0]["field"], "name");

  int64_t n = gh_->OpenIssue("acme/demo", "alice", "Bug", "");
  std::string issue = "/repos/acme/demo/issues/" + std::to_string(n);
  Resp added = Https(*gh_, "POST", issue + "/labels", auth, R"({"labels":["kiln:triaged","new"]})");
  ASSERT_EQ(added.status, 200) << added.body;
  ASSERT_EQ(added.j().size(), 2u);
  EXPECT_EQ(added.j()[1]["color"], "ededed");
  Resp removed = Https(*gh_, "DELETE", issue + "/labels/kiln%3Atriaged", auth);
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(removed.j().size(), 1u);
  Resp gone = Https(*gh_, "DELETE", issue + "/labels/kiln%3Atriaged", auth);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.j()["message"], "Label does not exist");
  EXPECT_EQ(gh_->Get(issue)["labels"][0]["name"], "new");
}

TEST_F(GitHubDoubleTest, PullRequestsAndReviewValidation) {
  StartDouble();
  std::string auth = "token " + Token();
  MakeBranch(src_, "fix", "line ten");
  gh_->PushBranch("acme/demo", src_, "fix");
  std::string create = R"({"title":"Fix","head":"fix","base":"main","body":"b"})";
  Resp pr = Https(*gh_, "POST", "/repos/acme/demo/pulls", auth, create);
  ASSERT_EQ(pr.status, 201) << pr.body;
  int64_t n = pr.j()["number"];
  EXPECT_EQ(pr.j()["head"]["sha"], gh_->BranchSha("acme/demo", "fix"));
  EXPECT_EQ(pr.j()["head"]["label"], "acme:fix");
  EXPECT_EQ(pr.j()["user"]["login"], "kiln-factory[bot]");
  EXPECT_EQ(pr.j()["user"]["type"], "Bot");
  EXPECT_EQ(pr.j()["commits"], 1);
  EXPECT_EQ(pr.j()["additions"], 1);
  EXPECT_EQ(pr.j()["deletions"], 1);
  EXPECT_EQ(pr.j()["changed_files"], 1);
  Resp dup = Https(*gh_, "POST", "/repos/acme/demo/pulls", auth, create);
  ASSERT_EQ(dup.status, 422);
  EXPECT_EQ(dup.j()["errors"][0]["message"], "A pull request already exists for acme:fix.");
  Resp nohead = Https(*gh_, "POST", "/repos/acme/demo/pulls", auth,
                      R"({"title":"x","head":"nope","base":"main"})");
  EXPECT_EQ(nohead.status, 422);
  EXPECT_EQ(nohead.j()["errors"][0]["field"], "head");
  Sh("cd " + src_ + " && git branch same main");
  gh_->PushBranch("acme/demo", src_, "same");
  Resp empty = Https(*gh_, "POST", "/repos/acme/demo/pulls", auth,
                     R"({"title":"x","head":"acme:same","base":"main"})");
  EXPECT_EQ(empty.status, 422);
  EXPECT_EQ(empty.j()["errors"][0]["message"], "No commits between main and same");
  EXPECT_TRUE(gh_->Get("/repos/acme/demo/issues/" + std::to_string(n)).contains("pull_request"));

  std::string reviews = "/repos/acme/demo/pulls/" + std::to_string(n) + "/reviews";
  Resp own = Https(*gh_, "POST", reviews, auth, R"({"event":"APPROVE"})");
  ASSERT_EQ(own.status, 422);
  EXPECT_EQ(own.j()["errors"][0], "Can not approve your own pull request");
  auto comment = [](int line, const std::string& side, const std::string& path = "file.txt") {
    return json{{"event", "COMMENT"},
                {"body", ""},
                {"comments", {{{"path", path}, {"line", line}, {"side", side}, {"body", "x"}}}}}
        .dump();
  };
  EXPECT_EQ(Https(*gh_, "POST", reviews, auth, comment(1, "RIGHT")).status, 422);
  Resp far = Https(*gh_, "POST", reviews, auth, comment(20, "LEFT"));
  EXPECT_EQ(far.status, 422);
  EXPECT_EQ(far.j()["errors"][0], "Pull request review thread line must be part of the diff");
  EXPECT_EQ(Https(*gh_, "POST", reviews, auth, comment(10, "RIGHT", "other.txt")).status, 422);
  EXPECT_EQ(Https(*gh_, "POST", reviews, auth, R"({"event":"REQUEST_CHANGES"})").status, 422);
  Resp ok = Https(*gh_, "POST", reviews, auth, comment(10, "RIGHT"));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.j()["state"], "COMMENTED");
  EXPECT_EQ(Https(*gh_, "POST", reviews, auth, comment(7, "LEFT")).status, 200);

  gh_->Review("acme/demo", n, "alice", "APPROVE", "lgtm");
  json all = gh_->Get(reviews);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2]["state"], "APPROVED");
  json rc = gh_->Get("/repos/acme/demo/pulls/" + std::to_string(n) + "/comments");
  ASSERT_EQ(rc.size(), 2u);
  EXPECT_EQ(rc[0]["line"], 10);
  EXPECT_EQ(rc[0]["pull_request_review_id"], ok.j()["id"]);
  EXPECT_EQ(rc[1]["side"], "LEFT");
}

// Multi-line comments: start_line before line, both in the diff, in one hunk.
TEST_F(GitHubDoubleTest, ReviewRangesFollowGitHubsRules) {
  StartDouble();
  std::string auth = "token " + Token();
  // Lines 2 and 19 changed: two hunks, 1-5 and 16-20 on both sides.
  auto [rc, out] = Sh("cd " + src_ +
                      " && git checkout -q -B two main && sed -i -e 's/^line 2$/two/' -e "
                      "'s/^line 19$/nineteen/' file.txt && git -c user.name=t -c user.email=t@e "
                      "commit -q -am two && git checkout -q main");
  ASSERT_EQ(rc, 0) << out;
  gh_->PushBranch("acme/demo", src_, "two");
  int64_t n = gh_->OpenPull("acme/demo", "alice", "Two", "", "two", "main");
  std::string reviews = "/repos/acme/demo/pulls/" + std::to_string(n) + "/reviews";
  auto range = [&](int start, const std::string& start_side, int line) {
    json c = {{"path", "file.txt"},
              {"line", line},
              {"side", "RIGHT"},
              {"body", "x"},
              {"start_line", start}};
    if (!start_side.empty()) c["start_side"] = start_side;
    return Https(*gh_, "POST", reviews, auth, json{{"event", "COMMENT"}, {"comments", {c}}}.dump());
  };
  Resp spans = range(4, "RIGHT", 17);
  ASSERT_EQ(spans.status, 422);
  EXPECT_EQ(spans.j()["errors"][0],
            "Pull request review thread start line must be part of the same hunk as the line.");
  Resp backwards = range(4, "RIGHT", 2);
  ASSERT_EQ(backwards.status, 422);
  EXPECT_EQ(backwards.j()["errors"][0],
            "Pull request review thread start line must precede the end line.");
  EXPECT_EQ(range(2, "RIGHT", 2).status, 422);
  Resp outside = range(10, "RIGHT", 17);
  ASSERT_EQ(outside.status, 422);
  EXPECT_EQ(outside.j()["errors"][0], "Pull request review thread line must be part of the diff");
  EXPECT_TRUE(gh_->Get("/repos/acme/demo/pulls/" + std::to_string(n) + "/comments").empty());

  ASSERT_EQ(range(1, "", 4).status, 200);        // start_side defaults to side
  ASSERT_EQ(range(18, "LEFT", 17).status, 200);  // across sides, inside one hunk
  json rc_all = gh_->Get("/repos/acme/demo/pulls/" + std::to_string(n) + "/comments");
  ASSERT_EQ(rc_all.size(), 2u);
  EXPECT_EQ(rc_all[0]["start_line"], 1);
  EXPECT_EQ(rc_all[0]["start_side"], "RIGHT");
  EXPECT_EQ(rc_all[0]["line"], 4);
  EXPECT_EQ(rc_all[1]["start_line"], 18);
  EXPECT_EQ(rc_all[1]["start_side"], "LEFT");
}

TEST_F(GitHubDoubleTest, GitOverHttpsWithTokenAndSynchronize) {
  StartDouble();
  std::string token = Token();
  std::string url = gh_->git_url("acme/demo");
  std::string creds = "https://x-access-token:" + token + "@" + url.substr(8);
  std::string env = "GIT_SSL_CAINFO=" + gh_->ca_file() + " GIT_TERMINAL_PROMPT=0 ";
  auto [rc0, out0] = Sh(env + "git clone -q " + url + " " + tmp_ / "anon");
  EXPECT_NE(rc0, 0) << out0;
  bool saw_401 = false;
  for (const auto& r : gh_->Requests()) saw_401 |= r.status == 401 && r.auth == "none";
  EXPECT_TRUE(saw_401);

  std::string work = tmp_ / "work";
  auto [rc1, out1] = Sh(env + "git clone -q " + creds + " " + work);
  ASSERT_EQ(rc1, 0) << out1;
  std::string git = env + "git -C " + work + " -c user.name=k -c user.email=k@e ";
  // 3 MB of noise: more than git's 1 MiB post buffer, so the pack comes chunked.
  auto [rc2, out2] = Sh(git + "checkout -q -b feature && echo new > " + work +
                        "/new.txt && head -c 3000000 /dev/urandom > " + work + "/noise.bin && " +
                        git + "add new.txt noise.bin && " + git + "commit -q -m new && " + git +
                        "push -q origin feature");
  ASSERT_EQ(rc2, 0) << out2;
  std::string auth = "token " + token;
  Resp pr = Https(*gh_, "POST", "/repos/acme/demo/pulls", auth,
                  R"({"title":"New","head":"feature","base":"main"})");
  ASSERT_EQ(pr.status, 201) << pr.body;
  std::string first = pr.j()["head"]["sha"];

  auto [rc3, out3] = Sh("echo more >> " + work + "/new.txt && " + git + "commit -q -am more && " +
                        git + "push -q origin feature");
  ASSERT_EQ(rc3, 0) << out3;
  std::string second = gh_->BranchSha("acme/demo", "feature");
  EXPECT_NE(first, second);
  EXPECT_EQ(gh_->Get("/repos/acme/demo/pulls/1")["head"]["sha"], second);
  bool synced = false;
  int pushes = 0;
  for (const auto& d : gh_->Deliveries()) {
    pushes += d.event == "push";
    if (d.event == "pull_request" && d.action == "synchronize") {
      json body = json::parse(d.body);
      synced = body["before"] == first && body["after"] == second &&
               body["sender"]["login"] == "kiln-factory[bot]";
    }
  }
  EXPECT_TRUE(synced);
  EXPECT_EQ(pushes, 2);

  Sh(git + "push -q origin feature:refs/heads/kiln/implement-1");
  Resp branch = Https(*gh_, "GET", "/repos/acme/demo/branches/kiln/implement-1", auth);
  ASSERT_EQ(branch.status, 200) << branch.body;
  EXPECT_EQ(branch.j()["commit"]["sha"], second);
  EXPECT_EQ(Https(*gh_, "DELETE", "/repos/acme/demo/git/refs/heads/kiln/implement-1", auth).status,
            204);
  EXPECT_EQ(gh_->BranchSha("acme/demo", "kiln/implement-1"), "");
  EXPECT_EQ(Https(*gh_, "DELETE", "/repos/acme/demo/git/refs/heads/feature", auth).status, 204);
  EXPECT_EQ(gh_->Get("/repos/acme/demo/pulls/1")["state"], "closed");
  EXPECT_EQ(Https(*gh_, "DELETE", "/repos/acme/demo/git/refs/heads/feature", auth).status, 422);
}

TEST_F(GitHubDoubleTest, WebhooksArriveSignedInOrder) {
  Receiver receiver;
  GitHubDoubleOptions opt;
  opt.webhook_url = receiver.url();
  StartDouble(opt);
  int64_t n = gh_->OpenIssue("acme/demo", "alice", "Crash", "body");
  gh_->AddLabel("acme/demo", n, "alice", "bug");
  std::string auth = "token " + Token();
  Resp c = Https(*gh_, "POST", "/repos/acme/demo/issues/1/comments", auth, R"({"body":"on it"})");
  ASSERT_EQ(c.status, 201);
  ASSERT_TRUE(gh_->WaitDeliveries());
  auto got = receiver.got();
  ASSERT_EQ(got.size(), 3u);
  std::set<std::string> ids;
  std::vector<std::string> events;
  for (const auto& g : got) {
    EXPECT_EQ(g.headers.at("X-Hub-Signature-256"),
              "sha256=" + HmacHex(EVP_sha256(), "s3cret", g.body));
    EXPECT_EQ(g.headers.at("X-Hub-Signature"), "sha1=" + HmacHex(EVP_sha1(), "s3cret", g.body));
    EXPECT_EQ(g.headers.at("User-Agent").rfind("GitHub-Hookshot/", 0), 0u);
    EXPECT_EQ(g.headers.at("X-GitHub-Hook-Installation-Target-Type"), "integration");
    ids.insert(g.headers.at("X-GitHub-Delivery"));
    json body = json::parse(g.body);
    events.push_back(g.headers.at("X-GitHub-Event") + "." + body["action"].get<std::string>());
    EXPECT_EQ(body["installation"]["id"], 77);
    EXPECT_EQ(body["repository"]["full_name"], "acme/demo");
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(events,
            (std::vector<std::string>{"issues.opened", "issues.labeled", "issue_comment.created"}));
  EXPECT_EQ(json::parse(got[2].body)["comment"]["user"]["login"], "kiln-factory[bot]");
  auto deliveries = gh_->Deliveries();
  ASSERT_EQ(deliveries.size(), 3u);
  EXPECT_EQ(deliveries[0].status, 202);
  EXPECT_EQ(deliveries[0].response, "queued");

  GitHubDouble::Delivery again = gh_->Redeliver(deliveries[1].id);
  EXPECT_EQ(again.status, 202);
  GitHubDouble::Delivery raw = gh_->SendRaw("issues", "raw-1", "{}", "sha256=00");
  EXPECT_EQ(raw.status, 202);
  got = receiver.got();
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[3].headers.at("X-GitHub-Delivery"), deliveries[1].id);
  EXPECT_EQ(got[3].body, got[1].body);
  EXPECT_EQ(got[4].headers.at("X-Hub-Signature-256"), "sha256=00");
}

TEST_F(GitHubDoubleTest, InjectedFaultsThenNormal) {
  StartDouble();
  std::string auth = "token " + Token();
  GitHubDouble::Fault fault;
  fault.method = "GET";
  fault.path_regex = "/repos/acme/demo";
  fault.status = 403;
  fault.body = {{"message", "You have exceeded a secondary rate limit."}};
  fault.headers = {{"retry-after", "1"}, {"x-ratelimit-remaining", "0"}};
  fault.times = 2;
  gh_->Inject(fault);
  EXPECT_EQ(Https(*gh_, "GET", "/repos/acme/demo/labels", auth).status, 200);  // no match
  for (int i = 0; i < 2; ++i) {
    Resp r = Https(*gh_, "GET", "/repos/acme/demo", auth);
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.headers["retry-after"], "1");
    EXPECT_EQ(r.headers["x-ratelimit-remaining"], "0");
    EXPECT_EQ(r.j()["message"], "You have exceeded a secondary rate limit.");
  }
  EXPECT_EQ(Https(*gh_, "GET", "/repos/acme/demo", auth).status, 200);
  gh_->Inject({"POST", "/repos/[^/]+/[^/]+/pulls", 422, {{"message", "Validation Failed"}}, {}, 1});
  MakeBranch(src_, "fix", "x");
  gh_->PushBranch("acme/demo", src_, "fix");
  std::string create = R"({"title":"Fix","head":"fix","base":"main"})";
  EXPECT_EQ(Https(*gh_, "POST", "/repos/acme/demo/pulls", auth, create).status, 422);
  EXPECT_EQ(gh_->Get("/repos/acme/demo/pulls").size(), 0u);
  EXPECT_EQ(Https(*gh_, "POST", "/repos/acme/demo/pulls", auth, create).status, 201);
}

TEST_F(GitHubDoubleTest, PermissionsAndTeams) {
  StartDouble();
  gh_->AddCollaborator("acme/demo", "mia", "maintain");
  gh_->AddCollaborator("acme/demo", "tom", "triage");
  gh_->AddTeamMember("acme", "maintainers", "mia");
  std::string auth = "token " + Token();
  auto perm = [&](const std::string& user) {
    return Https(*gh_, "GET", "/repos/acme/demo/collaborators/" + user + "/permission", auth).j();
  };
  EXPECT_EQ(perm("acme")["permission"], "admin");
  EXPECT_EQ(perm("mia")["permission"], "write");
  EXPECT_EQ(perm("mia")["role_name"], "maintain");
  EXPECT_EQ(perm("tom")["permission"], "read");
  EXPECT_EQ(perm("eve")["permission"], "none");
  EXPECT_EQ(Https(*gh_, "GET", "/orgs/acme/teams/maintainers/memberships/mia", auth).j()["state"],
            "active");
  EXPECT_EQ(Https(*gh_, "GET", "/orgs/acme/teams/maintainers/memberships/tom", auth).status, 404);
  Resp s = Https(*gh_, "POST", "/repos/acme/demo/statuses/" + gh_->BranchSha("acme/demo", "main"),
                 auth, R"({"state":"success","context":"kiln/verify"})");
  ASSERT_EQ(s.status, 201) << s.body;
  EXPECT_EQ(Https(*gh_, "POST", "/repos/acme/demo/statuses/abc", auth, R"({"state":"ok"})").status,
            422);
  json statuses = gh_->Get("/repos/acme/demo/commits/main/statuses");
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0]["creator"]["login"], "kiln-factory[bot]");
}

}  // namespace
}  // namespace kiln::testing
