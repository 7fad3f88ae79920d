#include "tests/modelserver/script.h"

#include <gtest/gtest.h>

#include "tests/modelserver/wire.h"

namespace kiln::modelserver {
namespace {

TEST(Script, YamlAndJsonGiveTheSameScript) {
  auto y = ParseScript(
      "replies:\n  - text: '42'\n    tool_calls: [{name: shell, input: {command: ls, n: 3}}]\n");
  auto j = ParseScript(
      R"({"replies": [{"text": "42", "tool_calls": [{"name": "shell", "input": {"command": "ls", "n": 3}}]}]})");
  ASSERT_TRUE(y.ok()) << y.error().message();
  ASSERT_TRUE(j.ok()) << j.error().message();
  EXPECT_EQ(y->replies[0].text, "42");  // quoted in YAML: stays a string
  EXPECT_EQ(y->replies[0].tool_calls[0].input, j->replies[0].tool_calls[0].input);
}

TEST(Script, ErrorsNameTheEntry) {
  auto s = ParseScript("replies:\n  - {text: hi}\n  - {fault: {kind: explode}}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("replies[1].fault.kind: unknown fault 'explode'"),
            std::string::npos)
      << s.error().message();
  s = ParseScript("replies:\n  - {txt: hi}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("replies[0]: unknown member 'txt'"), std::string::npos);
}

TEST(Script, PlayerServesRepeatsRulesAndDefault) {
  auto s = ParseScript(R"(
replies: [{text: a, repeat: 2}, {text: b}]
rules: [{when: {contains: PANIC, tool: shell}, times: 1, reply: {text: calm}}]
default: {text: fallback}
)");
  ASSERT_TRUE(s.ok());
  Player p(std::move(*s));
  std::string step;
  EXPECT_EQ(p.Next({}, &step)->text, "a");
  EXPECT_EQ(p.Next({{"shell", "PANIC now", false}}, &step)->text, "calm");
  EXPECT_EQ(step, "rules[0]");
  EXPECT_EQ(p.Next({{"shell", "PANIC again", false}}, &step)->text, "a");  // times: 1
  EXPECT_EQ(p.Next({}, &step)->text, "b");
  EXPECT_EQ(p.Next({}, &step)->text, "fallback");
  EXPECT_EQ(step, "default");
}

TEST(Wire, AnthropicStreamHasTheEventSequence) {
  Reply r;
  r.text = "hello";
  r.tool_calls.push_back({"", "shell", {{"command", "ls"}}, std::nullopt});
  auto x = Render(Format::kAnthropic, r, {{"stream", true}, {"model", "m"}}, 1, 400);
  ASSERT_TRUE(x.stream);
  std::string all;
  for (const auto& e : x.events) all += e;
  for (const char* ev :
       {"event: message_start", "event: content_block_start", "\"input_json_delta\"",
        "event: content_block_stop", "event: message_delta", "event: message_stop"}) {
    EXPECT_NE(all.find(ev), std::string::npos) << ev;
  }
  EXPECT_NE(all.find("\"input_tokens\":100"), std::string::npos);
}

TEST(Wire, OpenAIErrorsAndLastToolResults) {
  auto x = RenderError(Format::kOpenAI, 429, "insufficient_quota", "quota", 7);
  EXPECT_EQ(x.status, 429);
  EXPECT_NE(x.body.find("\"code\":\"insufficient_quota\""), std::string::npos);
  nlohmann::json req = nlohmann::json::parse(R"({"messages": [
    {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "shell", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "Error: boom"}]})");
  auto last = LastToolResults(Format::kOpenAI, req);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].tool, "shell");
  EXPECT_TRUE(last[0].is_error);
}

}  // namespace
}  // namespace kiln::modelserver
