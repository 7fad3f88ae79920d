// The HTTP API: routes through Api::Handle (no sockets), then the server
// over real loopback HTTP with a Beast client.
#include "controller/forge/api.h"

#include <gtest/gtest.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <nlohmann/json.hpp>

#include "base/digest.h"
#include "base/strings.h"
#include "controller/forge/testutil.h"
#include "controller/forge/users.h"
#include "controller/forge/wire.h"

namespace kiln::forge {
namespace {

using nlohmann::json;
using testing::ForgeTest;
using testing::kRepo;

const std::string kBase = "/api/v1/repos/acme/widget";
// The web view's base URL the objects' html_url point under.
constexpr char kWeb[] = "https://kiln.example";
const std::string kApi = std::string(kWeb) + "/api/v1";

class ApiTest : public ForgeTest {
 protected:
  void SetUp() override {
    ForgeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (HasFatalFailure()) return;
    auto users = Users::Open(store());
    ASSERT_TRUE(users.ok());
    alice_token_ = *(*users)->Add("alice", false, 1);
    bob_token_ = *(*users)->Add("bob", false, 1);
    auto api = Api::Open(store(), repos(), "", kWeb);
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

// What a 4xx says is wrong: a validation error's first error (its message,
// or the string a review route gives), else the message.
std::string Why(const json& error) {
  if (error.contains("errors") && !error["errors"].empty()) {
    const json& e = error["errors"][0];
    return e.is_string() ? e.get<std::string>() : e.value("message", "");
  }
  return error.value("message", "");
}

// The names of a list of GitHub label objects.
json Names(const json& labels) {
  json names = json::array();
  for (const auto& l : labels) names.push_back(l.value("name", ""));
  return names;
}

TEST_P(ApiTest, RequiresAKnownToken) {
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

TEST_P(ApiTest, Repositories) {
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

TEST_P(ApiTest, IssuesCommentsAndLabels) {
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
  EXPECT_EQ(Names(labels), json::array({"area:core", "bug", "triaged"}));
  json refused = CallJson(422, "POST", kBase + "/issues/1/labels", {{"labels", {"wontfix"}}});
  EXPECT_NE(refused["message"].get<std::string>().find("'wontfix'"), std::string::npos);
  json after = CallJson(200, "DELETE", kBase + "/issues/1/labels/area%3Acore");
  EXPECT_EQ(Names(after), json::array({"bug", "triaged"}));
  // Every label off: 204 and no body, as GitHub.
  ApiResponse none = Call("DELETE", kBase + "/issues/1/labels");
  EXPECT_EQ(none.status, 204) << none.body;
  EXPECT_EQ(none.body, "");
  EXPECT_EQ(CallJson(200, "GET", kBase + "/issues/1/labels"), json::array());

  json comment = CallJson(201, "POST", kBase + "/issues/1/comments", {{"body", "on it"}});
  EXPECT_EQ(comment["user"]["login"], "alice");
  const int64_t id = comment["id"];
  json edited =
      CallJson(200, "PATCH", kBase + "/issues/comments/" + std::to_string(id), {{"body", "done"}});
  EXPECT_EQ(edited["id"], id);
  EXPECT_EQ(edited["body"], "done");
  EXPECT_EQ(edited["issue_url"], kApi + "/repos/acme/widget/issues/1");
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
TEST_P(ApiTest, OnlyTheAuthorOrAMaintainerChangesAnIssue) {
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
  EXPECT_EQ(Names(still["labels"]), json::array({"bug"}));
  json own =
      CallJson(200, "PATCH", kBase + "/issues/1", {{"body", "on start, every time"}}, bob_token_);
  EXPECT_EQ(own["body"], "on start, every time");
}

TEST_P(ApiTest, ThePipelinesBotIsNoApiCaller) {
  auto api = Api::Open(store(), repos(), /*bot=*/"bob", kWeb);
  ASSERT_TRUE(api.ok());
  ApiResponse r = (*api)->Handle({"GET", kBase, "Bearer " + bob_token_, "", {}});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("'bob' is the pipeline's bot"), std::string::npos) << r.body;
  EXPECT_EQ((*api)->Handle({"GET", kBase, "Bearer " + alice_token_, "", {}}).status, 200);
}

TEST_P(ApiTest, BadInput) {
  ApiResponse malformed = Call("POST", kBase + "/issues", "{\"title\": ");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_NE(json::parse(malformed.body)["message"].get<std::string>().find("malformed JSON body"),
            std::string::npos);
  EXPECT_EQ(Call("POST", kBase + "/issues", "[1, 2]").status, 400);
  json missing = CallJson(422, "POST", kBase + "/issues", {{"body", "no title"}});
  EXPECT_EQ(missing["message"], "Validation Failed");
  EXPECT_EQ(missing["errors"], json::array({{{"resource", "Issue"},
                                             {"field", "title"},
                                             {"code", "missing_field"},
                                             {"message", "field 'title' is missing"}}}));
  EXPECT_EQ(missing["documentation_url"], "docs/api.md#errors");
  json type = CallJson(422, "POST", kBase + "/issues", {{"title", 7}});
  EXPECT_EQ(Why(type), "field 'title' must be a string");
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

TEST_P(ApiTest, PullsReviewsStatusesAndMerge) {
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

  json review = CallJson(200, "POST", kBase + "/pulls/1/reviews",
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
  json range = CallJson(200, "POST", kBase + "/pulls/1/reviews", ranged(1, 3));
  EXPECT_EQ(range["comments"][0]["start_line"], 1);
  EXPECT_EQ(range["comments"][0]["start_side"], "RIGHT");
  EXPECT_EQ(range["comments"][0]["line"], 3);
  json listed = CallJson(200, "GET", kBase + "/pulls/1/reviews");
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[1]["comments"][0]["start_line"], 1);
  EXPECT_EQ(listed[1]["comments"][0]["start_side"], "RIGHT");
  // null is a single line, as on GitHub.
  json single = CallJson(200, "POST", kBase + "/pulls/1/reviews", ranged(nullptr, 3));
  EXPECT_TRUE(single["comments"][0]["start_line"].is_null());
  // Bad ranges: the field and the reason, 422; nothing is posted.
  auto refused = [&](const json& body) {
    json j = CallJson(422, "POST", kBase + "/pulls/1/reviews", body);
    return Why(j);
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

  json approved = CallJson(200, "POST", kBase + "/pulls/1/reviews", {{"verdict", "approve"}});
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
  EXPECT_EQ(after["state"], "closed");  // GitHub's states: merged is closed, and merged
  EXPECT_EQ(after["merged"], true);
  EXPECT_FALSE(after["merged_at"].is_null());
  EXPECT_EQ(after["merged_by"]["login"], "alice");
  EXPECT_EQ(after["merge_commit_sha"], head);
  CallJson(422, "POST", kBase + "/pulls/1/merge");  // merged already
  CallJson(404, "GET", kBase + "/pulls/2");
}

// GitHub's fields: ids and node_ids, html_url under the web view, url under
// the API, full users and labels, a pull request's counts, mergeability and
// head repository, GitHub's states.
TEST_P(ApiTest, GitHubsFields) {
  json me = CallJson(200, "GET", "/api/v1/user", nullptr, bob_token_);
  EXPECT_EQ(me["login"], "bob");
  EXPECT_EQ(me["id"], wire::StableId("user", "bob"));
  EXPECT_EQ(me["type"], "User");
  EXPECT_EQ(me["html_url"], std::string(kWeb) + "/bob");
  EXPECT_EQ(me["url"], kApi + "/users/bob");
  EXPECT_FALSE(me["created_at"].get<std::string>().empty());

  json repo = CallJson(200, "GET", kBase);
  EXPECT_EQ(repo["id"], wire::StableId("repo", kRepo));
  EXPECT_EQ(repo["node_id"], wire::NodeId("Repository", repo["id"]));
  EXPECT_EQ(repo["html_url"], std::string(kWeb) + "/acme/widget");
  EXPECT_EQ(repo["url"], kApi + "/repos/acme/widget");
  EXPECT_EQ(repo["owner"]["login"], "acme");
  EXPECT_EQ(repo["private"], false);
  EXPECT_EQ(repo["open_issues_count"], 0);

  json issue = CallJson(201, "POST", kBase + "/issues", {{"title", "Crash"}}, bob_token_);
  CallJson(200, "POST", kBase + "/issues/1/labels", {{"labels", {"bug", "area:core"}}});
  json comment = CallJson(201, "POST", kBase + "/issues/1/comments", {{"body", "seen"}});
  issue = CallJson(200, "GET", kBase + "/issues/1");
  EXPECT_EQ(issue["id"], wire::StableId("issue", "acme/widget#1"));
  EXPECT_EQ(issue["node_id"], wire::NodeId("Issue", issue["id"]));
  EXPECT_EQ(issue["html_url"], std::string(kWeb) + "/acme/widget/issues/1");
  EXPECT_EQ(issue["url"], kApi + "/repos/acme/widget/issues/1");
  EXPECT_EQ(issue["user"]["id"], wire::StableId("user", "bob"));
  EXPECT_EQ(issue["user"]["type"], "User");
  EXPECT_EQ(issue["author_association"], "NONE");
  EXPECT_EQ(issue["comments"], 1);
  EXPECT_TRUE(issue["closed_at"].is_null());
  EXPECT_TRUE(issue["assignees"].empty());
  ASSERT_EQ(issue["labels"].size(), 2u);
  EXPECT_EQ(issue["labels"][1]["name"], "bug");
  EXPECT_EQ(issue["labels"][1]["color"], "d73a4a");
  EXPECT_EQ(issue["labels"][1]["default"], true);
  EXPECT_EQ(issue["labels"][0]["color"].get<std::string>().size(), 6u);  // area:core's own
  EXPECT_EQ(issue["labels"][0]["id"], wire::StableId("label", "acme/widget:area:core"));
  EXPECT_EQ(comment["html_url"], std::string(kWeb) + "/acme/widget/issues/1#issuecomment-" +
                                     std::to_string(comment["id"].get<int64_t>()));
  EXPECT_EQ(comment["author_association"], "COLLABORATOR");  // alice maintains it
  EXPECT_EQ(CallJson(200, "GET", kBase)["open_issues_count"], 1);

  const std::string head =
      Commit("feature", "main", {{"src/main.c", "int main(void) {\n  return 1;\n}\n"}}, "one");
  ASSERT_TRUE(Push("feature", head).ok());
  json pull = CallJson(201, "POST", kBase + "/pulls", {{"title", "Return 1"}, {"head", "feature"}},
                       bob_token_);
  EXPECT_EQ(pull["id"], wire::StableId("pull", "acme/widget#2"));
  EXPECT_NE(pull["id"], wire::StableId("issue", "acme/widget#2"));
  EXPECT_EQ(pull["html_url"], std::string(kWeb) + "/acme/widget/pull/2");
  EXPECT_EQ(pull["issue_url"], kApi + "/repos/acme/widget/issues/2");
  EXPECT_EQ(pull["state"], "open");
  EXPECT_EQ(pull["merged"], false);
  EXPECT_TRUE(pull["merged_at"].is_null());
  EXPECT_TRUE(pull["merged_by"].is_null());
  EXPECT_EQ(pull["mergeable"], true);
  EXPECT_EQ(pull["mergeable_state"], "clean");
  EXPECT_EQ(pull["commits"], 1);
  EXPECT_EQ(pull["additions"], 1);
  EXPECT_EQ(pull["deletions"], 1);
  EXPECT_EQ(pull["changed_files"], 1);
  EXPECT_EQ(pull["head"]["label"], "acme:feature");
  EXPECT_EQ(pull["head"]["repo"]["full_name"], kRepo);
  EXPECT_EQ(pull["base"]["repo"]["html_url"], std::string(kWeb) + "/acme/widget");
  EXPECT_EQ(pull["head"]["user"]["login"], "acme");
  EXPECT_EQ(pull["_links"]["html"]["href"], pull["html_url"]);
  json side = CallJson(200, "GET", kBase + "/issues/2");
  EXPECT_EQ(side["html_url"], std::string(kWeb) + "/acme/widget/pull/2");
  EXPECT_EQ(side["pull_request"]["url"], kApi + "/repos/acme/widget/pulls/2");
  json listed = CallJson(200, "GET", kBase + "/pulls");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_FALSE(listed[0].contains("mergeable"));  // a listing is GitHub's pull-request-simple

  json review =
      CallJson(200, "POST", kBase + "/pulls/2/reviews", {{"event", "APPROVE"}, {"body", "fine"}});
  const std::string rid = std::to_string(review["id"].get<int64_t>());
  EXPECT_EQ(review["html_url"], std::string(kWeb) + "/acme/widget/pull/2#pullrequestreview-" + rid);
  EXPECT_EQ(review["pull_request_url"], kApi + "/repos/acme/widget/pulls/2");
  EXPECT_EQ(review["user"]["login"], "alice");
  EXPECT_FALSE(review["submitted_at"].get<std::string>().empty());

  json status =
      CallJson(201, "POST", kBase + "/statuses/" + head, {{"state", "pending"}, {"context", "ci"}});
  EXPECT_EQ(status["creator"]["login"], "alice");
  EXPECT_TRUE(status["target_url"].is_null());
  EXPECT_TRUE(status["description"].is_null());
  EXPECT_GT(status["id"].get<int64_t>(), 0);

  // The base moves under it, touching the same line: no longer mergeable.
  ASSERT_TRUE(Push("main", Commit("main", "main",
                                  {{"src/main.c", "int main(void) {\n  return 2;\n}\n"}}, "two"))
                  .ok());
  json dirty = CallJson(200, "GET", kBase + "/pulls/2");
  EXPECT_EQ(dirty["mergeable"], false);
  EXPECT_EQ(dirty["mergeable_state"], "dirty");
  // Closed: no mergeability, and GitHub's state.
  json closed = CallJson(200, "PATCH", kBase + "/pulls/2", {{"state", "closed"}}, bob_token_);
  EXPECT_EQ(closed["state"], "closed");
  EXPECT_EQ(closed["merged"], false);
  EXPECT_TRUE(closed["mergeable"].is_null());
  EXPECT_FALSE(closed["closed_at"].is_null());
}

// No member is ignored: one a route does not take, or one of GitHub's the
// local forge has nothing for, is a 422 naming it, and nothing is written.
TEST_P(ApiTest, UnknownOrUnsupportedMembersAreRefused) {
  const size_t events = EventCount();
  auto refused = [&](const std::string& method, const std::string& target, const json& body) {
    json j = CallJson(422, method, target, body);
    EXPECT_EQ(j["message"], "Validation Failed") << j.dump();
    EXPECT_TRUE(j.contains("documentation_url"));
    return j["errors"].at(0);
  };
  json e = refused("POST", kBase + "/issues", {{"title", "x"}, {"colour", "red"}});
  EXPECT_EQ(e["field"], "colour");
  EXPECT_EQ(e["resource"], "Issue");
  EXPECT_EQ(e["code"], "invalid");
  EXPECT_EQ(e["message"],
            "field 'colour' is not one POST takes here (it takes: title, body, labels, assignees, "
            "assignee, milestone)");
  e = refused("POST", kBase + "/issues", {{"title", "x"}, {"assignees", {"bob"}}});
  EXPECT_EQ(e["field"], "assignees");
  EXPECT_EQ(e["message"],
            "field 'assignees' must be empty or null: the local forge has no assignees");
  e = refused("POST", kBase + "/issues", {{"title", "x"}, {"type", "Bug"}});
  EXPECT_EQ(e["message"], "field 'type' is not supported: the local forge has no issue types");
  e = refused("GET", kBase + "/issues?mentioned=bob", nullptr);
  EXPECT_EQ(e["field"], "mentioned");
  EXPECT_EQ(e["message"],
            "parameter 'mentioned' is not supported: the local forge keeps no mentions");
  e = refused("GET", kBase + "/issues?colour=red", nullptr);
  EXPECT_EQ(e["field"], "colour");
  e = refused("GET", kBase + "/issues?state=shut", nullptr);
  EXPECT_EQ(e["message"], "parameter 'state' 'shut' is not one of open, closed, merged, all");
  e = refused("GET", kBase + "/issues?assignee=bob", nullptr);
  EXPECT_EQ(e["field"], "assignee");
  e = refused("GET", kBase + "/issues?state=open&state=closed", nullptr);
  EXPECT_EQ(e["message"],
            "parameter 'state' is given more than once; give it once (a list: comma-separated)");
  e = refused("GET", kBase + "/issues?since=yesterday", nullptr);
  EXPECT_EQ(e["field"], "since");
  e = refused("GET", kBase + "?page=2", nullptr);  // a route that lists nothing
  EXPECT_EQ(e["field"], "page");
  e = refused("PUT", kBase + "/pulls/1/merge", {{"merge_method", "octopus"}});
  EXPECT_EQ(e["field"], "merge_method");
  EXPECT_EQ(e["message"], "field 'merge_method' 'octopus' is not one of merge, squash, rebase");
  e = refused("PUT", kBase + "/pulls/1/merge", {{"merge_method", "rebase"}, {"commit_title", "x"}});
  EXPECT_EQ(e["field"], "commit_title");
  e = refused("PUT", kBase + "/pulls/1/merge", {{"delete_branch", true}});
  EXPECT_EQ(e["field"], "delete_branch");
  e = refused("POST", kBase + "/pulls", {{"title", "x"}, {"head", "main"}, {"draft", true}});
  EXPECT_EQ(e["field"], "draft");
  e = refused("PATCH", kBase + "/pulls/1", {{"base", "other"}});
  EXPECT_EQ(e["field"], "base");
  e = refused("POST", kBase + "/statuses/" + BareSha("main"), {{"state", "success"}, {"url", "x"}});
  EXPECT_EQ(e["field"], "url");
  EXPECT_EQ(e["resource"], "Status");
  CallJson(201, "POST", kBase + "/issues", {{"title", "Crash"}});
  e = refused("PATCH", kBase + "/issues/1", {{"state", "shut"}});
  EXPECT_EQ(e["field"], "state");
  e = refused("PATCH", kBase + "/issues/1", {{"title", "Crash!"}, {"milestone", 3}});
  EXPECT_EQ(e["field"], "milestone");
  e = refused("PATCH", kBase + "/issues/1", {{"state_reason", "not_planned"}});
  EXPECT_EQ(e["field"], "state_reason");
  e = refused("GET", kBase + "/issues/1/labels?per_page=0", nullptr);
  EXPECT_EQ(e["message"], "parameter 'per_page' must be a number from 1 to 100");
  refused("GET", kBase + "/issues/1/labels?per_page=101", nullptr);
  e = refused("GET", kBase + "/issues/1/labels?page=x", nullptr);
  EXPECT_EQ(e["field"], "page");
  // A review route's errors are strings (GitHub's validation-error-simple),
  // and an inline comment's members are checked too.
  const std::string head =
      Commit("feature", "main", {{"src/main.c", "int main(void) {\n  return 1;\n}\n"}}, "one");
  ASSERT_TRUE(Push("feature", head).ok());
  CallJson(201, "POST", kBase + "/pulls", {{"title", "Return 1"}, {"head", "feature"}}, bob_token_);
  json review = CallJson(
      422, "POST", kBase + "/pulls/2/reviews",
      {{"event", "COMMENT"},
       {"comments", {{{"path", "src/main.c"}, {"line", 2}, {"body", "x"}, {"colour", "red"}}}}});
  EXPECT_EQ(review["errors"], json::array({"field 'comments[0].colour' is not one POST takes here "
                                           "(it takes: path, position, line, side, start_line, "
                                           "start_side, body, severity)"}));
  review = CallJson(422, "POST", kBase + "/pulls/2/reviews",
                    {{"event", "COMMENT"}, {"verdict", "comment"}, {"body", "x"}});
  EXPECT_EQ(Why(review), "give one of 'event' and 'verdict', not both");
  // Honoured ones: empty assignees, a null milestone, assignee=none.
  CallJson(201, "POST", kBase + "/issues",
           {{"title", "y"}, {"assignees", json::array()}, {"milestone", nullptr}});
  EXPECT_EQ(CallJson(200, "GET", kBase + "/issues?assignee=none&milestone=none").size(), 3u);
  // What was refused wrote nothing.
  EXPECT_EQ(CallJson(200, "GET", kBase + "/issues/1")["title"], "Crash");
  // issue 1 opened, the push and pull 2 opened, issue 3 opened: nothing else.
  EXPECT_EQ(EventCount(), events + 4);
}

// An issue's PATCH honours labels (the whole set, as one write with the
// rest) and PUT .../labels sets them; a non-maintainer's is refused whole.
TEST_P(ApiTest, IssueUpdateSetsLabels) {
  CallJson(201, "POST", kBase + "/issues", {{"title", "Crash"}, {"labels", {"bug", "triaged"}}});
  const size_t before = EventCount();
  json patched = CallJson(200, "PATCH", kBase + "/issues/1",
                          {{"title", "Crash on start"}, {"labels", {"bug", "area:core"}}});
  EXPECT_EQ(patched["title"], "Crash on start");
  EXPECT_EQ(Names(patched["labels"]), json::array({"area:core", "bug"}));
  EXPECT_EQ(EventKinds(before), (std::vector<std::string>{"issue.edited #1", "issue.labeled #1",
                                                          "issue.unlabeled #1"}));
  // Refused whole: a label outside the set, or a non-maintainer's labels.
  json outside =
      CallJson(422, "PATCH", kBase + "/issues/1", {{"title", "Renamed"}, {"labels", {"wontfix"}}});
  EXPECT_NE(Why(outside).find("'wontfix'"), std::string::npos);
  CallJson(201, "POST", kBase + "/issues", {{"title", "Mine"}}, bob_token_);
  CallJson(403, "PATCH", kBase + "/issues/2", {{"title", "Mine too"}, {"labels", {"bug"}}},
           bob_token_);
  EXPECT_EQ(CallJson(200, "GET", kBase + "/issues/2")["title"], "Mine");
  EXPECT_EQ(CallJson(200, "GET", kBase + "/issues/1")["title"], "Crash on start");
  json set = CallJson(200, "PUT", kBase + "/issues/1/labels", {{"labels", {"needs-info"}}});
  EXPECT_EQ(Names(set), json::array({"needs-info"}));
  EXPECT_EQ(
      Names(CallJson(200, "PATCH", kBase + "/issues/1", {{"labels", json::array()}})["labels"]),
      json::array());
}

// Lists page as GitHub's do (page, per_page, a Link header) when asked, and
// sort and filter as GitHub's parameters say.
TEST_P(ApiTest, ListsPageSortAndFilter) {
  for (int i = 1; i <= 5; ++i) {
    CallJson(201, "POST", kBase + "/issues", {{"title", "issue " + std::to_string(i)}},
             i % 2 ? alice_token_ : bob_token_);
  }
  EXPECT_EQ(CallJson(200, "GET", kBase + "/issues").size(), 5u);  // no paging unless asked
  ApiResponse page = Call("GET", kBase + "/issues?per_page=2&page=2");
  ASSERT_EQ(page.status, 200) << page.body;
  json items = json::parse(page.body);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0]["number"], 3);
  std::string link;
  for (const auto& [k, v] : page.headers) {
    if (k == "Link") link = v;
  }
  EXPECT_EQ(link, "<" + kApi + "/repos/acme/widget/issues?per_page=2&page=3>; rel=\"next\", <" +
                      kApi + "/repos/acme/widget/issues?per_page=2&page=3>; rel=\"last\", <" +
                      kApi + "/repos/acme/widget/issues?per_page=2&page=1>; rel=\"first\", <" +
                      kApi + "/repos/acme/widget/issues?per_page=2&page=1>; rel=\"prev\"");
  EXPECT_EQ(CallJson(200, "GET", kBase + "/issues?per_page=2&page=9"), json::array());
  // The Link header's query is escaped (a value never breaks the header).
  ApiResponse since = Call("GET", kBase + "/issues?per_page=1&since=2000-01-01T00:00:00%2B01:00");
  std::string since_link;
  for (const auto& [k, v] : since.headers) {
    if (k == "Link") since_link = v;
  }
  EXPECT_NE(since_link.find("since=2000-01-01T00:00:00%2B01:00"), std::string::npos) << since_link;

  json desc = CallJson(200, "GET", kBase + "/issues?sort=created");
  EXPECT_EQ(desc[0]["number"], 5);  // GitHub's default direction: newest first
  json asc = CallJson(200, "GET", kBase + "/issues?sort=created&direction=asc");
  EXPECT_EQ(asc[0]["number"], 1);
  json bobs = CallJson(200, "GET", kBase + "/issues?creator=bob");
  ASSERT_EQ(bobs.size(), 2u);
  EXPECT_EQ(bobs[0]["number"], 2);
  EXPECT_EQ(CallJson(200, "GET", kBase + "/issues?since=2999-01-01T00:00:00Z").size(), 0u);
  EXPECT_EQ(CallJson(200, "GET", kBase + "/issues?since=2000-01-01T00:00:00%2B01:00").size(), 5u);

  const std::string head =
      Commit("feature", "main", {{"src/main.c", "int main(void) {\n  return 1;\n}\n"}}, "one");
  ASSERT_TRUE(Push("feature", head).ok());
  CallJson(201, "POST", kBase + "/pulls", {{"title", "Return 1"}, {"head", "feature"}});
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls?head=acme:feature").size(), 1u);
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls?head=feature&base=main").size(), 1u);
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls?head=someone:feature").size(), 0u);
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls?base=other").size(), 0u);
}

// A pull request's files and its review comments as GitHub's API has them:
// GET .../files, comments by position, GET .../pulls/N/comments and one
// comment, a head given as OWNER:BRANCH, the diff through Accept.
TEST_P(ApiTest, FilesAndReviewCommentsByPosition) {
  const std::string head =
      Commit("feature", "main",
             {{"src/main.c", "int main(void) {\n  return 1;\n}\n"}, {"NEW.md", "new\n"}}, "one");
  ASSERT_TRUE(Push("feature", head).ok());
  json wrong = CallJson(422, "POST", kBase + "/pulls",
                        {{"title", "x"}, {"head", "someone:feature"}}, bob_token_);
  EXPECT_EQ(wrong["errors"][0]["field"], "head");
  json pull = CallJson(201, "POST", kBase + "/pulls",
                       {{"title", "Return 1"}, {"head", "acme:feature"}}, bob_token_);
  EXPECT_EQ(pull["head"]["ref"], "feature");

  json files = CallJson(200, "GET", kBase + "/pulls/1/files");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0]["filename"], "NEW.md");
  EXPECT_EQ(files[0]["status"], "added");
  EXPECT_EQ(files[0]["additions"], 1);
  EXPECT_EQ(files[0]["sha"], testing::Git(work(), "rev-parse feature:NEW.md"));
  EXPECT_EQ(files[1]["filename"], "src/main.c");
  EXPECT_EQ(files[1]["status"], "modified");
  EXPECT_EQ(files[1]["changes"], 2);
  EXPECT_EQ(files[1]["blob_url"], std::string(kWeb) + "/acme/widget/blob/" + head + "/src/main.c");
  EXPECT_EQ(files[1]["patch"],
            "@@ -1,3 +1,3 @@\n int main(void) {\n-  return 0;\n+  return 1;\n }\n");
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls/1/files?per_page=1&page=2")[0]["filename"],
            "src/main.c");

  // Position 2 of src/main.c is "-  return 0;": line 2 on the LEFT; 3 is
  // the added line 2 on the RIGHT.
  json review = CallJson(200, "POST", kBase + "/pulls/1/reviews",
                         {{"event", "COMMENT"},
                          {"comments",
                           {{{"path", "src/main.c"}, {"position", 2}, {"body", "was 0"}},
                            {{"path", "src/main.c"}, {"position", 3}, {"body", "now 1"}}}}});
  ASSERT_EQ(review["comments"].size(), 2u);
  EXPECT_EQ(review["comments"][0]["line"], 2);
  EXPECT_EQ(review["comments"][0]["side"], "LEFT");
  EXPECT_EQ(review["comments"][1]["line"], 2);
  EXPECT_EQ(review["comments"][1]["side"], "RIGHT");
  auto refused = [&](const json& comment) {
    return Why(CallJson(422, "POST", kBase + "/pulls/1/reviews",
                        {{"event", "COMMENT"}, {"comments", {comment}}}));
  };
  EXPECT_NE(refused({{"path", "src/main.c"}, {"position", 9}, {"body", "x"}})
                .find("position 9 is not a line of the file's diff"),
            std::string::npos);
  EXPECT_NE(refused({{"path", "nope.c"}, {"position", 1}, {"body", "x"}})
                .find("the file is not in the diff"),
            std::string::npos);
  EXPECT_EQ(refused({{"path", "src/main.c"}, {"position", 1}, {"line", 1}, {"body", "x"}}),
            "field 'comments[0].line' cannot be given with a position: give a position, or a "
            "line and a side");
  EXPECT_EQ(refused({{"path", "src/main.c"}, {"position", 0}, {"body", "x"}}),
            "field 'comments[0].position' must be an integer from 1");

  json comments = CallJson(200, "GET", kBase + "/pulls/1/comments");
  ASSERT_EQ(comments.size(), 2u);
  const int64_t id = comments[1]["id"];
  EXPECT_EQ(id, wire::ReviewCommentId(review["id"], 1));
  EXPECT_EQ(comments[1]["position"], 3);
  EXPECT_EQ(comments[1]["original_position"], 3);
  EXPECT_EQ(comments[1]["pull_request_review_id"], review["id"]);
  EXPECT_EQ(comments[1]["diff_hunk"],
            "@@ -1,3 +1,3 @@\n int main(void) {\n-  return 0;\n+  return 1;");
  EXPECT_EQ(comments[1]["html_url"],
            std::string(kWeb) + "/acme/widget/pull/1#discussion_r" + std::to_string(id));
  EXPECT_EQ(comments[1]["commit_id"], head);
  EXPECT_EQ(comments[0]["side"], "LEFT");
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls/1/comments?direction=desc")[0]["id"], id);
  json one = CallJson(200, "GET", kBase + "/pulls/comments/" + std::to_string(id));
  EXPECT_EQ(one["body"], "now 1");
  CallJson(404, "GET", kBase + "/pulls/comments/" + std::to_string(id + 5));
  json of_review = CallJson(
      200, "GET",
      kBase + "/pulls/1/reviews/" + std::to_string(review["id"].get<int64_t>()) + "/comments");
  EXPECT_EQ(of_review.size(), 2u);

  // The head moves on: the comments are outdated (no position now).
  const std::string next = Commit("feature", "feature", {{"NEW.md", "newer\n"}}, "two");
  ASSERT_TRUE(Push("feature", next).ok());
  comments = CallJson(200, "GET", kBase + "/pulls/1/comments");
  EXPECT_FALSE(comments[1].contains("position"));
  EXPECT_EQ(comments[1]["original_position"], 3);
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls/1")["review_comments"], 2);

  // The diff through GitHub's media type.
  ApiResponse diff = api_->Handle({"GET",
                                   kBase + "/pulls/1",
                                   "Bearer " + alice_token_,
                                   "",
                                   {{"accept", "application/vnd.github.v3.diff"}}});
  EXPECT_EQ(diff.status, 200);
  EXPECT_EQ(diff.content_type, "text/x-diff; charset=utf-8");
  EXPECT_NE(diff.body.find("+newer"), std::string::npos);
  EXPECT_EQ(api_->Handle({"GET",
                          kBase + "/pulls/1",
                          "Bearer " + alice_token_,
                          "",
                          {{"accept", "application/vnd.github.patch"}}})
                .status,
            406);
}

// A review without an event is pending: its author's alone, no event,
// until submitted (POST .../reviews/ID/events) or deleted.
TEST_P(ApiTest, PendingReviews) {
  const std::string head =
      Commit("feature", "main", {{"src/main.c", "int main(void) {\n  return 1;\n}\n"}}, "one");
  ASSERT_TRUE(Push("feature", head).ok());
  CallJson(201, "POST", kBase + "/pulls", {{"title", "Return 1"}, {"head", "feature"}}, bob_token_);
  const size_t before = EventCount();
  json pending = CallJson(200, "POST", kBase + "/pulls/1/reviews",
                          {{"comments", {{{"path", "src/main.c"}, {"line", 2}, {"body", "hm"}}}}});
  EXPECT_EQ(pending["state"], "PENDING");
  EXPECT_FALSE(pending.contains("submitted_at"));
  const std::string rid = std::to_string(pending["id"].get<int64_t>());
  EXPECT_EQ(EventCount(), before);  // nothing happened yet, for anyone else
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls/1/reviews").size(), 1u);
  EXPECT_TRUE(CallJson(200, "GET", kBase + "/pulls/1/reviews", nullptr, bob_token_).empty());
  CallJson(404, "GET", kBase + "/pulls/1/reviews/" + rid, nullptr, bob_token_);
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls/1/reviews/" + rid)["state"], "PENDING");
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls/1")["review_comments"], 0);
  // One pending review per user.
  EXPECT_NE(Why(CallJson(422, "POST", kBase + "/pulls/1/reviews", {{"body", "again"}}))
                .find("already has pending review"),
            std::string::npos);
  // Only its author submits it, with an event GitHub knows.
  CallJson(404, "POST", kBase + "/pulls/1/reviews/" + rid + "/events", {{"event", "COMMENT"}},
           bob_token_);
  EXPECT_EQ(Why(CallJson(422, "POST", kBase + "/pulls/1/reviews/" + rid + "/events",
                         {{"event", "LGTM"}})),
            "field 'event' 'LGTM' is not one of APPROVE, COMMENT, REQUEST_CHANGES");
  EXPECT_EQ(Why(CallJson(422, "POST", kBase + "/pulls/1/reviews/" + rid + "/events", nullptr)),
            "field 'event' is missing");
  json submitted = CallJson(200, "POST", kBase + "/pulls/1/reviews/" + rid + "/events",
                            {{"event", "REQUEST_CHANGES"}, {"body", "please explain"}});
  EXPECT_EQ(submitted["state"], "CHANGES_REQUESTED");
  EXPECT_EQ(submitted["body"], "please explain");
  EXPECT_FALSE(submitted["submitted_at"].get<std::string>().empty());
  EXPECT_EQ(EventKinds(before), (std::vector<std::string>{"review.submitted #1"}));
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls/1/reviews", nullptr, bob_token_).size(), 1u);
  EXPECT_NE(Why(CallJson(422, "POST", kBase + "/pulls/1/reviews/" + rid + "/events",
                         {{"event", "COMMENT"}}))
                .find("already submitted"),
            std::string::npos);
  EXPECT_NE(Why(CallJson(422, "DELETE", kBase + "/pulls/1/reviews/" + rid))
                .find("Can not delete a non-pending pull request review"),
            std::string::npos);
  // Deleting a pending one; the author cannot approve their own.
  json own = CallJson(200, "POST", kBase + "/pulls/1/reviews", {{"body", "mine"}}, bob_token_);
  const std::string own_id = std::to_string(own["id"].get<int64_t>());
  EXPECT_NE(Why(CallJson(422, "POST", kBase + "/pulls/1/reviews/" + own_id + "/events",
                         {{"event", "APPROVE"}}, bob_token_))
                .find("Can not approve your own pull request"),
            std::string::npos);
  json deleted = CallJson(200, "DELETE", kBase + "/pulls/1/reviews/" + own_id, nullptr, bob_token_);
  EXPECT_EQ(deleted["state"], "PENDING");
  CallJson(404, "GET", kBase + "/pulls/1/reviews/" + own_id, nullptr, bob_token_);
  EXPECT_EQ(EventKinds(before), (std::vector<std::string>{"review.submitted #1"}));
}

// GET .../commits/REF/status: GitHub's combined state over the latest
// status of each context.
TEST_P(ApiTest, CombinedStatus) {
  const std::string main = BareSha("main");
  json none = CallJson(200, "GET", kBase + "/commits/main/status");
  EXPECT_EQ(none["state"], "pending");
  EXPECT_EQ(none["sha"], main);
  EXPECT_EQ(none["total_count"], 0);
  EXPECT_EQ(none["repository"]["full_name"], kRepo);
  EXPECT_EQ(none["url"], kApi + "/repos/acme/widget/commits/" + main + "/status");
  CallJson(201, "POST", kBase + "/statuses/" + main, {{"state", "success"}, {"context", "a"}});
  EXPECT_EQ(CallJson(200, "GET", kBase + "/commits/" + main + "/status")["state"], "success");
  CallJson(201, "POST", kBase + "/statuses/" + main, {{"state", "pending"}, {"context", "b"}});
  EXPECT_EQ(CallJson(200, "GET", kBase + "/commits/main/status")["state"], "pending");
  CallJson(201, "POST", kBase + "/statuses/" + main,
           {{"state", "error"}, {"context", "c"}, {"target_url", "https://ci.example/1"}});
  json all = CallJson(200, "GET", kBase + "/commits/main/status");
  EXPECT_EQ(all["state"], "failure");
  EXPECT_EQ(all["total_count"], 3);
  EXPECT_EQ(all["statuses"][2]["target_url"], "https://ci.example/1");
  json paged = CallJson(200, "GET", kBase + "/commits/main/status?per_page=1");
  EXPECT_EQ(paged["statuses"].size(), 1u);
  EXPECT_EQ(paged["total_count"], 3);
  CallJson(404, "GET", kBase + "/commits/nope/status");
  CallJson(404, "GET", kBase + "/commits/" + std::string(40, 'a') + "/status");
}

// PUT .../merge honours merge_method, commit_title, commit_message and sha:
// a merge commit even where a fast-forward would do, a squash, a rebase, a
// stale sha refused (409) with nothing changed.
TEST_P(ApiTest, MergeMethodsAndCommitTitles) {
  auto open_pull = [&](const std::string& branch, const std::string& file) {
    const std::string head = Commit(branch, "main", {{file, branch + "\n"}}, "add " + file);
    EXPECT_TRUE(Push(branch, head).ok());
    json p =
        CallJson(201, "POST", kBase + "/pulls",
                 {{"title", "Add " + file}, {"head", branch}, {"body", "Why " + file}}, bob_token_);
    return std::to_string(p["number"].get<int64_t>());
  };
  auto parents = [&](const std::string& sha) {
    return Split(testing::Git(bare_, "rev-list --parents -n 1 " + sha), ' ').size() - 1;
  };
  // merge: a merge commit although the base has not moved, with the title.
  std::string n = open_pull("one", "one.txt");
  const std::string head_one = BareSha("one");
  json stale = CallJson(409, "PUT", kBase + "/pulls/" + n + "/merge",
                        {{"sha", std::string(40, '0')}, {"merge_method", "merge"}});
  EXPECT_NE(stale["message"].get<std::string>().find("Head branch was modified"),
            std::string::npos);
  EXPECT_EQ(CallJson(200, "GET", kBase + "/pulls/" + n)["state"], "open");  // nothing changed
  json merged = CallJson(200, "PUT", kBase + "/pulls/" + n + "/merge",
                         {{"merge_method", "merge"},
                          {"commit_title", "Ship one"},
                          {"commit_message", "All of it."},
                          {"sha", head_one}});
  EXPECT_EQ(merged["merged"], true);
  const std::string one = merged["sha"];
  EXPECT_NE(one, head_one);
  EXPECT_EQ(BareSha("main"), one);
  EXPECT_EQ(parents(one), 2u);
  EXPECT_EQ(testing::Git(bare_, "log -1 --format=%B " + one), "Ship one\n\nAll of it.\n");
  EXPECT_EQ(testing::Git(bare_, "log -1 --format=%an " + one), "alice");
  // A title without a method: a merge commit too, never a silent fast-forward.
  n = open_pull("two", "two.txt");
  json titled = CallJson(200, "PUT", kBase + "/pulls/" + n + "/merge", {{"commit_title", "Two"}});
  EXPECT_EQ(parents(titled["sha"]), 2u);
  EXPECT_EQ(testing::Git(bare_, "log -1 --format=%s " + titled["sha"].get<std::string>()), "Two");
  // squash: one commit, the base its only parent, GitHub's default title.
  n = open_pull("three", "three.txt");
  json squashed =
      CallJson(200, "PUT", kBase + "/pulls/" + n + "/merge", {{"merge_method", "squash"}});
  const std::string three = squashed["sha"];
  EXPECT_EQ(parents(three), 1u);
  EXPECT_EQ(testing::Git(bare_, "rev-parse " + three + "^"), titled["sha"]);
  EXPECT_EQ(testing::Git(bare_, "log -1 --format=%B " + three),
            "Add three.txt (#" + n + ")\n\nWhy three.txt\n");
  EXPECT_EQ(testing::Git(bare_, "show " + three + ":three.txt"), "three");
  json pull = CallJson(200, "GET", kBase + "/pulls/" + n);
  EXPECT_EQ(pull["merged"], true);
  EXPECT_EQ(pull["merge_commit_sha"], three);
  // rebase: the head's commits replayed on the moved base, authors kept.
  n = open_pull("four", "four.txt");
  const std::string four_head = BareSha("four");
  json rebased =
      CallJson(200, "PUT", kBase + "/pulls/" + n + "/merge", {{"merge_method", "rebase"}});
  const std::string four = rebased["sha"];
  EXPECT_NE(four, four_head);
  EXPECT_EQ(parents(four), 1u);
  EXPECT_EQ(testing::Git(bare_, "rev-parse " + four + "^"), three);
  EXPECT_EQ(testing::Git(bare_, "log -1 --format=%s " + four), "add four.txt");
  EXPECT_EQ(testing::Git(bare_, "log -1 --format=%cn " + four), "alice");
  EXPECT_EQ(testing::Git(bare_, "log -1 --format=%an " + four),
            testing::Git(bare_, "log -1 --format=%an " + four_head));
  EXPECT_NE(CallJson(200, "GET", kBase + "/pulls/" + n + "/files").size(), 0u);
  // A conflicting rebase changes nothing.
  testing::Git(work(), "fetch -q origin");
  ASSERT_TRUE(Push("five", Commit("five", "origin/main", {{"one.txt", "changed\n"}}, "five")).ok());
  ASSERT_TRUE(
      Push("main", Commit("main", "origin/main", {{"one.txt", "other\n"}}, "main moves")).ok());
  json five = CallJson(201, "POST", kBase + "/pulls", {{"title", "Five"}, {"head", "five"}});
  const std::string before = BareSha("main");
  json conflict = CallJson(
      422, "PUT", kBase + "/pulls/" + std::to_string(five["number"].get<int64_t>()) + "/merge",
      {{"merge_method", "rebase"}});
  EXPECT_NE(Why(conflict).find("conflicts in: one.txt"), std::string::npos) << conflict.dump();
  EXPECT_EQ(BareSha("main"), before);
}

TEST(WireTest, IdsUsersAndLinks) {
  wire::Links links = wire::MakeLinks("http://127.0.0.1:8080/", "", "kiln");
  EXPECT_EQ(links.web, "http://127.0.0.1:8080");
  EXPECT_EQ(links.api, "http://127.0.0.1:8080/api/v1");
  EXPECT_EQ(wire::MakeLinks("http://w", "http://a:1/api/v1/").api, "http://a:1/api/v1");
  EXPECT_EQ(wire::UserJson(links, "kiln")["type"], "Bot");
  EXPECT_EQ(wire::UserJson(links, "dependabot[bot]")["type"], "Bot");
  EXPECT_EQ(wire::UserJson(links, "dependabot[bot]")["html_url"],
            "http://127.0.0.1:8080/dependabot%5Bbot%5D");
  EXPECT_EQ(wire::UserJson(links, "alice")["type"], "User");
  // Stable, positive, exact in a JavaScript number, distinct per kind.
  const int64_t id = wire::StableId("user", "alice");
  EXPECT_EQ(id, wire::StableId("user", "alice"));
  EXPECT_GT(id, 0);
  EXPECT_LT(id, int64_t{1} << 53);
  EXPECT_NE(id, wire::StableId("repo", "alice"));
  EXPECT_EQ(wire::NodeId("User", 7), "a2lsbjpVc2VyOjc=");  // base64 of "kiln:User:7"
  EXPECT_EQ(wire::ReviewOfComment(wire::ReviewCommentId(12, 3)),
            (std::pair<int64_t, size_t>(12, 3)));
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
    if (IsSkipped() || HasFatalFailure()) return;
    if (HasFatalFailure()) return;
    auto server = ApiServer::Start("127.0.0.1:0", store(), repos(), "", kWeb);
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

TEST_P(ApiServerTest, ServesOverHttpWithKeepAlive) {
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

TEST_P(ApiServerTest, ErrorsOverHttp) {
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

TEST_P(ApiServerTest, AStalledClientDoesNotBlockOthers) {
  tcp::socket stalled = Connect();
  asio::write(stalled, asio::buffer(std::string("GET /api/v1/repos HTTP/1.1\r\nHost: x\r\n")));
  // Headers never finished; another client is still served at once.
  tcp::socket s = Connect();
  auto r = Send(s, http::verb::get, "/api/v1/user", "", bob_token_);
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(json::parse(r.body())["login"], "bob");
}

// The token of each way GitHub's clients send one; nothing from anything
// else.
TEST(TokenOfTest, BearerTokenAndBasicAuthCarryTheToken) {
  EXPECT_EQ(TokenOf("Bearer kiln_abc"), "kiln_abc");
  EXPECT_EQ(TokenOf("bearer  kiln_abc "), "kiln_abc");
  EXPECT_EQ(TokenOf("token kiln_abc"), "kiln_abc");
  EXPECT_EQ(TokenOf("Basic " + Base64("anyone:kiln_abc")), "kiln_abc");
  EXPECT_EQ(TokenOf("Basic " + Base64("x:a:b")), "a:b");
  EXPECT_EQ(TokenOf("Basic " + Base64("no-colon")), "");
  EXPECT_EQ(TokenOf("Basic %%%"), "");
  EXPECT_EQ(TokenOf("Digest kiln_abc"), "");
  EXPECT_EQ(TokenOf(""), "");
}

TEST(ApiServerStartTest, RefusesABadListenAddress) {
  ::kiln::testing::TempDir dir;
  EXPECT_FALSE(ApiServer::Start("nonsense", dir / "kiln.db", dir / "repos", "", kWeb).ok());
  EXPECT_FALSE(
      ApiServer::Start("127.0.0.1:notaport", dir / "kiln.db", dir / "repos", "", kWeb).ok());
  EXPECT_FALSE(ApiServer::Start("999.0.0.1:0", dir / "kiln.db", dir / "repos", "", kWeb).ok());
}

KILN_FORGE_ON_BOTH_BACKENDS(ApiTest);
KILN_FORGE_ON_BOTH_BACKENDS(ApiServerTest);

}  // namespace
}  // namespace kiln::forge
