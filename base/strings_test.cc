#include "base/strings.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(ParseSizeTest, AcceptsUnits) {
  EXPECT_EQ(*ParseSize("4096", "--memory"), 4096u);
  EXPECT_EQ(*ParseSize("64k", "--memory"), 64u << 10);
  EXPECT_EQ(*ParseSize("512M", "--memory"), 512ull << 20);
  EXPECT_EQ(*ParseSize("2GiB", "--memory"), 2ull << 30);
  EXPECT_EQ(*ParseSize("3gb", "--memory"), 3ull << 30);
  EXPECT_EQ(*ParseSize(" 1T ", "--memory"), 1ull << 40);
}

TEST(ParseSizeTest, RejectsGarbageNamingTheOption) {
  for (const char* bad : {"", "M", "12Q", "-5M", "1.5G", "99999999999999999999", "20000000T"}) {
    auto r = ParseSize(bad, "--memory");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("--memory"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(std::string("'") + bad), std::string::npos)
        << r.error().message();
  }
}

TEST(ParseDurationTest, AcceptsUnits) {
  EXPECT_EQ(*ParseDurationMs("250ms", "--timeout"), 250u);
  EXPECT_EQ(*ParseDurationMs("30", "--timeout"), 30'000u);
  EXPECT_EQ(*ParseDurationMs("30s", "--timeout"), 30'000u);
  EXPECT_EQ(*ParseDurationMs("5m", "--timeout"), 300'000u);
  EXPECT_EQ(*ParseDurationMs("1h", "--timeout"), 3'600'000u);
  EXPECT_EQ(*ParseDurationMs("7d", "--timeout"), 604'800'000u);
}

TEST(ParseDurationTest, RejectsGarbage) {
  for (const char* bad : {"", "s", "10x", "1.5s", "-1s"}) {
    auto r = ParseDurationMs(bad, "--timeout");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message().find("--timeout"), std::string::npos);
  }
}

TEST(SplitTest, KeepsEmptyFields) {
  EXPECT_EQ(Split("a:b::c", ':'), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(Split("", ':'), (std::vector<std::string>{""}));
}

TEST(Join, PutsTheSeparatorBetween) {
  EXPECT_EQ(Join({}, ", "), "");
  EXPECT_EQ(Join({"a"}, ", "), "a");
  EXPECT_EQ(Join({"a", "", "c"}, "; "), "a; ; c");
}

}  // namespace
TEST(Ellipsize, CutsAtACharacterBoundary) {
  EXPECT_EQ(Ellipsize("short", 10), "short");
  EXPECT_EQ(Ellipsize("exactly10!", 10), "exactly10!");
  EXPECT_EQ(Ellipsize("0123456789ab", 10), "0123456...");
  // "é" is two bytes (c3 a9): a cut between them moves back before it.
  EXPECT_EQ(Ellipsize("012345\xc3\xa9"
                      "789",
                      10),
            "012345...");
}

}  // namespace kiln
