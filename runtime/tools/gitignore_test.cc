#include "runtime/tools/gitignore.h"

#include <gtest/gtest.h>

namespace kiln::gitignore {
namespace {

TEST(Gitignore, GitSemantics) {
  Matcher m;
  m.Add(Parse("# comment\n*.o\nbuild/\n/top.txt\ndocs/**/*.tmp\n!keep.o\n\\#hash\n", ""));
  EXPECT_TRUE(m.Ignored("a.o", false));
  EXPECT_TRUE(m.Ignored("src/deep/b.o", false));
  EXPECT_FALSE(m.Ignored("keep.o", false));  // negation, last rule wins
  EXPECT_TRUE(m.Ignored("build", true));
  EXPECT_FALSE(m.Ignored("build", false));  // dir-only rule
  EXPECT_TRUE(m.Ignored("src/build", true));
  EXPECT_TRUE(m.Ignored("top.txt", false));
  EXPECT_FALSE(m.Ignored("src/top.txt", false));  // anchored
  EXPECT_TRUE(m.Ignored("docs/x.tmp", false));    // ** matches zero directories
  EXPECT_TRUE(m.Ignored("docs/a/b/x.tmp", false));
  EXPECT_FALSE(m.Ignored("other/x.tmp", false));
  EXPECT_TRUE(m.Ignored("#hash", false));
}

TEST(Gitignore, NestedFileAppliesOnlyBelowItsDirectory) {
  Matcher m;
  m.Add(Parse("*.log\n", "sub"));
  EXPECT_TRUE(m.Ignored("sub/a.log", false));
  EXPECT_TRUE(m.Ignored("sub/x/a.log", false));
  EXPECT_FALSE(m.Ignored("a.log", false));
  size_t mark = m.mark();
  m.Add(Parse("/gen\n", "sub/x"));
  EXPECT_TRUE(m.Ignored("sub/x/gen", false));
  EXPECT_FALSE(m.Ignored("sub/gen", false));
  m.Truncate(mark);
  EXPECT_FALSE(m.Ignored("sub/x/gen", false));
}

}  // namespace
}  // namespace kiln::gitignore
