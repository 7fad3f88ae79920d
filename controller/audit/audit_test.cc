#include "controller/audit/audit.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "base/fd.h"
#include "controller/sessionlog/signer.h"
#include "controller/sessionlog/writer.h"

namespace kiln::audit {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class Audit : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln-audit-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    auto signer = sessionlog::LoadOrCreateSigner((dir_ / "keys").string());
    ASSERT_TRUE(signer.ok()) << signer.error().message();
    signer_ = std::move(*signer);
    log_ = (dir_ / "run.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A run as the controller records one: a model turn streamed, two tool
  // calls (one printing markup and the secret, one printing a lot), proxy
  // requests allowed and denied, steering, the pipeline's decision, the
  // result with its diff.
  void WriteRun() {
    auto w = sessionlog::Writer::Create(log_, "r1", signer_);
    ASSERT_TRUE(w.ok()) << w.error().message();
    sessionlog::Writer& l = **w;
    ASSERT_TRUE(l.AddSecret("TOKEN", "s3cr3t-value-42").ok());
    ASSERT_TRUE(l.Append("run.start",
                         {{"run_id", "r1"},
                          {"role", "implement"},
                          {"task", "Fix the <parser>"},
                          {"requested_by", "forge:alice"},
                          {"image", {{"name", "host"}, {"digest", "sha256:abc"}}},
                          {"repository", {{"url", "/src/app"}, {"commit", "c0ffee"}}},
                          {"skill", {{"path", "skills/implement/SKILL.md"}, {"sha256", "5k111"}}},
                          {"secrets", {"TOKEN"}},
                          {"budgets", {{"max_turns", 10}}}})
                    .ok());
    ASSERT_TRUE(l.Append("model.request", {{"turn", 1}, {"attempt", 1}, {"model", "m"}}).ok());
    std::string sse =
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":"
        "{\"type\":\"text_delta\",\"text\":\"I will look at <b>it</b>.\"}}\n\n";
    ASSERT_TRUE(
        l.Append("model.response", {{"turn", 1},
                                    {"attempt", 1},
                                    {"status", 200},
                                    {"stop_reason", "tool_use"},
                                    {"body", sse},
                                    {"usage", {{"input_tokens", 120}, {"output_tokens", 7}}},
                                    {"latency_ms", 33}})
            .ok());
    ASSERT_TRUE(l.Append("tool.call", {{"turn", 1},
                                       {"call_id", "c1"},
                                       {"tool", "shell"},
                                       {"input", {{"command", "cat notes"}}}})
                    .ok());
    ASSERT_TRUE(l.Append("tool.result", {{"call_id", "c1"},
                                         {"tool", "shell"},
                                         {"output", "<script>alert(1)</script> s3cr3t-value-42"},
                                         {"exit_status", 0},
                                         {"duration_ms", 4}})
                    .ok());
    std::string lots;
    for (int i = 0; i < 500; ++i) lots += "line " + std::to_string(i) + "\n";
    ASSERT_TRUE(l.Append("tool.call", {{"turn", 1}, {"call_id", "c2"}, {"tool", "shell"}}).ok());
    ASSERT_TRUE(
        l.Append("tool.result", {{"call_id", "c2"}, {"output", lots}, {"exit_status", 1}}).ok());
    ASSERT_TRUE(l.Append("proxy.request", {{"method", "CONNECT"},
                                           {"host", "pypi.org"},
                                           {"port", 443},
                                           {"decision", "allowed"},
                                           {"reason", "pypi.org:443 (config)"}})
                    .ok());
    ASSERT_TRUE(l.Append("proxy.request", {{"method", "CONNECT"},
                                           {"host", "evil.example"},
                                           {"port", 443},
                                           {"decision", "denied"},
                                           {"reason", "no rule allows evil.example:443"}})
                    .ok());
    ASSERT_TRUE(l.Append("steer", {{"from", "cli:alice"}, {"message", "also the changelog"}}).ok());
    ASSERT_TRUE(l.Append("controller", {{"event", "decision"},
                                        {"message", "the forge writes kiln will make"},
                                        {"actions", {{"status", "success"}}}})
                    .ok());
    ASSERT_TRUE(l.Append("result", {{"outcome", "submitted"},
                                    {"summary", "fixed"},
                                    {"result", {{"summary", "fixed"}}},
                                    {"diff",
                                     {{"files", {{{"path", "a.c"}, {"status", "M"}}}},
                                      {"patch", "--- a/a.c\n+++ b/a.c\n"},
                                      {"sha256", "d1ff"},
                                      {"bytes", 20}}}})
                    .ok());
    ASSERT_TRUE(l.Close({{"status", "succeeded"}, {"totals", {{"turns", 1}}}}).ok());
  }

  fs::path dir_;
  std::shared_ptr<const sessionlog::Signer> signer_;
  std::string log_;
};

TEST_F(Audit, EverySectionOfARunIsThere) {
  WriteRun();
  auto r = Build(log_, {signer_->public_key()});
  ASSERT_TRUE(r.ok()) << r.error().message();
  const json& a = *r;
  EXPECT_TRUE(a["verification"]["verified"]);
  EXPECT_EQ(a["verification"]["key_ids"][0], signer_->key_id());
  EXPECT_EQ(a["inputs"]["secrets"][0], "TOKEN");
  ASSERT_EQ(a["timeline"].size(), 5u);  // a turn, two tools, a steer, a note
  EXPECT_EQ(a["timeline"][0]["text"], "I will look at <b>it</b>.");
  EXPECT_EQ(a["timeline"][0]["usage"]["input_tokens"], 120);
  EXPECT_EQ(a["timeline"][1]["exit_status"], 0);
  EXPECT_EQ(a["proxy"].size(), 2u);
  EXPECT_EQ(a["proxy"][1]["decision"], "denied");
  EXPECT_EQ(a["steering"][0]["from"], "cli:alice");
  EXPECT_EQ(a["diff"]["files"][0]["path"], "a.c");
  EXPECT_EQ(a["result"]["outcome"], "submitted");
  EXPECT_EQ(a["verify_gate"]["decision"]["status"], "success");
  EXPECT_EQ(a["end"]["status"], "succeeded");

  // The log was redacted when written: the secret is in no format.
  for (const std::string& text : {Html(a), Markdown(a), a.dump()}) {
    EXPECT_EQ(text.find("s3cr3t-value-42"), std::string::npos);
  }
  // What the agent printed is text in the page, never markup.
  std::string html = Html(a);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  for (const char* id : {"verification", "inputs", "timeline", "proxy", "steering", "diff",
                         "result", "verify-gate", "end"}) {
    EXPECT_NE(html.find(std::string("<section id=\"") + id + "\">"), std::string::npos) << id;
  }
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  // The long output is collapsed, whole.
  EXPECT_NE(html.find("<details><summary>output, exit status 1"), std::string::npos);
  EXPECT_NE(html.find("line 499\n"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);  // nothing to fetch, nowhere to link
  std::string md = Markdown(a);
  for (const char* heading : {"## Verification", "## Inputs", "## Timeline", "## Proxy requests",
                              "## Steering", "## Diff", "## Result", "## Verify gate", "## End"}) {
    EXPECT_NE(md.find(heading), std::string::npos) << heading;
  }
  EXPECT_NE(md.find("no rule allows evil.example:443"), std::string::npos);
}

TEST_F(Audit, ALogThatDoesNotVerifySaysSoFirst) {
  WriteRun();
  std::string text = *ReadFile(log_);
  text.replace(text.find("also the changelog"), 4, "ALSO");
  fs::permissions(log_, fs::perms::owner_write, fs::perm_options::add);
  ASSERT_TRUE(WriteFileAtomic(log_, text, 0644).ok());
  auto r = Build(log_, {signer_->public_key()});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE((*r)["verification"]["verified"]);
  EXPECT_NE((*r)["verification"]["findings"][0].get<std::string>().find("modified"),
            std::string::npos);
  std::string html = Html(*r);
  EXPECT_NE(html.find("NOT verified"), std::string::npos);
  EXPECT_LT(html.find("NOT verified"), html.find("<section id=\"inputs\">"));
}

// A request recorded as a delta whose base line was cut out of the log: the
// report is still written, says the log does not verify, and counts the
// request it could not give back.
TEST_F(Audit, ARequestWhoseBaseIsGoneIsCounted) {
  {
    auto w = sessionlog::Writer::Create(log_, "r1", signer_);
    ASSERT_TRUE(w.ok()) << w.error().message();
    ASSERT_TRUE((*w)->Append("run.start", {{"run_id", "r1"}, {"role", "implement"}}).ok());
    const std::string body(2000, 'x');
    ASSERT_TRUE((*w)->Append("model.request", {{"turn", 1}, {"body", body}}).ok());
    ASSERT_TRUE((*w)->Append("model.request", {{"turn", 2}, {"body", body + "y"}}).ok());
    ASSERT_TRUE((*w)->Close({{"status", "succeeded"}}).ok());
  }
  std::string text = *ReadFile(log_);
  size_t first = text.find('\n') + 1;
  text.erase(first, text.find('\n', first) + 1 - first);  // the first request, the base
  ASSERT_NE(text.find("body_delta"), std::string::npos);
  fs::permissions(log_, fs::perms::owner_write, fs::perm_options::add);
  ASSERT_TRUE(WriteFileAtomic(log_, text, 0644).ok());
  auto r = Build(log_, {signer_->public_key()});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_FALSE((*r)["verification"]["verified"]);
  EXPECT_EQ((*r)["unresolved_bodies"], 1) << r->dump(2).substr(0, 600);
}

// Only an http or https run page becomes a link, escaped; anything else
// (a javascript: URL, a quote that would end the attribute) is left out.
TEST_F(Audit, TheRunPageLinkIsAnHttpUrlOrNothing) {
  WriteRun();
  auto r = Build(log_, {signer_->public_key()});
  ASSERT_TRUE(r.ok()) << r.error().message();
  (*r)["run_page"] = "https://kiln.example/runs/r1?a=1&b=\"2\"";
  std::string html = Html(*r);
  EXPECT_NE(html.find("<a href=\"https://kiln.example/runs/r1?a=1&amp;b=&quot;2&quot;\">"),
            std::string::npos)
      << html.substr(0, 1200);
  EXPECT_NE(Markdown(*r).find("](<https://kiln.example/runs/r1?a=1&amp;b=\"2\">)"),
            std::string::npos);
  for (const char* bad : {"javascript:alert(1)", "file:///etc/passwd", ""}) {
    (*r)["run_page"] = bad;
    EXPECT_EQ(Html(*r).find("<a "), std::string::npos) << bad;
    EXPECT_EQ(Markdown(*r).find("](<"), std::string::npos) << bad;
  }
}

TEST_F(Audit, AMissingLogIsAnError) {
  auto r = Build((dir_ / "absent.log").string(), {signer_->public_key()});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("absent.log"), std::string::npos);
}

}  // namespace
}  // namespace kiln::audit
