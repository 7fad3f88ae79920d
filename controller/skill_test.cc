#include "controller/skill.h"

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace kiln::skill {
namespace {

constexpr char kGood[] = R"(---
name: implement
description: Implements an approved spec.
model: {name: claude-sonnet-4-5, max_tokens: 4096}
tools: [shell, read, write, edit, search]
budgets: {max_turns: 40, max_output_tokens: 200000}
timeout: 30m
network:
  allow: ["pypi.org:443", "*.pythonhosted.org"]
secrets: [NPM_TOKEN]
result_schema:
  type: object
  properties: {summary: {type: string}}
  required: [summary]
triggers: [plan-approved]
---
You implement the spec.
)";

TEST(Skill, ParsesEveryField) {
  auto s = Parse(kGood, "skills/implement/SKILL.md");
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->name, "implement");
  EXPECT_EQ(s->role, "implement");
  EXPECT_EQ(s->description, "Implements an approved spec.");
  EXPECT_EQ(s->body, "You implement the spec.\n");
  EXPECT_EQ(s->model["max_tokens"], 4096);
  EXPECT_EQ(s->budgets["max_turns"], 40);
  EXPECT_EQ(s->budgets["max_output_tokens"], 200000);
  ASSERT_TRUE(s->tools.has_value());
  EXPECT_EQ(s->tools->size(), 5u);
  EXPECT_EQ(s->timeout_ms, 30 * 60'000u);
  EXPECT_EQ(s->network_allow, (std::vector<std::string>{"pypi.org:443", "*.pythonhosted.org"}));
  EXPECT_EQ(s->secrets, (std::vector<std::string>{"NPM_TOKEN"}));
  EXPECT_EQ(s->result_schema["required"][0], "summary");
  EXPECT_EQ(s->triggers, (std::vector<std::string>{"plan-approved"}));
  EXPECT_EQ(s->sha256.size(), 64u);
}

struct Bad {
  const char* text;
  const char* message;
};

class BadSkill : public ::testing::TestWithParam<Bad> {};

TEST_P(BadSkill, NamesFileAndLine) {
  auto s = Parse(GetParam().text, "skills/x/SKILL.md");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find(GetParam().message), std::string::npos) << s.error().message();
  EXPECT_EQ(s.error().message().rfind("skills/x/SKILL.md:", 0), 0u) << s.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Skill, BadSkill,
    ::testing::Values(
        Bad{"no front matter\n", ":1: a skill starts with '---'"},
        Bad{"---\nname: x\ndescription: d\n", "no closing '---'"},
        Bad{"---\nname: x\ndescription: d\ncolour: blue\n---\n", ":4: 'colour' is not a known"},
        Bad{"---\ndescription: d\n---\n", "'name' must be given"},
        Bad{"---\nname: Bad Name\ndescription: d\n---\n", ":2: 'name' must be given"},
        Bad{"---\nname: x\n---\n", "'description' must be given"},
        Bad{"---\nname: x\ndescription: d\nbudgets: {max_turns: -3}\n---\n", ":4: 'budgets'"},
        Bad{"---\nname: x\ndescription: d\nbudgets: {max_turnz: 3}\n---\n", "max_turnz"},
        Bad{"---\nname: x\ndescription: d\nresult_schema: {type: object, patternProperties: {}}\n"
            "---\n",
            ":4: 'result_schema'"},
        Bad{"---\nname: x\ndescription: d\ntools: [shell, teleport]\n---\n", ":4: 'tools'"},
        Bad{"---\nname: x\ndescription: d\nsecrets: [ok, not-ok]\n---\n",
            ":4: 'secrets' has 'not-ok'"},
        Bad{"---\nname: x\ndescription: d\ntimeout: later\n---\n", ":4: 'timeout' must be"},
        Bad{"---\nname: x\ndescription: d\nnetwork: {allow: x, deny: y}\n---\n",
            "'network.allow' must be a list"},
        Bad{"---\nname: [x\n---\n", "skills/x/SKILL.md:3: end of sequence"}));

class SkillDir : public ::testing::Test {
 protected:
  void Write(const std::string& role, const std::string& text) {
    tmp_.Write(role + "/SKILL.md", text);
  }
  kiln::testing::TempDir tmp_;
  std::string dir_ = tmp_.path();
};

TEST_F(SkillDir, LoadsByRoleAndListsRoles) {
  Write("implement", kGood);
  Write("review", "---\nname: review\ndescription: Reviews.\n---\nReview it.\n");
  EXPECT_EQ(Roles(dir_), (std::vector<std::string>{"implement", "review"}));
  auto s = Load(dir_, "review");
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->body, "Review it.\n");
}

TEST_F(SkillDir, UnknownRoleListsTheKnownOnes) {
  Write("implement", kGood);
  auto s = Load(dir_, "deploy");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("unknown role 'deploy'"), std::string::npos);
  EXPECT_NE(s.error().message().find("(roles: implement)"), std::string::npos)
      << s.error().message();
  EXPECT_FALSE(Load(dir_, "../etc").ok());
}

TEST_F(SkillDir, RoleMustMatchItsFolder) {
  Write("review", "---\nname: implement\ndescription: d\n---\n");
  auto s = Load(dir_, "review");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("declares role 'implement'"), std::string::npos);
}

}  // namespace
}  // namespace kiln::skill
