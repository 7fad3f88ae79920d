#include "controller/replay/normalise.h"

#include <gtest/gtest.h>

namespace kiln::replay {
namespace {

std::string Norm(const std::string& text, std::vector<uint64_t>* hits = nullptr) {
  auto n = Normaliser::Make(BuiltinRules());
  EXPECT_TRUE(n.ok());
  std::vector<uint64_t> h;
  std::string out = n->Apply(text, &h);
  if (hits) *hits = h;
  return out;
}

TEST(Normalise, VolatileTextBecomesPlaceholders) {
  EXPECT_EQ(Norm("built at 2026-12-06T16:19:52.123456789Z ok"), "built at <timestamp> ok");
  EXPECT_EQ(Norm("Sun Dec  6 16:19:52 UTC 2026\n"), "<timestamp>\n");
  EXPECT_EQ(Norm("wrote /tmp/tmp.AbC123/out.txt, done"), "wrote <tmp>, done");
  EXPECT_EQ(Norm("server pid 4242 started"), "server pid <pid> started");
  EXPECT_EQ(Norm("real\t0m0.003s"), "real\t<duration>");
  EXPECT_EQ(Norm("ran 12 tests in 0.51s"), "ran 12 tests in <duration>");
  EXPECT_EQ(Norm("took 3 seconds"), "took <duration>");
}

TEST(Normalise, StableTextIsLeftAlone) {
  for (const char* text : {"hello world\n", "int main(void) { return 0; }", "version 1.2.3",
                           "12 files changed", "/usr/bin/git", "sha 0123456789abcdef"}) {
    EXPECT_EQ(Norm(text), text);
  }
}

TEST(Normalise, CountsEachRulesMatches) {
  std::vector<uint64_t> hits;
  Norm("2026-01-01T00:00:00Z and 2027-01-01T00:00:00Z in /tmp/x", &hits);
  auto rules = BuiltinRules();
  ASSERT_EQ(hits.size(), rules.size());
  EXPECT_EQ(rules[0].name, "timestamp");
  EXPECT_EQ(hits[0], 2u);
  EXPECT_EQ(rules[2].name, "tmp-path");
  EXPECT_EQ(hits[2], 1u);
}

TEST(Normalise, LiteralRulesMatchExactly) {
  auto n = Normaliser::Make({LiteralRule("run-id", "r20261206T161952-0a1b2c3d.2", "<run-id>")});
  ASSERT_TRUE(n.ok());
  std::vector<uint64_t> h;
  EXPECT_EQ(n->Apply("sandbox r20261206T161952-0a1b2c3d.2 up", &h), "sandbox <run-id> up");
  EXPECT_EQ(n->Apply("r20261206T161952X0a1b2c3dX2", &h), "r20261206T161952X0a1b2c3dX2");
}

TEST(Normalise, ABadPatternIsNamed) {
  auto n = Normaliser::Make({{"mine", "([unclosed", "x", "config kiln.yaml:7"}});
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message().find("mine"), std::string::npos) << n.error().message();
  EXPECT_NE(n.error().message().find("kiln.yaml:7"), std::string::npos) << n.error().message();
  EXPECT_NE(n.error().message().find("([unclosed"), std::string::npos) << n.error().message();
}

}  // namespace
}  // namespace kiln::replay
