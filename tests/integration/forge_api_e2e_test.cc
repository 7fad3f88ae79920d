// The local forge's HTTP API end to end with GitHub's own client: `kiln
// serve` (the API under /api/v1 of its listener) and `kiln forge serve`
// driven by @octokit/rest (tests/browser/forge-api.mjs) through an issue, a
// pull request, reviews by position and pending, statuses and merges, every
// response checked against GitHub's published OpenAPI description
// (@octokit/openapi). Label browser: it needs node and `npm ci` in
// tests/browser, which scripts/test.sh does (docs/api.md).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "tests/integration/controller_fixture.h"
#include "tests/support/net.h"

namespace kiln::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The model is never asked: the test's skills are not the pipeline's roles,
// so kiln serve's pipeline answers the forge's events with a comment at most
// ("kiln cannot start triage"), which the checks allow for.
constexpr char kScript[] = R"yaml(
conversations:
  - match: "never"
    replies:
      - tool_calls: [{name: submit, input: {summary: done}}]
)yaml";

// `kiln forge serve` as a child process; SIGTERM and a wait when dropped.
class ForgeServer {
 public:
  ForgeServer(const std::string& config, const std::string& listen, const std::string& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl(KilnBinary().c_str(), "kiln", "forge", "serve", "--listen", listen.c_str(),
              "--config", config.c_str(), nullptr);
      _exit(127);
    }
  }
  ~ForgeServer() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  ForgeServer(const ForgeServer&) = delete;
  ForgeServer& operator=(const ForgeServer&) = delete;

 private:
  pid_t pid_ = -1;
};

class ForgeApi : public Controller {
 protected:
  void SetUp() override {
    Controller::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    driver_ = std::string(KILN_SOURCE_DIR) + "/tests/browser/forge-api.mjs";
    if (!fs::exists(std::string(KILN_SOURCE_DIR) +
                    "/tests/browser/node_modules/@octokit/openapi/generated/api.github.com.json") ||
        !fs::exists(std::string(KILN_SOURCE_DIR) + "/tests/browser/node_modules/@octokit/rest") ||
        ::access("/usr/bin/node", X_OK) != 0) {
      GTEST_SKIP() << "needs node and tests/browser/node_modules with @octokit/rest and "
                      "@octokit/openapi (npm ci there); scripts/test.sh installs them";
    }
  }

  // A forge repository (a name of this test's own: the state directory is
  // shared) maintained by alice, with branches "feature" (a change to
  // src/main.c and a new file) and "other" (a file of its own) ahead of
  // main, pushed with plain git; API tokens for alice and bob.
  void MakeForge(const std::string& listen) {
    Setup(kScript, "pipeline: {api_listen: \"" + listen + "\"}\n");
    forge_repo_ = "acme/widget-" + fs::path(root_).filename().string().substr(10);
    Outcome init = Kiln({"forge", "init", forge_repo_, "--from", repo_, "--maintainer", "alice",
                         "--config", config_, "--json"});
    ASSERT_EQ(init.status, 0) << init.err;
    const std::string bare = json::parse(init.out)["clone_url"];
    const std::string work = root_ + "/work";
    ASSERT_EQ(std::system(("git clone -q '" + bare + "' '" + work + "'").c_str()), 0);
    Git(work, "checkout -q -b feature");
    WriteAll(work + "/src/main.c",
             "int main(void) {\n  if (!load_config()) return 1;\n  return 0;\n}\n");
    WriteAll(work + "/src/config.c", "int load_config(void) { return 1; }\n");
    Git(work, "add -A");
    Git(work, "commit -q -m 'Handle a missing config'");
    Git(work, "checkout -q -b other main");
    WriteAll(work + "/OTHER.md", "other\n");
    Git(work, "add -A");
    Git(work, "commit -q -m 'Other'");
    Git(work, "push -q origin feature other");
    for (const char* user : {"alice", "bob"}) {
      Outcome add = Kiln({"forge", "user", "add", "--config", config_, user});
      ASSERT_EQ(add.status, 0) << add.err;
      tokens_.push_back(add.out.substr(0, add.out.find('\n')));
    }
  }

  // Runs the driver against api; its JSON report.
  json Drive(const std::string& api) {
    for (const auto& [name, value] :
         std::map<std::string, std::string>{{"KILN_API", api},
                                            {"KILN_TOKEN", tokens_[0]},
                                            {"KILN_TOKEN2", tokens_[1]},
                                            {"KILN_REPO", forge_repo_}}) {
      ::setenv(name.c_str(), value.c_str(), 1);
    }
    RunOptions o;
    o.timeout_seconds = 180;
    Outcome b = kiln::testing::Run({"/usr/bin/node", driver_}, o);
    json seen = json::parse(b.out, nullptr, false);
    EXPECT_TRUE(seen.is_object()) << b.out << b.err;
    return seen.is_object() ? seen : json::object();
  }

  // What every run of the driver must have seen.
  void ExpectGitHubsShapes(const json& seen, const std::string& web) {
    ASSERT_TRUE(seen.contains("failures"));
    EXPECT_EQ(seen["failures"], json::array()) << seen.dump(2);
    // Every response was checked against its operation's schema.
    EXPECT_GE(seen["validated"].get<int>(), 50) << seen.dump(2);
    const json& s = seen["steps"];
    EXPECT_EQ(s["user"]["login"], "alice");
    EXPECT_EQ(s["user"]["type"], "User");
    EXPECT_EQ(s["user"]["html_url"], web + "/alice");
    EXPECT_EQ(s["repo"]["html_url"], web + "/" + forge_repo_);
    const json& i = s["issue"];
    EXPECT_EQ(i["html_url"], web + "/" + forge_repo_ + "/issues/1");
    EXPECT_EQ(i["labels"], json::array({"area:core", "bug", "triaged"}));
    EXPECT_EQ(i["listed"][1], json::array({"bug", "d73a4a"}));
    EXPECT_TRUE(Contains(i["comment_html_url"], "/issues/1#issuecomment-"));
    EXPECT_EQ(i["edited"], "Same here, on 1.2.");
    EXPECT_EQ(i["relabelled"], json::array({"bug", "triaged"}));
    EXPECT_EQ(i["labels_now"], json::array({"bug"}));
    EXPECT_EQ(i["bobs_comments"], json::array({"Same here, on 1.2."}));
    // The pipeline of kiln serve may have commented too ("kiln cannot start
    // triage": the test's skills have no triage role).
    EXPECT_GE(i["comment_count"].get<int>(), 1);
    const json& r = s["refusals"];
    EXPECT_EQ(r["assignees"][0], 422);
    EXPECT_EQ(r["assignees"][1], "assignees");
    EXPECT_EQ(r["unknown"], json::array({422, "colour"}));
    EXPECT_EQ(r["query"], json::array({422, "mentioned"}));
    EXPECT_EQ(r["label"][0], 422);
    EXPECT_TRUE(Contains(r["label"][1], "'wontfix'"));
    EXPECT_EQ(r["forbidden"], 403);
    EXPECT_EQ(r["missing"], 404);
    EXPECT_EQ(s["paging"]["first"], 1);
    EXPECT_EQ(s["paging"]["link"], true);
    EXPECT_EQ(s["paging"]["all"], json::array({1, 2, 3}));
    const json& p = s["pull"];
    EXPECT_EQ(p["number"], 4);
    EXPECT_EQ(p["html_url"], web + "/" + forge_repo_ + "/pull/4");
    EXPECT_EQ(p["head"], json::array({"feature", "acme:feature", forge_repo_}));
    EXPECT_EQ(p["state"], "open");
    EXPECT_EQ(p["mergeable"], true);
    EXPECT_EQ(p["commits"], 1);
    EXPECT_EQ(p["changed_files"], 2);
    EXPECT_EQ(p["files"], json::array({json::array({"src/config.c", "added", 1, 0}),
                                       json::array({"src/main.c", "modified", 4, 1})}));
    EXPECT_EQ(p["diff"], true);
    const json& v = s["reviews"];
    EXPECT_EQ(v["commented"], json::array({"COMMENTED", "RIGHT"}));
    EXPECT_EQ(v["pending"], "PENDING");
    EXPECT_EQ(v["hidden_from_others"], 1);  // bob sees the submitted one alone
    EXPECT_EQ(v["submitted"], "APPROVED");
    EXPECT_EQ(v["deleted"], "PENDING");
    EXPECT_EQ(v["reviews"], json::array({"COMMENTED", "APPROVED"}));
    EXPECT_EQ(v["comments"], json::array({json::array({1, true}), json::array({1, true})}));
    EXPECT_EQ(v["single"], "Why this line?");
    EXPECT_EQ(v["own"][0], 422);
    EXPECT_TRUE(Contains(v["own"][1], "Can not approve your own pull request"));
    EXPECT_EQ(s["statuses"]["creator"], "alice");
    EXPECT_EQ(s["statuses"]["list"], 2);
    EXPECT_EQ(s["statuses"]["combined"], json::array({"success", 2, true}));
    const json& m = s["merge"];
    EXPECT_EQ(m["stale"], 409);
    EXPECT_EQ(m["not_maintainer"], 403);
    EXPECT_EQ(m["merged"], true);
    EXPECT_EQ(m["check"], 204);
    EXPECT_EQ(m["state"], "closed");
    EXPECT_EQ(m["is_merged"], true);
    EXPECT_EQ(m["merged_by"], "alice");
    EXPECT_EQ(m["merge_commit_sha"], true);
    EXPECT_EQ(m["issue_state"], "closed");  // "Fixes #1"
    EXPECT_EQ(m["merge2"], true);
    EXPECT_EQ(m["again"], 422);
    EXPECT_EQ(s["cleanup"]["status"], 204);
  }

  // The squash commit on main says what the merge asked.
  void ExpectSquashCommit(const json& seen) {
    const std::string sha = seen["steps"]["merge"]["sha"];
    Outcome shown = Kiln({"pr", "show", "--repo", forge_repo_, "4", "--json", "--config", config_});
    ASSERT_EQ(shown.status, 0) << shown.err;
    EXPECT_EQ(json::parse(shown.out)["merge_commit_sha"], sha);
  }

  std::string driver_, forge_repo_;
  std::vector<std::string> tokens_;
};

TEST_F(ForgeApi, OctokitAgainstKilnServeMatchesGitHubsSchema) {
  uint16_t port = FreePort();
  ASSERT_NE(port, 0);
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  MakeForge(listen);
  if (HasFatalFailure()) return;
  Daemon d(config_, root_ + "/serve.log");
  for (int i = 0; i < 100 && !Listening(port); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(Listening(port)) << ReadAll(root_ + "/serve.log");
  // html_url under the web view (pipeline.web_url's default, the listener).
  const std::string web = "http://" + listen;
  json seen = Drive(web + "/api/v1");
  ExpectGitHubsShapes(seen, web);
  ExpectSquashCommit(seen);
}

TEST_F(ForgeApi, OctokitAgainstKilnForgeServe) {
  uint16_t port = FreePort();
  ASSERT_NE(port, 0);
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  // kiln serve's listener is not started: html_url still names its address.
  MakeForge("127.0.0.1:1");
  if (HasFatalFailure()) return;
  ForgeServer server(config_, listen, root_ + "/forge.log");
  for (int i = 0; i < 100 && !Listening(port); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(Listening(port)) << ReadAll(root_ + "/forge.log");
  json seen = Drive("http://" + listen + "/api/v1");
  ExpectGitHubsShapes(seen, "http://127.0.0.1:1");
}

}  // namespace
}  // namespace kiln::testing
