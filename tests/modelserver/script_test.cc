#include "tests/modelserver/script.h"

#include <gtest/gtest.h>

#include "tests/modelserver/player.h"
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
  auto next = [&](std::vector<ToolResultSeen> last) { return p.Next({"", "", std::move(last)}); };
  EXPECT_EQ(next({}).reply->text, "a");
  Served calm = next({{"shell", "PANIC now", false}});
  EXPECT_EQ(calm.reply->text, "calm");
  EXPECT_EQ(calm.step, "rules[0]");
  EXPECT_EQ(next({{"shell", "PANIC again", false}}).reply->text, "a");  // times: 1
  EXPECT_EQ(next({}).reply->text, "b");
  Served fallback = next({});
  EXPECT_EQ(fallback.reply->text, "fallback");
  EXPECT_EQ(fallback.step, "default");
  EXPECT_FALSE(fallback.conversation);
  EXPECT_EQ(fallback.cursor, "");
}

constexpr const char* kTriage = "You are kiln's triage agent.";
constexpr const char* kReview = "You are kiln's review agent.";

// The text of the reply to a request with this system prompt and task, with
// its step: "a @ conversations[0].replies[0]"; "exhausted" when none.
std::string Ask(Player& p, const std::string& system, const std::string& task,
                std::vector<ToolResultSeen> last = {}) {
  Served s = p.Next({system, task, std::move(last)});
  return (s.reply ? s.reply->text + " @ " : "") + s.step;
}

Player Load(const std::string& yaml) {
  auto s = ParseScript(yaml);
  EXPECT_TRUE(s.ok()) << s.error().message();
  return Player(s.ok() ? std::move(*s) : Script{});
}

TEST(Conversation, PickedBySystemPromptOrFirstUserMessage) {
  Player p = Load(R"(
conversations:
  - match: "You are kiln's triage agent"
    replies: [{text: t1}, {text: t2}]
  - match: "You are kiln's review agent"
    replies: [{text: r1}]
    default: {text: r-default}
  - match: "[lint run]"
    replies: [{text: lint}]
)");
  EXPECT_EQ(Ask(p, kReview, "Review run 7"), "r1 @ conversations[1].replies[0]");
  EXPECT_EQ(Ask(p, kTriage, "Triage run 8"), "t1 @ conversations[0].replies[0]");
  EXPECT_EQ(Ask(p, kReview, "Review run 7"), "r-default @ conversations[1].default");
  EXPECT_EQ(Ask(p, kTriage, "Triage run 8"), "t2 @ conversations[0].replies[1]");
  EXPECT_EQ(Ask(p, kTriage, "Triage run 8"), "conversations[0].exhausted");
  EXPECT_EQ(Ask(p, "a system prompt", "[lint run] check"), "lint @ conversations[2].replies[0]");
  // The first conversation that matches wins, wherever it matches.
  EXPECT_EQ(Ask(p, kTriage, "[lint run] Review run 9"), "t1 @ conversations[0].replies[0]");
}

TEST(Conversation, EachRunOfARoleHasItsOwnCursor) {
  Player p = Load(R"(
conversations:
  - match: "You are kiln's triage agent"
    replies: [{text: one}, {text: two}]
    rules: [{when: {contains: PANIC}, times: 1, reply: {text: calm}}]
)");
  // Interleaved: neither run takes the other's replies.
  EXPECT_EQ(Ask(p, kTriage, "run 41: triage"), "one @ conversations[0].replies[0]");
  EXPECT_EQ(Ask(p, kTriage, "run 42: triage"), "one @ conversations[0].replies[0]");
  EXPECT_EQ(Ask(p, kTriage, "run 42: triage"), "two @ conversations[0].replies[1]");
  EXPECT_EQ(Ask(p, kTriage, "run 41: triage"), "two @ conversations[0].replies[1]");
  // Rule hits are counted per run too.
  EXPECT_EQ(Ask(p, kTriage, "run 41: triage", {{"shell", "PANIC", false}}),
            "calm @ conversations[0].rules[0]");
  EXPECT_EQ(Ask(p, kTriage, "run 42: triage", {{"shell", "PANIC", false}}),
            "calm @ conversations[0].rules[0]");
  EXPECT_EQ(Ask(p, kTriage, "run 41: triage", {{"shell", "PANIC", false}}),
            "conversations[0].exhausted");
  Served a = p.Next({kTriage, "run 41: triage", {}});
  Served b = p.Next({kTriage, "run 42: triage", {}});
  EXPECT_EQ(a.conversation, 0u);
  // hex SHA-256 of the first user message
  EXPECT_EQ(p.Next({kTriage, "abc", {}}).cursor,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(a.cursor.size(), 64u);
  EXPECT_NE(a.cursor, b.cursor);
}

TEST(Conversation, CapturesFillPlaceholdersInTextAndToolInput) {
  Player p = Load(R"(
conversations:
  - match: "You are kiln's triage agent"
    capture: {issue: "Issue #", pr: "PR #"}
    replies:
      - text: "Looking at issue {{issue}}"
        tool_calls:
          - name: shell
            input:
              command: "gh issue view {{issue}} && echo {{issue}}"
              args: ["--issue={{issue}}", {nested: "#{{issue}}", n: 3}]
              keep: "{{ issue }} {{nope}} {{pr}} {{{issue}}}"
          - {name: write, raw_arguments: '{"path": "{{issue}}.md"'}
)");
  Served s = p.Next({kTriage, "Issue #abc is not it. Triage Issue #1234 (run 9)", {}});
  ASSERT_TRUE(s.reply);
  EXPECT_EQ(s.reply->text, "Looking at issue 1234");
  const nlohmann::json& in = s.reply->tool_calls[0].input;
  EXPECT_EQ(in["command"], "gh issue view 1234 && echo 1234");
  EXPECT_EQ(in["args"][0], "--issue=1234");
  EXPECT_EQ(in["args"][1]["nested"], "#1234");
  EXPECT_EQ(in["args"][1]["n"], 3);
  EXPECT_EQ(in["keep"], "{{ issue }} {{nope}} {{pr}} {1234}");
  EXPECT_EQ(*s.reply->tool_calls[1].raw_arguments, "{\"path\": \"1234.md\"");
  ASSERT_EQ(s.notes.size(), 2u);
  EXPECT_EQ(s.notes[0], "unknown placeholder {{nope}} left verbatim");
  EXPECT_EQ(s.notes[1],
            "placeholder {{pr}} left verbatim: no digits after 'PR #' in the first user message");
}

TEST(Conversation, TopLevelRepliesAnswerWhatNoConversationMatches) {
  Player p = Load(R"(
conversations:
  - match: "You are kiln's triage agent"
    replies: [{text: triage}]
replies: [{text: "top {{issue}}"}, {text: top2}]
)");
  Served s = p.Next({"You are someone else", "Issue #5", {}});
  EXPECT_EQ(s.reply->text, "top {{issue}}");  // no placeholders at top level
  EXPECT_TRUE(s.notes.empty());
  EXPECT_FALSE(s.conversation);
  EXPECT_EQ(s.step, "replies[0]");
  // One cursor for all of them, as before conversations.
  EXPECT_EQ(Ask(p, "", "another run"), "top2 @ replies[1]");
  EXPECT_EQ(Ask(p, kTriage, "run 1"), "triage @ conversations[0].replies[0]");
  EXPECT_EQ(Ask(p, "", "a third run"), "exhausted");

  Player none = Load("conversations: [{match: \"You are kiln's triage agent\", replies: []}]\n");
  Served x = none.Next({"other", "task", {}});
  EXPECT_FALSE(x.reply);
  EXPECT_EQ(x.step, "exhausted");
}

TEST(Conversation, MalformedConversationsNameThePath) {
  struct Case {
    const char* yaml;
    const char* error;
  } cases[] = {
      {"conversations:\n  - match: a\n  - replies: [{text: x}]\n",
       "conversations[1].match: required"},
      {"conversations: [{match: 42}]\n", "conversations[0].match: must be a string"},
      {"conversations: [{match: [a]}]\n", "conversations[0].match: must be a string"},
      {"conversations: [{match: ''}]\n", "conversations[0].match: must not be empty"},
      {"conversations: [{match: a, replys: []}]\n", "conversations[0]: unknown member 'replys'"},
      {"conversations: [{match: a, capture: [issue]}]\n",
       "conversations[0].capture: must be a map of placeholder names to markers"},
      {"conversations: [{match: a, capture: {issue: 3}}]\n",
       "conversations[0].capture.issue: must be a non-empty string"},
      {"conversations: [{match: a, capture: {'is sue': 'Issue #'}}]\n",
       "conversations[0].capture.is sue: a placeholder name is letters, digits and _"},
      {"conversations: [{match: a, replies: [{txt: x}]}]\n",
       "conversations[0].replies[0]: unknown member 'txt'"},
      {"conversations: [{match: a, rules: [{when: {contains: x}}]}]\n",
       "conversations[0].rules[0] needs a reply"},
      {"conversations: [{match: a, default: {fault: {kind: boom}}}]\n",
       "conversations[0].default.fault.kind: unknown fault 'boom'"},
      {"conversations: [{match: a, replies: {text: x}}]\n",
       "conversations[0].replies: must be a list"},
      {"conversations: {match: a}\n", "conversations: must be a list"},
      {"conversations: [just-a-string]\n", "conversations[0]: must be a map"},
  };
  for (const auto& c : cases) {
    auto s = ParseScript(c.yaml);
    ASSERT_FALSE(s.ok()) << c.yaml;
    EXPECT_NE(s.error().message().find(c.error), std::string::npos)
        << c.yaml << " -> " << s.error().message();
  }
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

TEST(Wire, SeenFindsSystemPromptAndTaskInBothFormats) {
  nlohmann::json a = nlohmann::json::parse(R"({
    "system": [{"type": "text", "text": "You are kiln's review agent."}, {"type": "text", "text": "Be brief."}],
    "messages": [
      {"role": "user", "content": [{"type": "text", "text": "Review Issue #9"},
                                   {"type": "text", "text": "[kiln: 4 earlier turns were removed to fit the context window]"}]},
      {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
      {"role": "user", "content": "Later"}]})");
  RequestSeen s = Seen(Format::kAnthropic, a);
  EXPECT_EQ(s.system, "You are kiln's review agent.\nBe brief.");
  EXPECT_EQ(s.first_user, "Review Issue #9");
  a["system"] = "plain";
  EXPECT_EQ(Seen(Format::kAnthropic, a).system, "plain");

  nlohmann::json o = nlohmann::json::parse(R"({"messages": [
    {"role": "system", "content": "You are kiln's triage agent."},
    {"role": "developer", "content": [{"type": "text", "text": "Dev note."}]},
    {"role": "user", "content": "Triage Issue #3[kiln: 12 earlier turns were removed to fit the context window]"},
    {"role": "user", "content": "second"}]})");
  s = Seen(Format::kOpenAI, o);
  EXPECT_EQ(s.system, "You are kiln's triage agent.\nDev note.");
  EXPECT_EQ(s.first_user, "Triage Issue #3");
  o["messages"][2]["content"] =
      "Quoting [kiln: x earlier turns were removed to fit the context window]";
  EXPECT_EQ(Seen(Format::kOpenAI, o).first_user, o["messages"][2]["content"]);
}

}  // namespace
}  // namespace kiln::modelserver
