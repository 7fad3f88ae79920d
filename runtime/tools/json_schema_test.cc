#include "runtime/tools/json_schema.h"

#include <gtest/gtest.h>

namespace kiln::json_schema {
namespace {

using nlohmann::json;

const json kSchema = json::parse(R"({
  "type": "object",
  "properties": {
    "summary": {"type": "string", "minLength": 3, "maxLength": 10},
    "verdict": {"enum": ["approve", "reject"]},
    "score": {"type": "integer", "minimum": 0, "maximum": 10},
    "files": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
    "meta": {"type": "object", "additionalProperties": {"type": "number"}}
  },
  "required": ["summary", "verdict"],
  "additionalProperties": false
})");

TEST(JsonSchema, AcceptsAValidResult) {
  EXPECT_TRUE(CheckSchema(kSchema).ok());
  auto errors = Validate(kSchema, {{"summary", "fixed"},
                                   {"verdict", "approve"},
                                   {"score", 7},
                                   {"files", {"a.cc"}},
                                   {"meta", {{"x", 1.5}}}});
  EXPECT_TRUE(errors.empty()) << errors[0];
}

TEST(JsonSchema, NamesEveryViolationByPointer) {
  auto errors = Validate(kSchema, {{"summary", "ab"},
                                   {"verdict", "maybe"},
                                   {"score", 11},
                                   {"files", {"a", 2, "c"}},
                                   {"meta", {{"x", "no"}}},
                                   {"extra", true}});
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_NE(all.find("/summary: shorter than minLength 3"), std::string::npos) << all;
  EXPECT_NE(all.find("/verdict: \"maybe\" is not one of"), std::string::npos) << all;
  EXPECT_NE(all.find("/score: 11 is greater than maximum 10"), std::string::npos) << all;
  EXPECT_NE(all.find("/files/1: expected string, got integer"), std::string::npos) << all;
  EXPECT_NE(all.find("/files: more than maxItems 2"), std::string::npos) << all;
  EXPECT_NE(all.find("/meta/x: expected number, got string"), std::string::npos) << all;
  EXPECT_NE(all.find("property 'extra' is not allowed"), std::string::npos) << all;
}

TEST(JsonSchema, MissingRequiredAndWrongRootType) {
  auto errors = Validate(kSchema, {{"summary", "okay"}});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "(root): missing required property 'verdict'");
  errors = Validate(kSchema, json::array());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "(root): expected object, got array");
}

TEST(JsonSchema, LengthCountsCharactersNotBytes) {
  json s = {{"type", "string"}, {"maxLength", 3}};
  EXPECT_TRUE(Validate(s, "ééé").empty());
  EXPECT_FALSE(Validate(s, "éééé").empty());
}

TEST(JsonSchema, IntegerAcceptsWholeFloatsAndNumberAcceptsIntegers) {
  EXPECT_TRUE(Validate({{"type", "integer"}}, 3.0).empty());
  EXPECT_FALSE(Validate({{"type", "integer"}}, 3.5).empty());
  EXPECT_TRUE(Validate({{"type", "number"}}, 3).empty());
  EXPECT_TRUE(Validate({{"type", {"string", "null"}}}, nullptr).empty());
}

TEST(JsonSchema, RejectsUnsupportedKeywordsInsteadOfIgnoringThem) {
  auto st = CheckSchema({{"type", "object"}, {"properties", {{"a", {{"pattern", "^x"}}}}}});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("'pattern' at /properties/a is not supported"),
            std::string::npos)
      << st.error().message();
  EXPECT_FALSE(CheckSchema({{"type", "strng"}}).ok());
}

}  // namespace
}  // namespace kiln::json_schema
