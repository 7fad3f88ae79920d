#include "controller/run/phases.h"

#include <gtest/gtest.h>

namespace kiln::runner {
namespace {

using namespace std::chrono_literals;

TEST(PhasesTest, LapsFollowOneAnotherAndRepeatsAccumulate) {
  Phases p;
  auto t0 = Phases::Clock::now();
  p.Lap("before", t0);  // from when p was made
  p.Lap("a", t0 + 2ms);
  p.Lap("b", t0 + 5ms);
  p.Lap("a", t0 + 6ms);
  p.Add("c", 0.25);
  ASSERT_EQ(p.list().size(), 4u);
  EXPECT_EQ(p.list()[0].first, "before");
  EXPECT_GE(p.list()[0].second, 0.0);
  EXPECT_EQ(p.list()[1].first, "a");
  EXPECT_DOUBLE_EQ(p.list()[1].second, 3.0);  // 2 ms, then 1 ms more
  EXPECT_EQ(p.list()[2].first, "b");
  EXPECT_DOUBLE_EQ(p.list()[2].second, 3.0);
  EXPECT_EQ(p.list()[3].first, "c");
  EXPECT_DOUBLE_EQ(p.list()[3].second, 0.25);
}

TEST(PhasesTest, OwnCostLeavesOutTheSandboxAndTheAgent) {
  Phases p;
  p.Add("tree", 1.5);
  p.Add("sandbox_start", 4);
  p.Add("agent", 100);
  p.Add("sandbox_exit", 2);
  p.Add("teardown", 0.5);
  EXPECT_DOUBLE_EQ(p.own_ms(), 2.0);
  EXPECT_EQ(p.ToJson(), (nlohmann::json{{"tree", 1500},
                                        {"sandbox_start", 4000},
                                        {"agent", 100000},
                                        {"sandbox_exit", 2000},
                                        {"teardown", 500}}));
}

TEST(PhasesTest, JsonHoldsWholeMicroseconds) {
  Phases p;
  p.Add("x", 1.23456789);
  ASSERT_TRUE(p.ToJson()["x"].is_number_integer());
  EXPECT_EQ(p.ToJson()["x"].get<int64_t>(), 1235);
}

}  // namespace
}  // namespace kiln::runner
