#include "runtime/spec.h"

#include <gtest/gtest.h>

namespace kiln::spec {
namespace {

using nlohmann::json;

json Minimal() {
  return {{"role", "implement"}, {"task", "fix it"}, {"model", {{"name", "claude-x"}}}};
}

TEST(Spec, DefaultsAreTheDocumentedOnes) {
  auto s = Parse(Minimal());
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->workspace, "/workspace");
  EXPECT_EQ(s->model.provider, "anthropic");
  EXPECT_EQ(s->model.base_url, "https://api.anthropic.com");
  EXPECT_EQ(s->model.api_key_env, "ANTHROPIC_API_KEY");
  EXPECT_EQ(s->model.max_tokens, 8192u);
  EXPECT_EQ(s->model.context_window, 200000u);
  EXPECT_TRUE(s->model.stream);
  EXPECT_EQ(s->budgets.max_turns, 50u);
  EXPECT_EQ(s->budgets.max_wall_ms, 0u);
  EXPECT_EQ(s->tools.size(), 6u);
  EXPECT_EQ(s->retry.max_attempts, 8u);
  EXPECT_EQ(s->retry.initial_backoff_ms, 1000u);
  EXPECT_EQ(s->loop_repeat_limit, 3u);
  EXPECT_EQ(s->limits.max_output_bytes, 32u * 1024);
  EXPECT_EQ(s->result_schema, json({{"type", "object"}}));
}

TEST(Spec, OpenAIDefaultsAndPrices) {
  json j = Minimal();
  j["model"]["provider"] = "openai";
  j["prices"] = {{"claude-x", {{"input_per_mtok", 2.0}, {"output_per_mtok", 8.0}}}};
  j["budgets"] = {{"max_cost_usd", 1.5}};
  auto s = Parse(j);
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->model.base_url, "https://api.openai.com/v1");
  EXPECT_EQ(s->model.api_key_env, "OPENAI_API_KEY");
  EXPECT_DOUBLE_EQ(s->prices["claude-x"].cache_read_per_mtok, 0.2);
}

TEST(Spec, ErrorsNameTheMember) {
  auto expect = [](json j, const std::string& needle) {
    auto s = Parse(j);
    ASSERT_FALSE(s.ok()) << j.dump();
    EXPECT_NE(s.error().message().find(needle), std::string::npos) << s.error().message();
  };
  json j = Minimal();
  j["budgets"] = {{"max_turn", 3}};
  expect(j, "unknown member 'budgets.max_turn'");
  j = Minimal();
  j["budgets"] = {{"max_turns", -1}};
  expect(j, "'budgets.max_turns' must be a non-negative integer");
  j = Minimal();
  j.erase("task");
  expect(j, "'task' is required");
  j = Minimal();
  j["model"]["provider"] = "gemini";
  expect(j, "'model.provider' must be");
  j = Minimal();
  j["tools"] = {{"allowed", {"shell", "rm"}}};
  expect(j, "unknown tool 'rm'");
  j = Minimal();
  j["budgets"] = {{"max_cost_usd", 1}};
  expect(j, "'prices' has no entry for model 'claude-x'");
  j = Minimal();
  j["result_schema"] = {{"type", "object"}, {"oneOf", json::array()}};
  expect(j, "'result_schema': schema keyword 'oneOf'");
  auto t = ParseText("{", "spec.json");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message().find("run spec 'spec.json' is not valid JSON"), std::string::npos);
}

// Every member set away from its default: what ToJson writes, Parse reads
// back unchanged, so nothing the controller fills is lost on the way.
TEST(Spec, ParseReadsBackWhatToJsonWrites) {
  RunSpec s;
  s.role = "review";
  s.skill = "You review.";
  s.task = "look at #4";
  s.workspace = "/w";
  s.model = {"openai", "gpt-x", "http://127.0.0.1:3128/gateway/openai", "KEY", 100, 1000, false, 1,
             2,        3};
  s.budgets = {7, 1, 2, 3, 4.5, 6};
  s.prices["gpt-x"] = {1.5, 2.5, 0.25, 3.25};
  s.tools = {"read", "submit"};
  s.limits = {300, 1, 2, 3, 4, 5, 6, 7};
  s.result_schema = {{"type", "object"}, {"required", {"verdict"}}};
  s.retry = {2, 10, 20, 30, 1.5};
  s.loop_repeat_limit = 5;
  s.compaction = {0.5, 2};
  auto back = Parse(ToJson(s));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_TRUE(*back == s) << ToJson(*back).dump() << "\n" << ToJson(s).dump();

  // Left empty, the provider's defaults are filled in.
  s.model.base_url.clear();
  s.model.api_key_env.clear();
  back = Parse(ToJson(s));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->model.base_url, "https://api.openai.com/v1");
  EXPECT_EQ(back->model.api_key_env, "OPENAI_API_KEY");
}

TEST(Spec, SectionsAreReadOverWhatTheyHold) {
  Model m;
  m.name = "from-config";
  m.max_tokens = 100;
  ASSERT_FALSE(ReadModel({{"max_tokens", 200}}, &m));
  EXPECT_EQ(m.name, "from-config");
  EXPECT_EQ(m.max_tokens, 200u);

  Budgets b;
  ASSERT_FALSE(ReadBudgets({{"max_turns", 40}}, &b));
  ASSERT_FALSE(ReadBudgets({{"max_wall_ms", 9}}, &b));
  EXPECT_EQ(b.max_turns, 40u);
  EXPECT_EQ(b.max_wall_ms, 9u);
}

// The member at fault is given as data, so a caller (a skill's front
// matter) can point at its own line for it without reading the message.
TEST(Spec, FaultsNameTheMemberAsData) {
  Budgets b;
  auto f = ReadBudgets({{"max_turns", "many"}}, &b);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->member, "budgets.max_turns");
  EXPECT_EQ(f->message, "'budgets.max_turns' must be a non-negative integer");
  EXPECT_EQ(b.max_turns, 50u);  // untouched

  Model m;
  f = ReadModel({{"nmae", "x"}}, &m);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->member, "model.nmae");
  f = ReadModel(json::array(), &m);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->member, "model");
  EXPECT_EQ(f->message, "model must be an object");

  RunSpec s;
  s.role = "r";
  s.task = "t";
  s.model.name = "m";
  EXPECT_FALSE(Check(s));
  s.tools = {"shell", "rm"};
  f = Check(s);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->member, "tools.allowed");
  s.tools = {"shell"};
  s.budgets.max_cost_usd = 1;
  f = Check(s);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->member, "budgets.max_cost_usd");
  s.result_schema = {{"type", 3}};
  f = Check(s);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->member, "result_schema");
}

}  // namespace
}  // namespace kiln::spec
