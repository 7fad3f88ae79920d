// The HTTP API: routes through Api::Handle (no sockets), then the server
// over real loopback HTTP with a Beast client.
#include "controller/forge/api.h"

#include <gtest/gtest.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <nlohmann/json.hpp>

#include "controller/forge/testutil.h"
#include "controller/forge/users.h"

namespace kiln::forge {
namespace {

using nlohmann::json;
using testing::ForgeTest;
using testing::kRepo;

const std::string kBase = "/api/v1/repos/acme/widget";

class ApiTest : public ForgeTest {
 protected:
  void SetUp() override {
    ForgeTest::SetUp();
    if (HasFatalFailure()) return;
    auto users = Users::Open(store());
    ASSERT_TRUE(users.ok());
    alice_token_ = *(*users)->Add("alice", false, 1);
    bob_token_ = *(*users)->Add("bob", false, 1);
    auto api = Api::Open(store(), repos());
    ASSERT_TRUE(api.ok()) << api.error().message();
    api_ = std::move(*api);
  }

  ApiResponse Call(const std::string& method, const std::string& target,
                   const std::string& body = "", const std::string& token = "") {
    return api_->Handle(
        {method, target, "Bearer " + (token.empty() ? alice_token_ : token), body, {}});
  }
  // The JSON body of a call that must answer status.
  json CallJson(int status, const std::string& method, const std::string& target,
                const json& body = nullptr, const std::string& token = "") {
    ApiResponse r = Call(method, target, body.is_null() ? "" : body.dump(), token);
    EXPECT_EQ(r.status, status) << method << " " << target << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    json j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }

  std::string alice_token_, bob_token_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiTest, RequiresAKnownToken) {
  ApiResponse none = api_->Handle({"GET", "/api/v1/repos", "", "", {}});
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body.find("authentication required"), std::string::npos);
  ApiResponse bad = api_->Handle({"GET", "/api/v1/repos", "Bearer kiln_0000", "", {}});
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(json::parse(bad.body)["message"], "bad credentials: the token is not known");
  ApiResponse basic = api_->Handle({"GET", "/api/v1/repos", "Basic " + alice_token_, "", {}});
  EXPECT_EQ(basic.status, 401);
  // Even a route that does not exist says 401 first.
  EXPECT_EQ(api_->Handle({"GET", "/api/v1/nowhere", "", "", {}}).status, 401);
  json me = CallJson(200, "GET", "/api/v1/user", nullptr, bob_token_);
  EXPECT_EQ(me["login"], "bob");
}

TEST_F(ApiTest, Repositories) {
  json list = CallJson(200, "GET", "/api/v1/repos");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["full_name"], kRepo);
  EXPECT_EQ(list[0]["default_branch"], "main");
  EXPECT_EQ(list[0]["clone_url"], bare_);
  json one = CallJson(200, "GET", kBase);
  EXPECT_EQ(one["owner"]["login"], "acme");
  EXPECT_EQ(one["maintainers"], json::array({"alice"}));
  json missing = CallJson(404, "GET", "/api/v1/repos/acme/nothing");
  EXPECT_EQ(missing["message"], "repository 'acme/nothing' not found");
}

TEST_F(ApiTest, IssuesCommentsAndLabels) {
  json created = CallJson(201, "POST", kBase + "/issues",
                          {{"title", "Crash"}, {"body", "on start"}}, bob_token_);
  EXPECT_EQ(created["number"], 1);
  EXPECT_EQ(created["user"]["login"], "bob");
  EXPECT_EQ(created["labels"], json::array());
  EXPECT_EQ(created["state"], "open");
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->author, "bob");  // the token's user acted
  // Labels are the maintainers' (alice's token is a maintainer's).
  CallJson(403, "POST", kBase + "/issues/1/labels", {{"labels", {"bug"}}}, bob_token_);
  CallJson(200, "POST", kBase + "/issues/1/labels", {{"labels", {"bug"}}});

  json got = CallJson(200, "GET", kBase + "/issues/1");
  EXPECT_EQ(got["title"], "Crash");
  json list = CallJson(200, "GET", kBase + "/issues?state=all&labels=bug");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_TRUE(CallJson(200, "GET", kBase + "/issues?labels=triaged").empty());

  json labels =
      CallJson(200, "POST", kBase + "/issues/1/labels", {{"labels", {"triaged", "area:core"}}});
  EXPECT_EQ(labels,
            json::array({{{"name", "area:core"}}, {{"name", "bug"}}, {{"name", "triaged"}}}));
  json refused = CallJson(422, "POST", kBase + "/issues/1/labels", {{"labels", {"wontfix"}}});
  EXPECT_NE(refused["message"].get<std::string>().find("'wontfix'"), std::string::npos);
  json after = CallJson(200, "DELETE", kBase + "/issues/1/labels/area%3Acore");
  EXPECT_EQ(after, json::array({{{"name", "bug"}}, {{"name", "triaged"}}}));
  EXPECT_EQ(CallJson(200, "DELETE", kBase + "/issues/1/labels"), json::array());

  json comment = CallJson(201, "POST", kBase + "/issues/1/comments", {{"body", "on it"}});
  EXPECT_EQ(comment["user"]["login"], "alice");
  const int64_t id = comment["id"];
  CallJson(200, "PATCH", kBase + "/issues/comments/" + std::to_string(id), {{"body", "done"}});
  json comments = CallJson(200, "GET", kBase + "/issues/1/comments");
  ASSERT_EQ(comments.size(), 1u);
  EXPECT_EQ(comments[0]["body"], "done");
  CallJson(403, "PATCH", kBase + "/issues/comments/" + std::to_string(id), {{"body", "mine now"}},
           bob_token_);

  json closed = CallJson(200, "PATCH", kBase + "/issues/1", {{"state", "closed"}});
  EXPECT_EQ(closed["state"], "closed");
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->state, "closed");
}

// Another user's issue through the API: a PATCH that retitles and closes it
// is refused whole (403), nothing of it applied; the author may.
TEST_F(ApiTest, OnlyTheAuthorOrAMaintainerChangesAnIssue) {
  auto users = Users::Open(store());
  ASSERT_TRUE(users.ok());
  std::string mallory = *(*users)->Add("mallory", false, 1);
  CallJson(201, "POST", kBase + "/issues", {{"title", "Crash"}, {"body", "on start"}}, bob_token_);
  CallJson(200, "POST", kBase + "/issues/1/labels", {{"labels", {"bug"}}});
  json refused = CallJson(403, "PATCH", kBase + "/issues/1",
                          {{"title", "Works as intended"}, {"state", "closed"}}, mallory);
  EXPECT_NE(refused["message"].get<std::string>().find("neither its author nor a maintainer"),
            std::string::npos)
      << refused.dump();
  CallJson(403, "DELETE", kBase + "/issues/1/labels", nullptr, mallory);
  json still = CallJson(200, "GET", kBase + "/issues/1");
  EXPECT_EQ(still["title"], "Crash");
  EXPECT_EQ(still["state"], "open");
  EXPECT_EQ(still["labels"], json::array({{{"name", "bug"}}}));
  json own =
      CallJson(200, "PATCH", kBase + "/issues/1", {{"body", "on start, every time"}}, bob_token_);
  EXPECT_EQ(own["body"], "on start, every time");
}

TEST_F(ApiTest, ThePipelinesBotIsNoApiCaller) {
  auto api = Api::Open(store(), repos(), /*bot=*/"bob");
  ASSERT_TRUE(api.ok());
  ApiResponse r = (*api)->Handle({"GET", kBase, "Bearer " + bob_token_, "", {}});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("'bob' is the pipeline's bot"), std::string::npos) << r.body;
  EXPECT_EQ((*api)->Handle({"GET", kBase, "Bearer " + alice_token_, "", {}}).status, 200);
}

TEST_F(ApiTest, BadInput) {
  ApiResponse malformed = Call("POST", kBase + "/issues", "{\"title\": ");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_NE(json::parse(malformed.body)["message"].get<std::string>().find("malformed JSON body"),
            std::string::npos);
  EXPECT_EQ(Call("POST", kBase + "/issues", "[1, 2]").status, 400);
  json missing = CallJson(422, "POST", kBase + "/issues", {{"body", "no title"}});
  EXPECT_EQ(missing["message"], "field 'title' is missing");
  json type = CallJson(422, "POST", kBase + "/issues", {{"title", 7}});
  EXPECT_EQ(type["message"], "field 'title' must be a string");
  json empty = CallJson(422, "POST", kBase + "/issues", {{"title", ""}});
  EXPECT_EQ(empty["message"], "the title is empty");
  json unknown = CallJson(404, "GET", kBase + "/issues/9");
  EXPECT_EQ(unknown["message"], "issue #9 not found in 'acme/widget'");
  CallJson(404, "GET", kBase + "/issues/abc");
  CallJson(404, "GET", kBase + "/nothing/here");
  CallJson(404, "GET", "/api/v1/nothing");
  ApiResponse method = Call("DELETE", kBase + "/issues");
  EXPECT_EQ(method.status, 405);
  ASSERT_FALSE(method.headers.empty());
  EXPECT_EQ(method.headers[0], (std::pair<std::string, std::string>("Allow", "GET, POST")));
  EXPECT_EQ(Call("GET", "/metrics").status, 404);
  EXPECT_EQ(Call("GET", kBase + "/issues/%zz").status, 400);
  EXPECT_TRUE(alice_->ListIssues(kRepo, IssueFilter{})->empty());  // nothing was created
}

TEST_F(ApiTest, PullsReviewsStatusesAndMerge) {
  const std::string main = BareSha("main");
  const std::string head =
      Commit("feature", "main", {{"src/main.c", "int main(void) {\n  return 1;\n}\n"}}, "one");
  ASSERT_TRUE(Push("feature", head).ok());
  json pull =
      CallJson(201, "POST", kBase + "/pulls",
               {{"title", "Return 1"}, {"head", "feature"}, {"body", "Fixes #9"}}, bob_token_);
  EXPECT_EQ(pull["number"], 1);
  EXPECT_EQ(pull["head"]["ref"], "feature");
  EXPECT_EQ(pull["head"]["sha"], head);
  EXPECT_EQ(pull["base"]["ref"], "main");
  EXPECT_EQ(pull["base"]["sha"], main);
  EXPECT_EQ(pull["merged"], false);
  CallJson(422, "POST", kBase + "/pulls", {{"title", "x"}, {"head", "nope"}});
  CallJson(422, "POST", kBase + "/pulls", {{"title", "x"}});  // no head

  json pulls = CallJson(200, "GET", kBase + "/pulls");
  ASSERT_EQ(pulls.size(), 1u);
  json issue_side = CallJson(200, "GET", kBase + "/issues/1");
  EXPECT_TRUE(issue_side.contains("pull_request"));

  ApiResponse diff = Call("GET", kBase + "/pulls/1/diff");
  EXPECT_EQ(diff.status, 200);
  EXPECT_EQ(diff.content_type, "text/x-diff; charset=utf-8");
  EXPECT_NE(diff.body.find("+  return 1;"), std::string::npos);
  EXPECT_NE(diff.body.find("diff --git a/src/main.c b/src/main.c"), std::string::npos);

  json review = CallJson(201, "POST", kBase + "/pulls/1/reviews",
                         {{"event", "REQUEST_CHANGES"},
                          {"body", "why?"},
                          {"comments",
                           {{{"path", "src/main.c"},
                             {"line", 2},
                             {"side", "RIGHT"},
                             {"severity", "minor"},
                             {"body", "explain"}}}}});
  EXPECT_EQ(review["state"], "CHANGES_REQUESTED");
  EXPECT_EQ(review["commit_id"], head);
  EXPECT_EQ(review["comments"][0]["line"], 2);
  EXPECT_TRUE(review["comments"][0]["start_line"].is_null());
  EXPECT_TRUE(review["comments"][0]["start_side"].is_null());
  CallJson(422, "POST", kBase + "/pulls/1/reviews", {{"event", "LGTM"}});
  CallJson(422, "POST", kBase + "/pulls/1/reviews",
           {{"event", "COMMENT"}, {"comments", {{{"path", "x"}, {"body", "no line"}}}}});

  // A range of lines: start_side defaults to side; the range reads back.
  auto ranged = [](json start_line, int line) {
    json c = {{"path", "src/main.c"}, {"line", line}, {"body", "these"}};
    c["start_line"] = std::move(start_line);
    return json{{"event", "COMMENT"}, {"comments", {c}}};
  };
  json range = CallJson(201, "POST", kBase + "/pulls/1/reviews", ranged(1, 3));
  EXPECT_EQ(range["comments"][0]["start_line"], 1);
  EXPECT_EQ(range["comments"][0]["start_side"], "RIGHT");
  EXPECT_EQ(range["comments"][0]["line"], 3);
  json listed = CallJson(200, "GET", kBase + "/pulls/1/reviews");
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[1]["comments"][0]["start_line"], 1);
  EXPECT_EQ(listed[1]["comments"][0]["start_side"], "RIGHT");
  // null is a single line, as on GitHub.
  json single = CallJson(201, "POST", kBase + "/pulls/1/reviews", ranged(nullptr, 3));
  EXPECT_TRUE(single["comments"][0]["start_line"].is_null());
  // Bad ranges: the field and the reason, 422; nothing is posted.
  auto refused = [&](const json& body) {
    json j = CallJson(422, "POST", kBase + "/pulls/1/reviews", body);
    return j.value("message", "");
  };
  EXPECT_EQ(refused(ranged("1", 3)), "comments[0]: field 'start_line' must be an integer");
  EXPECT_EQ(refused(ranged(1.5, 3)), "comments[0]: field 'start_line' must be an integer");
  EXPECT_EQ(refused(ranged(0, 3)), "comments[0]: field 'start_line' must be 1 or more, not 0");
  EXPECT_EQ(refused(ranged(3, 3)),
            "comments[0]: src/main.c:3-3 (RIGHT): start_line 3 must come before line 3 on the "
            "same side (RIGHT)");
  json side = ranged(1, 3);
  side["comments"][0]["start_side"] = "up";
  EXPECT_EQ(refused(side),
            "comments[0]: src/main.c:1 (up) to 3 (RIGHT): start_side 'up' is not one of RIGHT, "
            "LEFT");
  json no_line = ranged(nullptr, 3);
  no_line["comments"][0]["start_side"] = "LEFT";
  EXPECT_EQ(refused(no_line),
            "comments[0]: src/main.c:3 (RIGHT): start_side 'LEFT' is set without a start_line");
  EXPECT_NE(refused(ranged(1, 9)).find("the end line 9 (RIGHT) is not in the diff"),
            std::string::npos);
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls/1/reviews").size(), 3u);

  json approved = CallJson(201, "POST", kBase + "/pulls/1/reviews", {{"verdict", "approve"}});
  EXPECT_EQ(approved["state"], "APPROVED");
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls/1/reviews").size(), 4u);

  json status = CallJson(201, "POST", kBase + "/statuses/" + head,
                         {{"state", "success"}, {"context", "kiln/verify"}, {"description", "ok"}});
  EXPECT_EQ(status["state"], "success");
  json statuses = CallJson(200, "GET", kBase + "/commits/" + head + "/statuses");
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0]["context"], "kiln/verify");
  CallJson(422, "POST", kBase + "/statuses/" + head, {{"state", "great"}});

  // bob opened it but is no maintainer; alice merges.
  json denied = CallJson(403, "POST", kBase + "/pulls/1/merge", nullptr, bob_token_);
  EXPECT_NE(denied["message"].get<std::string>().find("not a maintainer"), std::string::npos);
  EXPECT_EQ(Call("GET", kBase + "/pulls/1/merge").status, 404);
  json merged = CallJson(200, "PUT", kBase + "/pulls/1/merge");
  EXPECT_EQ(merged["merged"], true);
  EXPECT_EQ(merged["sha"], head);
  EXPECT_EQ(BareSha("main"), head);
  EXPECT_EQ(Call("GET", kBase + "/pulls/1/merge").status, 204);
  json after = CallJson(200, "GET", kBase + "/pulls/1");
  EXPECT_EQ(after["state"], "merged");
  EXPECT_EQ(after["merge_commit_sha"], head);
  CallJson(422, "POST", kBase + "/pulls/1/merge");  // merged already
  CallJson(404, "GET", kBase + "/pulls/2");
}

// --- over loopback ---------------------------------------------------------------

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class ApiServerTest : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    if (HasFatalFailure()) return;
    auto server = ApiServer::Start("127.0.0.1:0", store(), repos());
    ASSERT_TRUE(server.ok()) << server.error().message();
    server_ = std::move(*server);
    ASSERT_NE(server_->port(), 0);
  }

  tcp::socket Connect() {
    tcp::socket s(io_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    return s;
  }

  http::response<http::string_body> Send(tcp::socket& s, http::verb verb, const std::string& target,
                                         const std::string& body, const std::string& token,
                                         bool keep_alive = false) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(keep_alive);
    req.body() = body;
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    return res;
  }

  asio::io_context io_;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(ApiServerTest, ServesOverHttpWithKeepAlive) {
  tcp::socket s = Connect();
  auto created = Send(s, http::verb::post, kBase + "/issues", R"({"title": "over http"})",
                      alice_token_, /*keep_alive=*/true);
  EXPECT_EQ(created.result_int(), 201u);
  EXPECT_EQ(created[http::field::content_type], "application/json");
  EXPECT_EQ(created[http::field::location], kBase + "/issues/1");
  EXPECT_EQ(json::parse(created.body())["title"], "over http");
  // The same connection serves the next request.
  auto got = Send(s, http::verb::get, kBase + "/issues/1", "", alice_token_);
  EXPECT_EQ(got.result_int(), 200u);
  EXPECT_EQ(json::parse(got.body())["user"]["login"], "alice");
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->title, "over http");
}

TEST_F(ApiServerTest, ErrorsOverHttp) {
  {
    tcp::socket s = Connect();
    auto r = Send(s, http::verb::get, "/api/v1/repos", "", "");
    EXPECT_EQ(r.result_int(), 401u);
    EXPECT_NE(r[http::field::www_authenticate].find("Bearer"), std::string::npos);
  }
  {
    tcp::socket s = Connect();
    auto r = Send(s, http::verb::get, "/api/v1/repos", "", "kiln_wrong");
    EXPECT_EQ(r.result_int(), 401u);
  }
  {
    tcp::socket s = Connect();
    auto r = Send(s, http::verb::post, kBase + "/issues", "{not json", alice_token_);
    EXPECT_EQ(r.result_int(), 400u);
    EXPECT_NE(json::parse(r.body())["message"].get<std::string>().find("malformed JSON"),
              std::string::npos);
  }
  {
    // A body over 1 MiB is refused on its Content-Length, before it is sent.
    tcp::socket s = Connect();
    asio::write(
        s, asio::buffer("POST " + kBase + "/issues HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                        alice_token_ + "\r\nContent-Length: 2097152\r\n\r\n"));
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    beast::error_code ec;
    http::read(s, buf, res, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(res.result_int(), 413u);
    EXPECT_NE(res.body().find("larger than 1 MiB"), std::string::npos);
  }
  EXPECT_TRUE(alice_->ListIssues(kRepo, IssueFilter{})->empty());
}

TEST_F(ApiServerTest, AStalledClientDoesNotBlockOthers) {
  tcp::socket stalled = Connect();
  asio::write(stalled, asio::buffer(std::string("GET /api/v1/repos HTTP/1.1\r\nHost: x\r\n")));
  // Headers never finished; another client is still served at once.
  tcp::socket s = Connect();
  auto r = Send(s, http::verb::get, "/api/v1/user", "", bob_token_);
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(json::parse(r.body())["login"], "bob");
}

TEST(ApiServerStartTest, RefusesABadListenAddress) {
  ::kiln::testing::TempDir dir;
  EXPECT_FALSE(ApiServer::Start("nonsense", dir / "kiln.db", dir / "repos").ok());
  EXPECT_FALSE(ApiServer::Start("127.0.0.1:notaport", dir / "kiln.db", dir / "repos").ok());
  EXPECT_FALSE(ApiServer::Start("999.0.0.1:0", dir / "kiln.db", dir / "repos").ok());
}

}  // namespace
}  // namespace kiln::forge
