#include "controller/sessionlog/canonical.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

namespace kiln::sessionlog {
namespace {

std::string Canon(const nlohmann::json& v) {
  std::string out;
  Status s = AppendCanonical(v, &out, nullptr, "payload", 1);
  EXPECT_TRUE(s.ok()) << s.error().message();
  return out;
}

// The expected strings are what `jq -cS .` (jq 1.6) prints for the same
// input; tests/sessionlog/thirdparty_test.sh checks jq itself.
TEST(SessionLogCanonical, MatchesJqOutput) {
  EXPECT_EQ(Canon(nlohmann::json::parse(R"({"b":1,"a":{"d":[],"c":{}},"A":null})")),
            R"({"A":null,"a":{"c":{},"d":[]},"b":1})");
  EXPECT_EQ(Canon(nlohmann::json::parse(R"({"s":"\u0001\u001f\u007f\b\f\n\r\t\"\\/é€😀"})")),
            "{\"s\":\"\\u0001\\u001f\\u007f\\b\\f\\n\\r\\t\\\"\\\\/é€😀\"}");
  EXPECT_EQ(Canon(nlohmann::json::parse(R"([9007199254740991,-9007199254740991,0,3.0,-2.0])")),
            "[9007199254740991,-9007199254740991,0,3,-2]");
  // Keys sort by UTF-8 bytes: "a" < "a\u0000" < "aa" < "é" < U+FFFF < U+1F600.
  EXPECT_EQ(Canon(nlohmann::json::parse(R"({"😀":1,"\uffff":2,"é":3,"aa":4,"a\u0000":5,"a":6})")),
            "{\"a\":6,\"a\\u0000\":5,\"aa\":4,\"é\":3,\"\xef\xbf\xbf\":2,\"😀\":1}");
}

TEST(SessionLogCanonical, RepairsInvalidUtf8LikeJq) {
  nlohmann::json j = {{"s", std::string("ok\xff\xfe"
                                        "end\xc3")}};
  EXPECT_EQ(Canon(j),
            "{\"s\":\"ok\xef\xbf\xbd\xef\xbf\xbd"
            "end\xef\xbf\xbd\"}");
  EXPECT_TRUE(CheckCanonical(Canon(j)).ok());
}

TEST(SessionLogCanonical, RejectsNumbersJqCannotRoundTrip) {
  std::string out;
  for (const char* text :
       {"0.5", "1e300", "9007199254740992", "-9007199254740992", "18446744073709551615"}) {
    nlohmann::json j = {{"usage", {{"cost", nlohmann::json::parse(text)}}}};
    out.clear();
    Status s = AppendCanonical(j, &out, nullptr, "payload", 1);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_NE(s.error().message().find("payload.usage.cost"), std::string::npos)
        << s.error().message();
  }
}

TEST(SessionLogCanonical, RejectsDeepNesting) {
  nlohmann::json j = nlohmann::json::array();
  for (int i = 0; i < 200; ++i) j = nlohmann::json::array({j});
  std::string out;
  Status s = AppendCanonical(j, &out, nullptr, "payload", 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("deeper than 128"), std::string::npos);
}

TEST(SessionLogScanner, AcceptsCanonicalForms) {
  for (const char* ok :
       {"{}", "[]", "0", "-1", "9007199254740991", "\"\"", "true", "null",
        R"({"a":[1,{"b":"\u0000\n"}],"b":false})", "\"\\u007f\"", "\"\xf4\x8f\xbf\xbf\""}) {
    EXPECT_TRUE(CheckCanonical(ok).ok()) << ok << ": " << CheckCanonical(ok).error().message();
  }
}

TEST(SessionLogScanner, RejectsEverythingJqWouldPrintDifferently) {
  struct Case {
    const char* text;
    const char* why;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"{ }", "expected"},
           {"{\"b\":1,\"a\":2}", "not sorted"},
           {"{\"a\":1,\"a\":2}", "duplicate"},
           {"\"\\u0041\"", "non-canonical escape"},
           {"\"\\u001F\"", "non-canonical escape"},
           {"\"\\/\"", "non-canonical escape"},
           {"\"\\u000a\"", "non-canonical escape"},
           {"\"\x7f\"", "0x7f"},
           {"\"\x01\"", "control"},
           {"1.5", "fractions"},
           {"1e3", "fractions"},
           {"-0", "negative zero"},
           {"01", "leading zero"},
           {"9007199254740992", "outside"},
           {"\"\xc0\x80\"", "UTF-8"},
           {"\"\xed\xa0\x80\"", "UTF-8"},
           {"\"\xf4\x90\x80\x80\"", "UTF-8"},
           {"\"abc", "unterminated"},
           {"[1,]", "expected a number"},
           {"{} ", "trailing"},
           {"tru", "invalid literal"},
       }) {
    Status s = CheckCanonical(c.text);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.error().message().find(c.why), std::string::npos)
        << c.text << ": " << s.error().message();
  }
  EXPECT_FALSE(CheckCanonical(std::string(200, '[') + std::string(200, ']')).ok());
}

// Property: whatever the serializer emits, the scanner accepts, and it
// parses back to the same value.
TEST(SessionLogCanonical, RandomValuesRoundTrip) {
  std::mt19937_64 rng(42);
  std::function<nlohmann::json(int)> gen = [&](int depth) -> nlohmann::json {
    switch (rng() % (depth > 4 ? 4 : 6)) {
      case 0:
        return static_cast<int64_t>(rng() % 2000001) - 1000000;
      case 1: {
        std::string s;
        size_t n = rng() % 40;
        for (size_t i = 0; i < n; ++i) s += static_cast<char>(rng() % 256);
        return s;
      }
      case 2:
        return rng() % 2 == 0;
      case 3:
        return nullptr;
      case 4: {
        nlohmann::json a = nlohmann::json::array();
        for (size_t i = rng() % 5; i > 0; --i) a.push_back(gen(depth + 1));
        return a;
      }
      default: {
        nlohmann::json o = nlohmann::json::object();
        for (size_t i = rng() % 5; i > 0; --i) {
          o[std::string(1, static_cast<char>('a' + rng() % 26)) + std::to_string(rng() % 100)] =
              gen(depth + 1);
        }
        return o;
      }
    }
  };
  for (int i = 0; i < 2000; ++i) {
    nlohmann::json v = gen(0);
    std::string c = Canon(v);
    ASSERT_TRUE(CheckCanonical(c).ok()) << c << ": " << CheckCanonical(c).error().message();
    // Invalid UTF-8 was repaired, so compare against the repaired value.
    nlohmann::json back = nlohmann::json::parse(c);
    EXPECT_EQ(Canon(back), c);
  }
}

}  // namespace
}  // namespace kiln::sessionlog
