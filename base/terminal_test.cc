#include "base/terminal.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(ForTerminal, EscapeSequencesBecomeVisibleText) {
  // A window title (OSC), a line erase and a carriage return over the line.
  std::string hostile = "\x1b]0;pwned\x07ok\x1b[2K\rfake line";
  std::string shown = ForTerminal(hostile);
  EXPECT_EQ(shown, "\\x1b]0;pwned\\x07ok\\x1b[2K\\rfake line");
  EXPECT_EQ(shown.find('\x1b'), std::string::npos);
}

TEST(ForTerminal, LayoutAndTextSurvive) {
  EXPECT_EQ(ForTerminal("two\tcolumns\nnext line: é, 日本, 🙂"),
            "two\tcolumns\nnext line: é, 日本, 🙂");
  EXPECT_EQ(ForTerminalLine("a\nb\tc"), "a\\nb\\tc");
}

TEST(ForTerminal, C1BidiAndInvalidBytesAreEscaped) {
  EXPECT_EQ(ForTerminal("\xc2\x9b"
                        "31m"),
            "\\u009b31m");  // CSI as C1
  EXPECT_EQ(ForTerminal("abc\xe2\x80\xae"
                        "fed"),
            "abc\\u202efed");  // right-to-left override
  EXPECT_EQ(ForTerminal("\xd8\x9c"
                        "x"),
            "\\u061cx");                                                     // Arabic letter mark
  EXPECT_EQ(ForTerminal("\xff\xc0\xaf x \x7f"), "\\xff\\xc0\\xaf x \\x7f");  // overlong '/'
  EXPECT_EQ(ForTerminal("\xed\xa0\x80"), "\\xed\\xa0\\x80");                 // a surrogate
  EXPECT_EQ(ForTerminal("\xe2\x82"), "\\xe2\\x82");                          // cut short
}

TEST(ForTerminal, JsonStaysJsonWithTheSameValue) {
  std::string line =
      "{\"id\":\"x\xc2\x9b"
      "2J\\u001b\xe2\x80\xae\",\"n\":1}";
  std::string shown = ForTerminalJson(line);
  EXPECT_EQ(shown, "{\"id\":\"x\\u009b2J\\u001b\\u202e\",\"n\":1}");
}

}  // namespace
}  // namespace kiln
