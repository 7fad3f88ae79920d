#include "controller/sessionlog/secrets.h"

#include <gtest/gtest.h>

#include "base/digest.h"

namespace kiln::sessionlog {
namespace {

std::string Redacted(const Redactor& r, const std::string& s) {
  std::string out;
  return r.Redact(s, &out) ? out : s;
}

TEST(SessionLogRedactor, ReplacesEveryEncodedForm) {
  Redactor r;
  const std::string v = "s3cr3t/Value+with spaces&=";
  ASSERT_TRUE(r.Add("API_KEY", v).ok());
  const std::string forms[] = {
      v,
      Base64(v),
      Base64Url(v),
      "s3cr3t%2FValue%2Bwith%20spaces%26%3D",
      "s3cr3t%2fValue%2bwith%20spaces%26%3d",
      "s3cr3t%2FValue%2Bwith+spaces%26%3D",
      Hex(v),
      [&] {
        std::string h = Hex(v);
        for (char& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return h;
      }(),
  };
  for (const auto& f : forms) {
    std::string out = Redacted(r, "before " + f + " after");
    EXPECT_EQ(out.find(f), std::string::npos) << f << " -> " << out;
    EXPECT_NE(out.find("[secret:API_KEY]"), std::string::npos) << f << " -> " << out;
    EXPECT_EQ(out.substr(0, 7), "before ") << out;
  }
}

TEST(SessionLogRedactor, PercentEncodingOfTheSafeAlphabetIsTheValueItself) {
  Redactor r;
  ASSERT_TRUE(r.Add("T", "plainalnumtoken").ok());
  EXPECT_EQ(Redacted(r, "?token=plainalnumtoken&x=1"), "?token=[secret:T]&x=1");
}

TEST(SessionLogRedactor, FindsTheSecretInsideALargerBase64Text) {
  // HTTP Basic: base64("user:" + token) encodes the token at an offset that is
  // not a multiple of 3.
  Redactor r;
  const std::string token = "ghp_0123456789abcdefghijABCDEFGHIJ";
  ASSERT_TRUE(r.Add("GITHUB_TOKEN", token).ok());
  for (const std::string prefix : {"u:", "user:", "x-access-token:"}) {
    std::string header = "Authorization: Basic " + Base64(prefix + token + "\n");
    std::string out = Redacted(r, header);
    EXPECT_NE(out.find("[secret:GITHUB_TOKEN]"), std::string::npos) << prefix << ": " << out;
    // No run of 8 characters from the encoded token survives.
    std::string enc = Base64(prefix + token);
    for (size_t i = prefix.size() * 4 / 3 + 2; i + 8 < enc.size() - 2; ++i) {
      EXPECT_EQ(out.find(enc.substr(i, 8)), std::string::npos) << prefix << ": " << out;
    }
  }
}

TEST(SessionLogRedactor, JsonEscapedFormAndKeysOfOverlappingSecrets) {
  Redactor r;
  ASSERT_TRUE(r.Add("Q", "pa\"ss\\word").ok());
  EXPECT_EQ(Redacted(r, R"({"p":"pa\"ss\\word"})"), R"({"p":"[secret:Q]"})");
  ASSERT_TRUE(r.Add("LONG", "pa\"ss\\word-and-more").ok());
  std::string out = Redacted(r, "x pa\"ss\\word-and-more y");
  EXPECT_EQ(out.find("word"), std::string::npos) << out;
}

TEST(SessionLogRedactor, LeavesOtherTextAlone) {
  Redactor r;
  ASSERT_TRUE(r.Add("K", "abcd1234").ok());
  std::string out;
  EXPECT_FALSE(r.Redact("nothing to see here, abcd123 is not it", &out));
  EXPECT_EQ(Redacted(r, "abcd1234abcd1234"), "[secret:K][secret:K]");
}

TEST(SessionLogRedactor, RejectsBadNamesAndShortValues) {
  Redactor r;
  EXPECT_FALSE(r.Add("bad name", "longenough").ok());
  EXPECT_FALSE(r.Add("", "longenough").ok());
  Status s = r.Add("K", "abc");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("3 bytes"), std::string::npos) << s.error().message();
  EXPECT_TRUE(r.empty());
}

}  // namespace
}  // namespace kiln::sessionlog
