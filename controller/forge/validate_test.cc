// Names, labels, titles and "Fixes #N" references.
#include "controller/forge/validate.h"

#include <gtest/gtest.h>

namespace kiln::forge::validate {
namespace {

TEST(ValidateTest, RepositoryNames) {
  EXPECT_TRUE(RepoName("acme/widget").ok());
  EXPECT_TRUE(RepoName("a-b.c_d/x.y").ok());
  for (const char* bad : {"widget", "acme/", "/widget", "a/b/c", "../etc", "acme/..", ".x/y",
                          "acme/w.git", "acme/wid get", "acme/wïdget"}) {
    auto st = RepoName(bad);
    EXPECT_FALSE(st.ok()) << bad;
    if (!st.ok()) {
      EXPECT_NE(st.error().message().find(bad), std::string::npos) << bad;
    }
  }
}

TEST(ValidateTest, UserNames) {
  EXPECT_TRUE(UserName("alice").ok());
  EXPECT_TRUE(UserName("kiln[bot]").ok());
  EXPECT_TRUE(UserName("a.b-c_d").ok());
  EXPECT_FALSE(UserName("").ok());
  EXPECT_FALSE(UserName("-alice").ok());
  EXPECT_FALSE(UserName("al ice").ok());
  EXPECT_FALSE(UserName("[bot]").ok());
  EXPECT_FALSE(UserName(std::string(65, 'a')).ok());
}

TEST(ValidateTest, LabelsInTheDefaultSet) {
  const auto& set = DefaultLabels();
  for (const char* ok :
       {"triaged", "needs-info", "duplicate", "bug", "enhancement", "documentation", "blocked",
        "ready-to-spec", "plan-approved", "area:core", "area:docs/site"}) {
    EXPECT_TRUE(LabelInSet(ok, set)) << ok;
  }
  for (const char* bad : {"wontfix", "area:", "area", "area:a b", "Bug", "bug ", "area:*x"}) {
    EXPECT_FALSE(LabelInSet(bad, set)) << bad;
  }
  auto st = Label("wontfix", "acme/widget", set);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Error::Code::kInvalidArgument);
  EXPECT_NE(st.error().message().find("'wontfix'"), std::string::npos);
  EXPECT_NE(st.error().message().find("'acme/widget'"), std::string::npos);
  EXPECT_NE(st.error().message().find("ready-to-spec"), std::string::npos);
}

TEST(ValidateTest, Titles) {
  EXPECT_TRUE(Title("Crash on start").ok());
  EXPECT_FALSE(Title("").ok());
  EXPECT_FALSE(Title("  \t").ok());
  EXPECT_FALSE(Title("two\nlines").ok());
  EXPECT_FALSE(Title(std::string(257, 'x')).ok());
  EXPECT_TRUE(Body(std::string(65536, 'x'), "body").ok());
  EXPECT_FALSE(Body(std::string(65537, 'x'), "body").ok());
}

TEST(ValidateTest, ShasAreLowercasedFullHex) {
  auto sha = Sha("ABCDEF0123456789abcdef0123456789ABCDEF01", "commit");
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(*sha, "abcdef0123456789abcdef0123456789abcdef01");
  EXPECT_FALSE(Sha("abc123", "commit").ok());
  EXPECT_FALSE(Sha("g" + std::string(39, '0'), "commit").ok());
}

TEST(ValidateTest, ClosingReferences) {
  EXPECT_EQ(ClosingReferences("Fixes #12"), (std::vector<int64_t>{12}));
  EXPECT_EQ(ClosingReferences("This change\n\ncloses #3, and resolves: #4.\nFIXED #3"),
            (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(ClosingReferences("Close #1\nfix #2\nresolved #5"), (std::vector<int64_t>{1, 2, 5}));
  // Not a keyword, no '#', not a number, part of a word.
  EXPECT_TRUE(ClosingReferences("see #12").empty());
  EXPECT_TRUE(ClosingReferences("fixes 12").empty());
  EXPECT_TRUE(ClosingReferences("fixes #abc").empty());
  EXPECT_TRUE(ClosingReferences("prefixes #12").empty());
  EXPECT_TRUE(ClosingReferences("fixes #12abc").empty());
  EXPECT_TRUE(ClosingReferences("fixes#12").empty());
  EXPECT_TRUE(ClosingReferences("").empty());
}

TEST(ValidateTest, ReviewFields) {
  EXPECT_TRUE(Verdict("approve").ok());
  EXPECT_TRUE(Verdict("request_changes").ok());
  EXPECT_FALSE(Verdict("APPROVE").ok());
  EXPECT_TRUE(Side("LEFT").ok());
  EXPECT_FALSE(Side("left").ok());
  EXPECT_TRUE(Severity("blocker").ok());
  EXPECT_FALSE(Severity("critical").ok());
  EXPECT_TRUE(StatusState("failure").ok());
  EXPECT_FALSE(StatusState("failed").ok());
}

TEST(ValidateTest, CommentRanges) {
  EXPECT_TRUE(CommentRange(0, "", 5, "RIGHT").ok());
  EXPECT_TRUE(CommentRange(3, "RIGHT", 5, "RIGHT").ok());
  // Across sides the numbers are of two versions: either may be larger.
  EXPECT_TRUE(CommentRange(9, "LEFT", 5, "RIGHT").ok());
  auto message = [](int64_t start, std::string_view start_side, int64_t line) {
    Status st = CommentRange(start, start_side, line, "RIGHT");
    return st.ok() ? std::string("ok") : st.error().message();
  };
  EXPECT_EQ(message(5, "RIGHT", 5),
            "start_line 5 must come before line 5 on the same side (RIGHT)");
  EXPECT_EQ(message(7, "RIGHT", 5),
            "start_line 7 must come before line 5 on the same side (RIGHT)");
  EXPECT_EQ(message(-1, "RIGHT", 5), "start_line -1 must be 1 or more");
  EXPECT_EQ(message(3, "right", 5), "start_side 'right' is not one of RIGHT, LEFT");
  EXPECT_EQ(message(3, "", 5), "start_side '' is not one of RIGHT, LEFT");
  EXPECT_EQ(message(0, "LEFT", 5), "start_side 'LEFT' is set without a start_line");
}

}  // namespace
}  // namespace kiln::forge::validate
