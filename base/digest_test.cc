#include "base/digest.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln {
namespace {

// FIPS 180-2's examples.
TEST(Digest, Sha256MatchesThePublishedVectors) {
  EXPECT_EQ(Hex(Sha256Of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256Of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 incremental;
  incremental.Init();
  incremental.Update("abcdbcdecdefdefgefghfghighijhijk");
  incremental.Update("ijkljklmklmnlmnomnopnopq");
  EXPECT_EQ(Hex(incremental.Final()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // The context is reusable after Final.
  EXPECT_EQ(Hex(incremental.Hash("abc")), Hex(Sha256Of("abc")));
}

TEST(Digest, HexRoundTripsAndParseHexRejectsWhatIsNotHex) {
  EXPECT_EQ(Hex(std::string("\x00\x7f\xff", 3)), "007fff");
  uint8_t out[3] = {};
  ASSERT_TRUE(ParseHex("007FfF", out, 3));
  EXPECT_EQ(out[0], 0x00);
  EXPECT_EQ(out[1], 0x7f);
  EXPECT_EQ(out[2], 0xff);
  EXPECT_FALSE(ParseHex("007f", out, 3));      // too short
  EXPECT_FALSE(ParseHex("007fff00", out, 3));  // too long
  EXPECT_FALSE(ParseHex("007fgf", out, 3));    // not a digit
}

// RFC 4648 section 10.
TEST(Digest, Base64MatchesRfc4648) {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (size_t i = 0; i < std::size(plain); ++i) {
    EXPECT_EQ(Base64(plain[i]), coded[i]);
    EXPECT_EQ(Base64Decode(coded[i]), std::string(plain[i])) << coded[i];
  }
  EXPECT_EQ(Base64Url("\xfb\xff"), "-_8");
}

TEST(Digest, Base64DecodeAcceptsOneTextPerValue) {
  EXPECT_FALSE(Base64Decode("Zg="));     // not a whole group
  EXPECT_FALSE(Base64Decode("Zh=="));    // nonzero unused bits
  EXPECT_FALSE(Base64Decode("Zm9v\n"));  // whitespace
  EXPECT_FALSE(Base64Decode("-_8="));    // the URL-safe alphabet
  EXPECT_FALSE(Base64Decode("Z==="));    // too much padding
}

}  // namespace
}  // namespace kiln
