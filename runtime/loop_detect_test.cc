#include "runtime/loop_detect.h"

#include <gtest/gtest.h>

namespace kiln::loop_detect {
namespace {

TEST(LoopDetect, SameCallSameResultReachesTheLimit) {
  Detector d(3);
  nlohmann::json in = {{"command", "make"}, {"timeout_ms", 5}};
  nlohmann::json reordered = nlohmann::json::parse(R"({"timeout_ms":5,"command":"make"})");
  EXPECT_FALSE(d.Record(1, "c1", "shell", in, "fail", false));
  EXPECT_FALSE(
      d.Record(2, "c2", "shell", in, "different", false));  // progress resets nothing, but differs
  EXPECT_FALSE(d.Record(3, "c3", "shell", reordered, "fail", false));
  auto ev = d.Record(5, "c5", "shell", in, "fail", false);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->call_ids, (std::vector<std::string>{"c1", "c3", "c5"}));
  EXPECT_EQ(ev->turns, (std::vector<uint64_t>{1, 3, 5}));
  EXPECT_EQ(ev->ToJson()["repeats"], 3);
  EXPECT_EQ(ev->ToJson()["result_preview"], "fail");
}

TEST(LoopDetect, ErrorsAndSuccessesAreDifferentResults) {
  Detector d(2);
  EXPECT_FALSE(d.Record(1, "a", "read", {{"path", "x"}}, "x", false));
  EXPECT_FALSE(d.Record(2, "b", "read", {{"path", "x"}}, "x", true));
  EXPECT_FALSE(d.Record(3, "c", "write", {{"path", "x"}}, "x", false));
  EXPECT_TRUE(d.Record(4, "d", "read", {{"path", "x"}}, "x", true));
}

}  // namespace
}  // namespace kiln::loop_detect
