#include "controller/replay/compare.h"

#include <gtest/gtest.h>

namespace kiln::replay {
namespace {

using nlohmann::json;
using sessionlog::Entries;
using sessionlog::Entry;

// A log's records as a run writes them: model call, tool call, result.
Entries Log(const std::string& output, int exit_status = 0, const std::string& patch = "p") {
  Entries log;
  uint64_t seq = 0;
  auto add = [&](std::string type, json payload) {
    Entry e;
    e.seq = seq++;
    e.type = std::move(type);
    e.payload = std::move(payload);
    log.records.push_back(std::move(e));
  };
  add("run.start", {{"run_id", "r1"}});
  add("model.request", {{"turn", 1}, {"attempt", 1}, {"body", R"({"messages":[1]})"}});
  add("model.response", {{"turn", 1}, {"attempt", 1}, {"status", 200}, {"latency_ms", seq}});
  add("tool.call", {{"turn", 1}, {"tool", "shell"}, {"call_id", "c1"}, {"input", {{"cmd", "x"}}}});
  add("proxy.request", {{"host", "example.org"}, {"duration_ms", seq * 7}});
  add("tool.result", {{"tool", "shell"},
                      {"call_id", "c1"},
                      {"exit_status", exit_status},
                      {"is_error", false},
                      {"truncated", false},
                      {"output", output},
                      {"duration_ms", seq * 3}});
  add("result", {{"outcome", "submitted"}, {"diff", {{"files", json::array()}, {"patch", patch}}}});
  add("run.end", {{"status", "succeeded"}});
  return log;
}

Comparison CompareLogs(const Entries& a, const Entries& b) {
  auto n = Normaliser::Make(BuiltinRules());
  EXPECT_TRUE(n.ok());
  return Compare(a, b, *n);
}

TEST(Compare, TheSameRunIsIdenticalWhateverItsTimings) {
  Comparison c = CompareLogs(Log("hello\n"), Log("hello\n"));
  EXPECT_TRUE(c.divergences.empty());
  EXPECT_EQ(c.compared["tool.result"], 1u);
  EXPECT_EQ(c.compared["model.request"], 1u);
  EXPECT_EQ(c.compared["result"], 1u);
}

TEST(Compare, AChangedOutputIsNamedAtItsSeqWithADiff) {
  Comparison c = CompareLogs(Log("a\nb\n"), Log("a\nc\n"));
  ASSERT_EQ(c.divergences.size(), 1u);
  const Divergence& d = c.divergences[0];
  EXPECT_EQ(d.seq, 5u);
  EXPECT_EQ(d.type, "tool.result");
  EXPECT_EQ(d.field, "output");
  EXPECT_EQ(d.expected, "a\nb\n");
  EXPECT_EQ(d.found, "a\nc\n");
  EXPECT_NE(d.diff.find("-b\n+c\n"), std::string::npos) << d.diff;
}

TEST(Compare, ExitStatusIsComparedBeforeOutput) {
  Comparison c = CompareLogs(Log("x", 0), Log("y", 1));
  ASSERT_EQ(c.divergences.size(), 1u);
  EXPECT_EQ(c.divergences[0].field, "exit_status");
  EXPECT_EQ(c.divergences[0].expected, "0");
  EXPECT_EQ(c.divergences[0].found, "1");
}

TEST(Compare, NormalisedDifferencesAreHiddenAndCounted) {
  Comparison c = CompareLogs(Log("at 2026-01-01T00:00:00Z\n"), Log("at 2026-12-06T16:19:52Z\n"));
  EXPECT_TRUE(c.divergences.empty());
  auto rules = BuiltinRules();
  ASSERT_EQ(rules[0].name, "timestamp");
  EXPECT_EQ(c.hid[0], 1u);
  EXPECT_EQ(c.matched[0], 2u);
}

TEST(Compare, AChangedDiffAndMissingRecordsAreDivergences) {
  Entries a = Log("x"), b = Log("x", 0, "other patch");
  b.records.erase(b.records.begin() + 3, b.records.begin() + 6);  // no tool call or result
  Comparison c = CompareLogs(a, b);
  ASSERT_EQ(c.divergences.size(), 3u);
  EXPECT_EQ(c.divergences[0].seq, 3u);
  EXPECT_EQ(c.divergences[0].field, "record");
  EXPECT_EQ(c.divergences[0].replay_seq, -1);
  EXPECT_EQ(c.divergences[1].type, "tool.result");
  EXPECT_EQ(c.divergences[2].type, "result");
  EXPECT_EQ(c.divergences[2].field, "diff.patch");
}

TEST(Compare, ARequestBodyIsComparedAsPrettyJson) {
  Entries a = Log("x"), b = Log("x");
  b.records[1].payload["body"] = R"({"messages":[2]})";
  Comparison c = CompareLogs(a, b);
  ASSERT_EQ(c.divergences.size(), 1u);
  EXPECT_EQ(c.divergences[0].type, "model.request");
  EXPECT_EQ(c.divergences[0].field, "body");
  EXPECT_NE(c.divergences[0].diff.find("-    1\n+    2\n"), std::string::npos)
      << c.divergences[0].diff;
}

TEST(Compare, ExtraRecordsOfTheReplayAreDivergences) {
  Entries a = Log("x"), b = Log("x");
  Entry extra = b.records[3];
  extra.seq = 40;
  b.records.insert(b.records.begin() + 6, extra);
  Comparison c = CompareLogs(a, b);
  ASSERT_EQ(c.divergences.size(), 1u);
  EXPECT_EQ(c.divergences[0].replay_seq, 40);
  EXPECT_EQ(c.divergences[0].expected, "(nothing: the original has no such record)");
}

}  // namespace
}  // namespace kiln::replay
