#include "runtime/budget.h"

#include <gtest/gtest.h>

namespace kiln::budget {
namespace {

model::Usage U(uint64_t in, uint64_t out) {
  model::Usage u;
  u.input_tokens = in;
  u.output_tokens = out;
  return u;
}

TEST(Budget, EachLimitNamesItself) {
  auto start = Budget::Clock::now();
  spec::Budgets b;
  b.max_turns = 2;
  Budget turns(b, std::nullopt, start);
  turns.AddTurn();
  EXPECT_FALSE(turns.Exhausted(start).has_value());
  turns.AddTurn();
  EXPECT_EQ(turns.Exhausted(start), "turns");

  b = {};
  b.max_input_tokens = 100;
  Budget in(b, std::nullopt, start);
  in.AddUsage(U(60, 0));
  EXPECT_FALSE(in.Exhausted(start));
  in.AddUsage(U(40, 0));  // a retried attempt's tokens count the same
  EXPECT_EQ(in.Exhausted(start), "input_tokens");

  b = {};
  b.max_output_tokens = 10;
  Budget out(b, std::nullopt, start);
  out.AddUsage(U(0, 4));
  EXPECT_EQ(out.RemainingOutputTokens(), 6u);
  out.AddUsage(U(0, 6));
  EXPECT_EQ(out.Exhausted(start), "output_tokens");

  b = {};
  b.max_wall_ms = 1000;
  Budget wall(b, std::nullopt, start);
  EXPECT_EQ(wall.RemainingWallMs(start + std::chrono::milliseconds(400)), 600u);
  EXPECT_EQ(wall.Exhausted(start + std::chrono::milliseconds(1000)), "wall_time");

  b = {};
  b.max_tool_output_bytes = 10;
  Budget tool(b, std::nullopt, start);
  tool.AddToolOutput(10);
  EXPECT_EQ(tool.Exhausted(start), "tool_output_bytes");
}

TEST(Budget, CostUsesThePriceTableIncludingCache) {
  spec::Budgets b;
  b.max_cost_usd = 1.0;
  spec::Price p{3.0, 15.0, 0.3, 3.75};
  Budget cost(b, p);
  model::Usage u = U(100'000, 20'000);  // 0.30 + 0.30
  u.cache_read_tokens = 1'000'000;      // 0.30
  cost.AddUsage(u);
  EXPECT_NEAR(cost.cost_usd(), 0.90, 1e-9);
  EXPECT_FALSE(cost.Exhausted());
  cost.AddUsage(U(0, 10'000));  // +0.15
  EXPECT_EQ(cost.Exhausted(), "cost");
  EXPECT_EQ(cost.Totals()["cost_microusd"], 1'050'000);
}

}  // namespace
}  // namespace kiln::budget
