// The web view end to end, in a real browser: `kiln serve` with its
// listener, real runs on the scripted model, and Debian's headless chromium
// driven by playwright-core (tests/browser/web.mjs) signing in, watching
// the dashboard and a run page update live, steering, cancelling, trying
// hostile text, a forged POST and a share link (docs/web.md).
#include <unistd.h>

#include <filesystem>

#include "tests/integration/controller_fixture.h"
#include "tests/support/net.h"

namespace kiln::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The watched run: a reply and tool output carrying markup, then steps slow
// enough to watch and steer, then a submit. The cancelled run sleeps.
constexpr char kScript[] = R"yaml(
conversations:
  - match: "TASK-LIVE"
    replies:
      - text: "Looking at <img src=x onerror=alert(3)> first."
        tool_calls: [{name: shell, input: {command: "printf '%s' '<script>alert(1)</script>'; sleep 2"}}]
      - tool_calls: [{name: shell, input: {command: "sleep 2; echo step 2"}}]
      - tool_calls: [{name: shell, input: {command: "sleep 2; echo step 3"}}]
      - tool_calls: [{name: shell, input: {command: "sleep 2; echo step 4"}}]
      - tool_calls: [{name: shell, input: {command: "sleep 2; echo step 5"}}]
      - tool_calls: [{name: write, input: {path: NOTES.md, content: "notes\n"}}]
      - tool_calls: [{name: submit, input: {summary: "done, see <script>alert(2)</script>"}}]
  - match: "TASK-CANCEL"
    replies:
      - tool_calls: [{name: shell, input: {command: "sleep 60", timeout_ms: 100000}}]
    default: {tool_calls: [{name: submit, input: {summary: done}}]}
)yaml";

class Web : public Controller {};

TEST_F(Web, DashboardRunPageSteerCancelAndShareInChromium) {
  const std::string chromium = Chromium();
  const std::string driver = std::string(KILN_SOURCE_DIR) + "/tests/browser/web.mjs";
  if (chromium.empty()) GTEST_SKIP() << kNoBrowser;
  uint16_t port = FreePort();
  ASSERT_NE(port, 0);
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  Setup(kScript, "pipeline: {enabled: false, api_listen: \"" + listen + "\"}\n");
  Outcome user = Kiln({"forge", "user", "add", "--config", config_, "alice"});
  ASSERT_EQ(user.status, 0) << user.err;
  const std::string token = user.out.substr(0, user.out.find('\n'));
  ASSERT_TRUE(token.starts_with("kiln_")) << user.out;

  Daemon d(config_, root_ + "/serve.log");
  for (int i = 0; i < 100 && !Listening(port); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(Listening(port)) << ReadAll(root_ + "/serve.log");

  // The local forge, as people use it: alice maintains acme/widget; bob
  // files a hostile issue and comment, and a pull request from a branch he
  // pushes over git's HTTP.
  auto as = [&](const std::string& who, std::vector<std::string> args) {
    args.insert(args.end(), {"--config", config_, "--as", who});
    Outcome o = Kiln(args);
    EXPECT_EQ(o.status, 0) << o.err;
    return o;
  };
  as("alice", {"forge", "init", "acme/widget", "--from", repo_, "--maintainer", "alice"});
  const std::string bob =
      Kiln({"forge", "user", "add", "--config", config_, "bob"}).out.substr(0, 69);
  as("bob", {"issue", "new", "--repo", "acme/widget", "-t", "<script>alert('title')</script> crash",
             "-b", "see <img src=x onerror=alert('body')>"});
  as("bob", {"issue", "comment", "--repo", "acme/widget", "1", "-b",
             "[x](javascript:alert('comment')) <script>alert('c')</script>"});
  const std::string work = root_ + "/bob";
  Outcome clone = kiln::testing::Run(
      {"/bin/sh", "-c",
       "git clone -q http://bob:" + bob + "@" + listen + "/acme/widget.git '" + work + "' && cd '" +
           work +
           "' && git checkout -q -b feature && echo 'hello from bob' > README.md && git -c "
           "user.name=bob -c user.email=b@b commit -qam readme && git push -q origin feature"});
  ASSERT_EQ(clone.status, 0) << clone.err;
  as("bob", {"pr", "new", "--repo", "acme/widget", "--head", "feature", "-t", "Better README", "-b",
             "Fixes #1"});
  // An inline comment on the diff's new line, through the forge's API as a
  // reviewer's client would place it (GitHub's review shape).
  Outcome inline_review = kiln::testing::Run(
      {"/usr/bin/curl", "-sS", "-f", "-H", "Authorization: Bearer " + bob, "-H",
       "Content-Type: application/json", "-d",
       R"({"event": "COMMENT", "body": "one note", "comments": [{"path": "README.md", "line": 1,)"
       R"( "side": "RIGHT", "body": "Say <b>hello</b> to everyone?"}]})",
       "http://" + listen + "/api/v1/repos/acme/widget/pulls/2/reviews"});
  ASSERT_EQ(inline_review.status, 0) << inline_review.err << inline_review.out;

  std::string shots = root_ + "/shots";
  fs::create_directories(shots);
  // docs/ holds these pages: KILN_WEB_SCREENSHOTS=docs scripts/test.sh.
  if (const char* keep = std::getenv("KILN_WEB_SCREENSHOTS")) shots = keep;
  // The driver's settings, in its environment (it inherits the test's).
  for (const auto& [name, value] :
       std::map<std::string, std::string>{{"KILN_URL", "http://" + listen},
                                          {"KILN_USER", "alice"},
                                          {"KILN_TOKEN", token},
                                          {"KILN", KilnBinary()},
                                          {"KILN_CONFIG", config_},
                                          {"KILN_REPO", repo_},
                                          {"KILN_CHROMIUM", chromium},
                                          {"SHOTS", shots}}) {
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  RunOptions o;
  o.timeout_seconds = 300;
  Outcome b = kiln::testing::Run({"/usr/bin/node", driver}, o);
  json seen = json::parse(b.out, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << b.out << b.err;
  ASSERT_FALSE(seen.contains("failure")) << seen.dump(2) << "\n" << ReadAll(root_ + "/serve.log");
  std::map<std::string, json> step;
  for (const json& s : seen["steps"]) step[s["name"]] = s;

  EXPECT_EQ(step["anonymous"]["url"], "http://" + listen + "/login?next=/");
  EXPECT_EQ(step["anonymous"]["api_status"], 401);
  EXPECT_EQ(step["signed_in"]["url"], "http://" + listen + "/");
  // The dashboard saw the run queued or running, then succeeded, unreloaded.
  EXPECT_EQ(step["dashboard_live"]["marker"], "not reloaded");
  EXPECT_EQ(step["dashboard_live"]["statuses"].back(), "succeeded");
  EXPECT_TRUE(Contains(step["dashboard_live"]["stats"], "Last day, by role"));
  // The run page's timeline grew while it ran.
  EXPECT_GT(step["timeline_grew"]["after"], step["timeline_grew"]["before"]);
  EXPECT_EQ(step["timeline_grew"]["marker"], "not reloaded");
  EXPECT_GE(step["timeline_grew"]["budgets"], 4);
  // Once it ended, the open page dropped its steer box and cancel button.
  EXPECT_EQ(step["ended"]["actions"], 0);
  // The forge's pages: hostile text is text; a comment, an approval and a
  // merge from the page.
  const json& fi = step["forge_issue"];
  EXPECT_TRUE(fi["title_text"]) << fi.dump();
  EXPECT_TRUE(fi["body_text"]) << fi.dump();
  EXPECT_TRUE(fi["comment_text"]) << fi.dump();
  EXPECT_EQ(fi["images"], 0);
  EXPECT_EQ(fi["javascript_links"], 0);
  EXPECT_TRUE(fi["commented"]);
  const json& fp = step["forge_pull"];
  EXPECT_TRUE(fp["diff"]) << fp.dump();
  EXPECT_TRUE(Contains(fp["reviewed"], "Review by alice: approve")) << fp.dump();
  // The inline comment sits right after the line it is on, as text.
  EXPECT_EQ(fp["inline_after"], "+hello from bob") << fp.dump();
  EXPECT_EQ(fp["inline_text"], "bob (nit): Say <b>hello</b> to everyone?") << fp.dump();
  EXPECT_EQ(fp["state"], "merged") << fp.dump();
  json merged = json::parse(Kiln({"pr", "list", "--config", config_, "--repo", "acme/widget",
                                  "--state", "merged", "--json"})
                                .out);
  EXPECT_EQ(merged.size(), 1u) << merged.dump();
  // Hostile text is text.
  const json& h = step["hostile_text"];
  EXPECT_TRUE(h["script_text"]) << h.dump();
  EXPECT_TRUE(h["task_text"]) << h.dump();
  EXPECT_TRUE(h["reply_text"]) << h.dump();
  EXPECT_TRUE(h["link_text"]) << h.dump();
  EXPECT_EQ(h["images"], 0);
  EXPECT_EQ(h["javascript_links"], 0);
  EXPECT_EQ(h["scripts"], json::array({"http://" + listen + "/static/kiln.js"}));
  EXPECT_TRUE(Contains(h["outcome"], "NOTES.md")) << h.dump();
  EXPECT_TRUE(Contains(h["outcome"], "verified")) << h.dump();
  EXPECT_EQ(seen["dialogs"], json::array()) << "a dialog fired";
  EXPECT_EQ(seen["errors"], json::array());
  EXPECT_LE(step["phone"]["overflow"], 0);
  EXPECT_TRUE(Contains(step["cancelled"]["status"], "cancelled")) << step["cancelled"].dump();
  EXPECT_EQ(step["csrf"]["status"], 403);
  const json& sh = step["share"];
  EXPECT_EQ(sh["status"], 200);
  EXPECT_TRUE(sh["shows_run"]);
  EXPECT_EQ(sh["steer_forms"], 0);
  EXPECT_EQ(sh["cancel_buttons"], 0);
  EXPECT_GT(sh["timeline"], 3);
  EXPECT_EQ(sh["steer_post"], 403);
  EXPECT_EQ(sh["cancel_post"], 403);
  EXPECT_EQ(sh["run_page_without_session"], 303);

  // The steering reached the model, from the signed-in user; the forged
  // POST did not.
  std::string record = ReadAll(root_ + "/record");
  EXPECT_TRUE(Contains(record,
                       "Message from web:alice while you work: please also update the "
                       "docs (sent from the page)"));
  EXPECT_FALSE(Contains(record, "forged"));
  json runs = json::parse(Kiln({"runs", "list", "--config", config_, "--json"}).out);
  ASSERT_EQ(runs.size(), 2u);
  for (const json& r : runs) {
    if (Contains(r["task"], "TASK-LIVE")) {
      EXPECT_EQ(r["status"], "succeeded");
      ExpectLogVerifies(r["log_path"]);
    } else {
      EXPECT_EQ(r["status"], "cancelled");
    }
  }
}

}  // namespace
}  // namespace kiln::testing
