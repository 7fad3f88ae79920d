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

}  // namespace
}  // namespace kiln::spec
