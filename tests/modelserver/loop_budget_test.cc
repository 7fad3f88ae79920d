// Each budget ends the run as budget_exhausted naming itself; tokens of
// failed attempts count; loop detection ends it as stuck with evidence; the
// conversation is compacted near the context window.
#include "tests/modelserver/loop_fixture.h"

namespace kiln::modelserver {
namespace {

const Flavour kAnthropic{"anthropic", true};
const Flavour kOpenAI{"openai", false};

// A model that never submits: a new shell command every turn.
const char* kBusy = R"(
- {tool_calls: [{name: shell, input: {command: "echo 1"}}], usage: {input_tokens: 100, output_tokens: 10}}
- {tool_calls: [{name: shell, input: {command: "echo 2"}}], usage: {input_tokens: 100, output_tokens: 10}}
- {tool_calls: [{name: shell, input: {command: "echo 3"}}], usage: {input_tokens: 100, output_tokens: 10}}
- {tool_calls: [{name: shell, input: {command: "echo 4"}}], usage: {input_tokens: 100, output_tokens: 10}}
- {tool_calls: [{name: shell, input: {command: "echo 5"}}], usage: {input_tokens: 100, output_tokens: 10}}
)";

bool HasFloat(const nlohmann::json& j) {
  if (j.is_number_float()) return true;
  if (j.is_structured()) {
    for (const auto& v : j) {
      if (HasFloat(v)) return true;
    }
  }
  return false;
}

void ExpectExhausted(const Run& r, const std::string& which) {
  EXPECT_EQ(r.outcome.status, "budget_exhausted");
  EXPECT_EQ(r.outcome.reason, which);
  EXPECT_EQ(loop::ExitStatus(r.outcome), 3);
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(r.events.back()["payload"]["outcome"], "budget_exhausted");
  EXPECT_EQ(r.events.back()["payload"]["reason"], which);
}

TEST(Budgets, Turns) {
  testutil::TempDir ws;
  auto r = RunLoop(kBusy, kAnthropic, ws, [](spec::RunSpec& s) { s.budgets.max_turns = 2; });
  ExpectExhausted(r, "turns");
  EXPECT_EQ(r.requests.size(), 2u);
  EXPECT_EQ(r.outcome.totals["turns"], 2);
}

TEST(Budgets, InputAndOutputTokens) {
  testutil::TempDir ws;
  auto r = RunLoop(kBusy, kOpenAI, ws, [](spec::RunSpec& s) { s.budgets.max_input_tokens = 250; });
  ExpectExhausted(r, "input_tokens");
  EXPECT_EQ(r.requests.size(), 3u);
  r = RunLoop(kBusy, kAnthropic, ws, [](spec::RunSpec& s) { s.budgets.max_output_tokens = 25; });
  ExpectExhausted(r, "output_tokens");
  EXPECT_EQ(r.requests.size(), 3u);
  // The last request asked for no more than what was left of the budget.
  EXPECT_EQ(r.requests[2].body["max_tokens"], 5);
}

TEST(Budgets, TokensOfFailedAttemptsCount) {
  testutil::TempDir ws;
  // The stream is cut after message_start, which already reported 400 input tokens.
  auto r = RunLoop(R"(
- {fault: {kind: cut, after_events: 2}, usage: {input_tokens: 400, output_tokens: 1}, repeat: 2}
- {tool_calls: [{name: submit, input: {summary: s}}], usage: {input_tokens: 400, output_tokens: 1}}
)",
                   kAnthropic, ws, [](spec::RunSpec& s) { s.budgets.max_input_tokens = 700; });
  ExpectExhausted(r, "input_tokens");
  EXPECT_EQ(r.requests.size(), 2u);  // the third attempt was never sent
  EXPECT_EQ(r.outcome.totals["input_tokens"], 800);
}

TEST(Budgets, Cost) {
  testutil::TempDir ws;
  auto r = RunLoop(kBusy, kOpenAI, ws, [](spec::RunSpec& s) {
    s.prices["scripted-model"] = {1000.0, 10000.0, 100.0, 1250.0};  // $0.2 per turn here
    s.budgets.max_cost_usd = 0.5;
  });
  ExpectExhausted(r, "cost");
  EXPECT_EQ(r.requests.size(), 3u);
  EXPECT_EQ(r.outcome.totals["cost_microusd"], 600'000);
  // The session log's canonical JSON refuses floats: none in any event.
  for (const auto& e : r.events) EXPECT_FALSE(HasFloat(e)) << e.dump();
}

TEST(Budgets, WallTimeBoundsShellCommandsAndSlowReplies) {
  testutil::TempDir ws;
  auto start = std::chrono::steady_clock::now();
  auto r = RunLoop(R"(
- {tool_calls: [{name: shell, input: {command: "sleep 20"}}]}
- {tool_calls: [{name: submit, input: {summary: s}}], delay_ms: 3000}
)",
                   kAnthropic, ws, [](spec::RunSpec& s) { s.budgets.max_wall_ms = 400; });
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  ExpectExhausted(r, "wall_time");
  EXPECT_LT(ms, 2500);
  auto results = r.Of("tool.result");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_NE(results[0]["output"].get<std::string>().find("timed out"), std::string::npos);
}

TEST(Budgets, ToolOutputBytes) {
  testutil::TempDir ws;
  auto r = RunLoop(R"(
- {tool_calls: [{name: shell, input: {command: "seq 1 300"}}]}
- {tool_calls: [{name: shell, input: {command: "seq 1 301"}}]}
- {tool_calls: [{name: submit, input: {summary: s}}]}
)",
                   kOpenAI, ws, [](spec::RunSpec& s) { s.budgets.max_tool_output_bytes = 1500; });
  ExpectExhausted(r, "tool_output_bytes");
  EXPECT_EQ(r.requests.size(), 2u);
}

TEST(LoopDetection, RepeatedCallWithTheSameResultIsStuck) {
  testutil::TempDir ws;
  auto r = RunLoop(
      R"([{tool_calls: [{name: shell, input: {command: "make test || echo FAIL"}}], repeat: -1}])",
      kAnthropic, ws);
  EXPECT_EQ(r.outcome.status, "stuck");
  EXPECT_EQ(loop::ExitStatus(r.outcome), 4);
  EXPECT_EQ(r.requests.size(), 3u);
  const auto& ev = r.events.back()["payload"]["evidence"];
  EXPECT_EQ(ev["tool"], "shell");
  EXPECT_EQ(ev["input"]["command"], "make test || echo FAIL");
  EXPECT_EQ(ev["repeats"], 3);
  EXPECT_EQ(ev["turns"], nlohmann::json({1, 2, 3}));
  EXPECT_EQ(ev["call_ids"].size(), 3u);
}

TEST(LoopDetection, AlternatingCyclesAreCaughtToo) {
  testutil::TempDir ws;
  auto r = RunLoop(R"(
- {tool_calls: [{name: read, input: {path: a}}]}
- {tool_calls: [{name: read, input: {path: b}}]}
- {tool_calls: [{name: read, input: {path: a}}]}
- {tool_calls: [{name: read, input: {path: b}}]}
- {tool_calls: [{name: read, input: {path: a}}]}
- {tool_calls: [{name: submit, input: {summary: s}}]}
)",
                   kOpenAI, ws);
  EXPECT_EQ(r.outcome.status, "stuck");
  EXPECT_EQ(r.events.back()["payload"]["evidence"]["input"]["path"], "a");
}

TEST(Compaction, OldToolOutputIsElidedNearTheContextWindow) {
  testutil::TempDir ws;
  ws.Write("big.txt", std::string(20000, 'x') + "\n");
  auto r = RunLoop(R"(
- {tool_calls: [{name: read, input: {path: big.txt}}]}
- {tool_calls: [{name: shell, input: {command: "echo a"}}]}
- {tool_calls: [{name: shell, input: {command: "echo b"}}]}
- {tool_calls: [{name: submit, input: {summary: s}}]}
)",
                   kAnthropic, ws, [](spec::RunSpec& s) {
                     s.model.context_window = 6000;
                     s.compaction.keep_recent_turns = 1;
                     s.limits.max_output_bytes = 30000;
                     s.limits.read_max_line_chars = 30000;
                   });
  EXPECT_EQ(r.outcome.status, "submitted") << r.outcome.reason;
  ASSERT_EQ(r.requests.size(), 4u);
  EXPECT_NE(r.requests[1].body.dump().find(std::string(20000, 'x')), std::string::npos);
  std::string last = r.requests[3].body.dump();
  EXPECT_EQ(last.find(std::string(20000, 'x')), std::string::npos);
  EXPECT_NE(last.find("elided by compaction"), std::string::npos);
  bool logged = false;
  for (const auto& rq : r.Of("model.request")) logged |= rq.contains("compaction");
  EXPECT_TRUE(logged);
}

}  // namespace
}  // namespace kiln::modelserver
