// Whole loops against the scripted server, in both wire formats, streaming
// and not: the happy path, rules, the stop reasons, and bad tool calls.
#include <unistd.h>

#include "tests/modelserver/loop_fixture.h"

namespace kiln::modelserver {
namespace {

class Loop : public ::testing::TestWithParam<Flavour> {
 protected:
  testutil::TempDir ws_;
};

TEST_P(Loop, SteeringJoinsTheConversationBetweenTurns) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  UniqueFd read_end(p[0]), write_end(p[1]);
  ASSERT_TRUE(
      WriteAll(write_end.get(), "{\"from\": \"alice\", \"message\": \"use tabs\"}\nnot json\n")
          .ok());
  steer::Inbox inbox(read_end.get());
  // The agent's shell writes the second message while the loop runs.
  std::string second =
      "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(write_end.get());
  auto r = RunLoop(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "echo '{\"from\": \"bob\", \"message\": \"also docs\"}' > )" +
                       second + R"("}}]
  - tool_calls: [{name: submit, input: {summary: done}}]
)",
                   GetParam(), ws_, {}, &inbox);
  EXPECT_EQ(r.outcome.status, "submitted") << r.outcome.reason;
  ASSERT_EQ(r.requests.size(), 2u);
  std::string first = r.requests[0].body.dump(), next = r.requests[1].body.dump();
  EXPECT_NE(first.find("Message from alice while you work: use tabs"), std::string::npos);
  EXPECT_EQ(first.find("bob"), std::string::npos);
  EXPECT_NE(next.find("Message from bob while you work: also docs"), std::string::npos) << next;
  EXPECT_EQ(first.find("not json"), std::string::npos);
}

// The loop acts on nothing it could not report: a reply (and its tool call)
// too large for the log is not carried out, and the run ends saying why.
TEST_P(Loop, NothingRunsThatCouldNotBeReported) {
  auto r = RunLoop("replies:\n  - tool_calls: [{name: write, input: {path: big.txt, content: \"" +
                       std::string(30000, 'x') + "\"}}]\n" +
                       "  - tool_calls: [{name: submit, input: {summary: done}}]\n",
                   GetParam(), ws_, {}, nullptr, /*max_event=*/20000);
  EXPECT_EQ(r.outcome.status, "failed");
  EXPECT_NE(r.outcome.reason.find("more than the 20000 a run's log records"), std::string::npos)
      << r.outcome.reason;
  EXPECT_FALSE(std::filesystem::exists(ws_.path() + "/big.txt"))
      << "the write ran though it was never reported";
  for (const auto& e : r.events) EXPECT_NE(e["type"], "tool.call") << e.dump().substr(0, 200);
}

TEST_P(Loop, EditsAFileAndSubmits) {
  ws_.Write("greeting.txt", "hello world\n");
  auto r = RunLoop(R"(
replies:
  - text: "Let me look first."
    tool_calls:
      - {name: read, input: {path: greeting.txt}}
      - {name: shell, input: {command: "wc -l greeting.txt"}}
  - tool_calls:
      - {name: edit, input: {path: greeting.txt, old_string: world, new_string: kiln}}
  - tool_calls:
      - {name: submit, input: {summary: "greeting updated"}}
)",
                   GetParam(), ws_);
  EXPECT_EQ(r.outcome.status, "submitted") << r.outcome.reason;
  EXPECT_EQ(r.outcome.result["summary"], "greeting updated");
  EXPECT_EQ(ws_.Read("greeting.txt"), "hello kiln\n");
  ASSERT_EQ(r.requests.size(), 3u);
  // The second request carries both tool results of the first turn.
  std::string second = r.requests[1].body.dump();
  EXPECT_NE(second.find("hello world"), std::string::npos);
  EXPECT_NE(second.find("1 greeting.txt"), std::string::npos);
  EXPECT_EQ(r.requests[0].body.value("stream", false), GetParam().stream);
  // Events: request/response per turn, call/result per tool, result last.
  EXPECT_EQ(r.Of("model.request").size(), 3u);
  EXPECT_EQ(r.Of("model.response").size(), 3u);
  EXPECT_EQ(r.Of("tool.call").size(), 4u);
  EXPECT_EQ(r.Of("tool.result").size(), 4u);
  EXPECT_EQ(r.events.back()["type"], "result");
  auto resp = r.Of("model.response")[0];
  EXPECT_EQ(resp["status"], 200);
  EXPECT_EQ(resp["request_id"], "req_kiln_1");
  EXPECT_EQ(resp["stop_reason"], "tool_use");
  EXPECT_GT(resp["usage"]["input_tokens"].get<int>(), 0);
  EXPECT_EQ(r.Of("tool.result")[1]["exit_status"], 0);
  EXPECT_EQ(r.outcome.totals["turns"], 3);
}

TEST_P(Loop, SendsNoApiKeyWhenNoneIsConfigured) {
  auto r = RunLoop(R"([{tool_calls: [{name: submit, input: {summary: s}}]}])", GetParam(), ws_);
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_EQ(r.requests[0].headers.count("x-api-key"), 0u);
  EXPECT_EQ(r.requests[0].headers.count("authorization"), 0u);
  if (GetParam().provider == "anthropic") {
    EXPECT_EQ(r.requests[0].headers.at("anthropic-version"), "2023-06-01");
  }
}

TEST_P(Loop, SendsTheApiKeyFromTheEnvironmentWhenStandalone) {
  ::setenv("KILN_TEST_KEY", "sk-test-123", 1);
  auto r = RunLoop(R"([{tool_calls: [{name: submit, input: {summary: s}}]}])", GetParam(), ws_,
                   [](spec::RunSpec& s) { s.model.api_key_env = "KILN_TEST_KEY"; });
  ::unsetenv("KILN_TEST_KEY");
  ASSERT_EQ(r.requests.size(), 1u);
  if (GetParam().provider == "anthropic") {
    EXPECT_EQ(r.requests[0].headers.at("x-api-key"), "sk-test-123");
  } else {
    EXPECT_EQ(r.requests[0].headers.at("authorization"), "Bearer sk-test-123");
  }
}

TEST_P(Loop, GoesThroughTheProxyFromTheEnvironment) {
  // The server doubles as the HTTP proxy: the model host itself does not resolve.
  auto script = ParseScript(R"([{tool_calls: [{name: submit, input: {summary: s}}]}])");
  ASSERT_TRUE(script.ok());
  auto proxy = Server::Start(std::move(*script));
  ASSERT_TRUE(proxy.ok());
  ::setenv("HTTP_PROXY", (*proxy)->anthropic_url().c_str(), 1);
  auto r = RunLoop("[]", GetParam(), ws_, [](spec::RunSpec& s) {
    s.model.base_url =
        GetParam().provider == "anthropic" ? "http://model.invalid" : "http://model.invalid/v1";
  });
  ::unsetenv("HTTP_PROXY");
  EXPECT_EQ(r.outcome.status, "submitted") << r.outcome.reason;
  auto seen = (*proxy)->requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target.rfind("http://model.invalid/", 0), 0u) << seen[0].target;
}

TEST_P(Loop, RulesAnswerTheLastToolResult) {
  auto r = RunLoop(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "echo TESTS FAILED; exit 1"}}]
rules:
  - when: {contains: "TESTS FAILED", tool: shell}
    times: 1
    reply: {tool_calls: [{name: shell, input: {command: "echo TESTS PASSED"}}]}
  - when: {contains: "TESTS PASSED"}
    reply: {tool_calls: [{name: submit, input: {summary: fixed}}]}
)",
                   GetParam(), ws_);
  EXPECT_EQ(r.outcome.status, "submitted") << r.outcome.reason;
  ASSERT_EQ(r.requests.size(), 3u);
  EXPECT_EQ(r.requests[1].step, "rules[0]");
  EXPECT_EQ(r.requests[2].step, "rules[1]");
}

TEST_P(Loop, InvalidResultGoesBackToTheModel) {
  auto r = RunLoop(R"(
- tool_calls: [{name: submit, input: {result: "no summary"}}]
- tool_calls: [{name: submit, input: {summary: "now valid"}}]
)",
                   GetParam(), ws_);
  EXPECT_EQ(r.outcome.status, "submitted");
  auto results = r.Of("tool.result");
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0]["is_error"].get<bool>());
  EXPECT_NE(results[0]["output"].get<std::string>().find("missing required property 'summary'"),
            std::string::npos);
  EXPECT_NE(r.requests[1].body.dump().find("missing required property"), std::string::npos);
}

TEST_P(Loop, UnknownToolsBadArgumentsAndBrokenJsonAreToolErrors) {
  auto r = RunLoop(R"(
- tool_calls:
    - {name: teleport, input: {to: mars}}
    - {name: read, input: {path: 7}}
    - {name: write, raw_arguments: "{\"path\": \"x\", \"content\": "}
- tool_calls: [{name: submit, input: {summary: s}}]
)",
                   GetParam(), ws_);
  EXPECT_EQ(r.outcome.status, "submitted") << r.outcome.reason;
  auto results = r.Of("tool.result");
  ASSERT_EQ(results.size(), 4u);
  EXPECT_NE(results[0]["output"].get<std::string>().find("unknown tool 'teleport'"),
            std::string::npos);
  EXPECT_NE(results[1]["output"].get<std::string>().find("/path: expected string"),
            std::string::npos);
  EXPECT_NE(results[2]["output"].get<std::string>().find("not a JSON object"), std::string::npos)
      << results[2]["output"];
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(results[i]["is_error"].get<bool>());
}

TEST_P(Loop, EndTurnWithoutSubmitIsNudgedThenFails) {
  auto r = RunLoop(R"([{text: "I think I am done.", repeat: -1}])", GetParam(), ws_);
  EXPECT_EQ(r.outcome.status, "failed");
  EXPECT_NE(r.outcome.reason.find("without calling a tool or submitting"), std::string::npos);
  ASSERT_EQ(r.requests.size(), 4u);
  EXPECT_NE(r.requests[1].body.dump().find("only ends when you call the submit tool"),
            std::string::npos);
}

TEST_P(Loop, MaxTokensAndPauseTurnContinue) {
  auto r = RunLoop(R"(
- {text: "a long answer that was cu", stop_reason: max_tokens}
- {text: "working on it", stop_reason: pause_turn}
- tool_calls: [{name: submit, input: {summary: s}}]
)",
                   GetParam(), ws_);
  EXPECT_EQ(r.outcome.status, "submitted") << r.outcome.reason;
  ASSERT_EQ(r.requests.size(), 3u);
  EXPECT_NE(r.requests[1].body.dump().find("cut off at max_tokens"), std::string::npos);
  auto responses = r.Of("model.response");
  EXPECT_EQ(responses[0]["stop_reason"], "max_tokens");
  // OpenAI has no pause_turn; the server sends it as a finish_reason verbatim.
  EXPECT_EQ(responses[1]["stop_reason"], "pause_turn");
}

TEST_P(Loop, RefusalEndsTheRun) {
  auto r = RunLoop(R"([{text: "I can't help with that.", stop_reason: refusal}])", GetParam(), ws_);
  EXPECT_EQ(r.outcome.status, "refused");
  EXPECT_NE(r.outcome.reason.find("I can't help with that."), std::string::npos);
  EXPECT_EQ(loop::ExitStatus(r.outcome), 5);
  EXPECT_EQ(r.events.back()["payload"]["outcome"], "refused");
}

INSTANTIATE_TEST_SUITE_P(Formats, Loop, ::testing::ValuesIn(AllFlavours()), Name);

}  // namespace
}  // namespace kiln::modelserver
