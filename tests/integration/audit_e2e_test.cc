// `kiln audit` end to end: a real run (real sandbox, runtime, proxy, scripted
// model) written up as JSON, Markdown and HTML, and the HTML page opened in
// Debian's headless chromium (tests/browser/page.mjs, playwright-core) to
// check what an auditor sees: every section, the verdict, long outputs
// collapsed but whole, nothing fetched from anywhere, no secret.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "tests/integration/controller_fixture.h"

namespace kiln::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// A run of the secret role that reads its secret, prints a lot, is refused
// by the proxy once, and changes a file.
constexpr char kAuditedScript[] = R"yaml(
replies:
  - text: "Reading the secret, for the test."
    tool_calls: [{name: shell, input: {command: "cat /run/secrets/GRANTED"}}]
  - tool_calls: [{name: shell, input: {command: "seq 1 400"}}]
  - tool_calls: [{name: shell, input: {command: "curl -s -o /dev/null -w 'http %{http_code}' http://denied.example/"}}]
  - tool_calls: [{name: write, input: {path: CHANGES.md, content: "audited <b>change</b>\n"}}]
  - tool_calls: [{name: submit, input: {summary: "done, see <script>alert(1)</script>"}}]
)yaml";

class Audit : public Controller {
 protected:
  Outcome AuditOf(const std::string& id, const std::string& format, const std::string& out) {
    return Kiln({"audit", "--config", config_, id, "--format", format, "-o", out});
  }
};

TEST_F(Audit, ARealRunInEveryFormatAndInChromium) {
  Setup(kAuditedScript);
  Outcome run = RunRole("secret");
  ASSERT_EQ(run.status, 0) << run.err;
  std::string id = RunJson(run)["id"];
  // The run's secret (the host's other one never reached it).
  const std::vector<std::string> secrets = {"granted-value-123"};

  Outcome j = AuditOf(id, "json", root_ + "/audit.json");
  ASSERT_EQ(j.status, 0) << j.err;
  json a = json::parse(ReadAll(root_ + "/audit.json"));
  EXPECT_TRUE(a["verification"]["verified"]);
  EXPECT_EQ(a["inputs"]["role"], "secret");
  EXPECT_EQ(a["inputs"]["secrets"], json::array({"GRANTED"}));
  EXPECT_EQ(a["end"]["status"], "succeeded");
  EXPECT_EQ(a["diff"]["files"][0]["path"], "CHANGES.md");
  bool denied = false;
  for (const auto& p : a["proxy"]) denied = denied || p["decision"] == "denied";
  EXPECT_TRUE(denied) << a["proxy"].dump();
  int tools = 0;
  for (const auto& t : a["timeline"]) tools += t["kind"] == "tool";
  EXPECT_EQ(tools, 5);
  EXPECT_EQ(a["timeline"][0]["text"], "Reading the secret, for the test.");

  Outcome m = AuditOf(id, "md", root_ + "/audit.md");
  ASSERT_EQ(m.status, 0) << m.err;
  Outcome h = AuditOf(id, "html", root_ + "/audit.html");
  ASSERT_EQ(h.status, 0) << h.err;
  for (const char* file : {"/audit.json", "/audit.md", "/audit.html"}) {
    std::string text = ReadAll(root_ + file);
    for (const auto& secret : secrets) {
      EXPECT_EQ(text.find(secret), std::string::npos) << file << " holds " << secret;
    }
  }
  std::string html = ReadAll(root_ + "/audit.html");
  for (const char* attr : {"src=", "href=", "@import", "url("}) {
    EXPECT_EQ(html.find(attr), std::string::npos) << attr;
  }

  // What a reader sees, in a real browser.
  const std::string page = std::string(KILN_SOURCE_DIR) + "/tests/browser/page.mjs";
  if (Chromium().empty()) GTEST_SKIP() << kNoBrowser;
  Outcome b = kiln::testing::Run({"/usr/bin/node", page, root_ + "/audit.html", "--screenshot",
                                  root_ + "/audit.png", "--selector", "p.verdict"});
  ASSERT_EQ(b.status, 0) << b.out << b.err;
  json seen = json::parse(b.out, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << b.out;
  EXPECT_EQ(seen["sections"], json::array({"verification", "inputs", "timeline", "proxy",
                                           "steering", "diff", "result", "verify-gate", "end"}));
  EXPECT_EQ(seen["requests"], json::array()) << "the page fetched something";
  EXPECT_EQ(seen["errors"], json::array());
  EXPECT_EQ(seen["scripts"], 0);
  ASSERT_EQ(seen["selected"]["p.verdict"].size(), 1u);
  EXPECT_TRUE(Contains(seen["selected"]["p.verdict"][0], "Verified")) << seen["selected"].dump();
  EXPECT_EQ(seen["title"], "Audit of run " + id);
  // The 400 lines are collapsed, and all there once opened.
  bool collapsed = false;
  for (const auto& d : seen["details"]) {
    if (Contains(d["summary"], "output, exit status 0") && !d["open"]) collapsed = true;
  }
  EXPECT_TRUE(collapsed) << seen["details"].dump();
  std::string body = seen["body"], expanded = seen["expanded_body"];
  EXPECT_FALSE(Contains(body, "\n399\n400\n"));
  EXPECT_TRUE(Contains(expanded, "\n399\n400\n"));
  // The agent's markup is shown as text.
  EXPECT_TRUE(Contains(body, "done, see <script>alert(1)</script>")) << body.substr(0, 2000);
  EXPECT_TRUE(Contains(expanded, "audited <b>change</b>"));
  EXPECT_TRUE(Contains(expanded, "[secret:GRANTED]"));
  for (const auto& secret : secrets) EXPECT_FALSE(Contains(expanded, secret));
  EXPECT_GT(fs::file_size(root_ + "/audit.png"), 10'000u);
  // docs/audit.png is this page: KILN_AUDIT_SCREENSHOT=docs/audit.png.
  if (const char* keep = std::getenv("KILN_AUDIT_SCREENSHOT")) {
    fs::copy_file(root_ + "/audit.png", keep, fs::copy_options::overwrite_existing);
  }
}

// Where kiln serves the web view, the report links the run's page there:
// a link the reader may follow, which the page itself never loads.
TEST_F(Audit, TheReportLinksTheRunsPageInTheWebView) {
  Setup("default: {tool_calls: [{name: submit, input: {summary: done}}]}\n",
        "pipeline: {api_listen: \"127.0.0.1:9\"}\n");
  Outcome run = RunRole("edit");
  ASSERT_EQ(run.status, 0) << run.err;
  const std::string id = RunJson(run)["id"];
  const std::string url = "http://127.0.0.1:9/runs/" + id;
  ASSERT_EQ(AuditOf(id, "json", root_ + "/a.json").status, 0);
  EXPECT_EQ(json::parse(ReadAll(root_ + "/a.json"))["run_page"], url);
  ASSERT_EQ(AuditOf(id, "md", root_ + "/a.md").status, 0);
  EXPECT_TRUE(Contains(ReadAll(root_ + "/a.md"), "](<" + url + ">)")) << ReadAll(root_ + "/a.md");
  ASSERT_EQ(AuditOf(id, "html", root_ + "/a.html").status, 0);
  const std::string html = ReadAll(root_ + "/a.html");
  EXPECT_TRUE(Contains(html, "<a href=\"" + url + "\">")) << html.substr(0, 1500);
  EXPECT_EQ(html.find("href="), html.rfind("href=")) << "one link, no other";

  if (Chromium().empty()) GTEST_SKIP() << kNoBrowser;
  Outcome b =
      kiln::testing::Run({"/usr/bin/node", std::string(KILN_SOURCE_DIR) + "/tests/browser/page.mjs",
                          root_ + "/a.html", "--selector", "a"});
  ASSERT_EQ(b.status, 0) << b.out << b.err;
  json seen = json::parse(b.out, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << b.out;
  EXPECT_EQ(seen["selected"]["a"], json::array({"The run in the web view: " + url}));
  EXPECT_EQ(seen["requests"], json::array()) << "the page fetched something";
}

TEST_F(Audit, ATamperedLogIsReportedAndExitsOne) {
  Setup(kAuditedScript);
  Outcome run = RunRole("secret");
  ASSERT_EQ(run.status, 0) << run.err;
  std::string log = RunJson(run)["log_path"];
  std::string text = ReadAll(log);
  size_t at = text.find("seq 1 400");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 9, "seq 1 401");
  fs::permissions(log, fs::perms::owner_write, fs::perm_options::add);
  WriteAll(log, text);
  Outcome o = AuditOf(log, "json", root_ + "/bad.json");
  EXPECT_EQ(o.status, 1) << o.err;
  json a = json::parse(ReadAll(root_ + "/bad.json"));
  EXPECT_FALSE(a["verification"]["verified"]);
  EXPECT_TRUE(Contains(a["verification"]["findings"][0], "modified")) << a["verification"].dump();

  Outcome missing = AuditOf(root_ + "/nothing.log", "html", root_ + "/x.html");
  EXPECT_EQ(missing.status, 2);
  EXPECT_TRUE(Contains(missing.err, "neither a session log nor a run")) << missing.err;
  EXPECT_FALSE(fs::exists(root_ + "/x.html"));
  Outcome format = Kiln({"audit", "--config", config_, log, "--format", "pdf"});
  EXPECT_EQ(format.status, 2);
  EXPECT_TRUE(Contains(format.err, "pdf")) << format.err;
}

}  // namespace
}  // namespace kiln::testing
