// patches: a `git diff` cut into files and GitHub's positions, on patches
// the git CLI wrote (the oracle for their shape) and on garbage.
#include "controller/forge/patches.h"

#include <gtest/gtest.h>

namespace kiln::forge::patches {
namespace {

// Two hunks of one file, an added file, a removed one, a rename and a binary.
constexpr char kDiff[] =
    "diff --git a/src/main.c b/src/main.c\n"
    "index 1111111..2222222 100644\n"
    "--- a/src/main.c\n"
    "+++ b/src/main.c\n"
    "@@ -1,3 +1,3 @@\n"
    " int main(void) {\n"
    "-  return 0;\n"
    "+  return 1;\n"
    " }\n"
    "@@ -10,2 +10,3 @@ static int f(void)\n"
    " a\n"
    "+b\n"
    " c\n"
    "diff --git a/NEW.md b/NEW.md\n"
    "new file mode 100644\n"
    "index 0000000..3333333\n"
    "--- /dev/null\n"
    "+++ b/NEW.md\n"
    "@@ -0,0 +1 @@\n"
    "+new\n"
    "\\ No newline at end of file\n"
    "diff --git a/gone.txt b/gone.txt\n"
    "deleted file mode 100644\n"
    "index 4444444..0000000\n"
    "--- a/gone.txt\n"
    "+++ /dev/null\n"
    "@@ -1 +0,0 @@\n"
    "-old\n"
    "diff --git a/old name.txt b/new name.txt\n"
    "similarity index 90%\n"
    "rename from old name.txt\n"
    "rename to new name.txt\n"
    "index 5555555..6666666 100644\n"
    "--- a/old name.txt\t\n"
    "+++ b/new name.txt\t\n"
    "@@ -1 +1 @@\n"
    "-x\n"
    "+y\n"
    "diff --git a/logo.png b/logo.png\n"
    "index 7777777..8888888 100644\n"
    "Binary files a/logo.png and b/logo.png differ\n"
    "diff --git \"a/\\303\\274.txt\" \"b/\\303\\274.txt\"\n"
    "--- \"a/\\303\\274.txt\"\n"
    "+++ \"b/\\303\\274.txt\"\n"
    "@@ -1 +1 @@\n"
    "-u\n"
    "+\\303\\274\n";

TEST(Patches, SplitsFilesAsGitHubListsThem) {
  std::vector<FilePatch> files = Split(kDiff);
  ASSERT_EQ(files.size(), 6u);
  EXPECT_EQ(files[0].path, "src/main.c");
  EXPECT_EQ(files[0].status, "modified");
  EXPECT_EQ(files[0].additions, 2);
  EXPECT_EQ(files[0].deletions, 1);
  EXPECT_EQ(files[0].patch.substr(0, 16), "@@ -1,3 +1,3 @@\n");
  EXPECT_EQ(files[0].lines.size(), 8u);  // 4 lines, the second header, 3 lines
  EXPECT_EQ(files[1].path, "NEW.md");
  EXPECT_EQ(files[1].status, "added");
  EXPECT_EQ(files[1].additions, 1);
  EXPECT_EQ(files[2].path, "gone.txt");
  EXPECT_EQ(files[2].status, "removed");
  EXPECT_EQ(files[2].deletions, 1);
  EXPECT_EQ(files[3].path, "new name.txt");
  EXPECT_EQ(files[3].old_path, "old name.txt");
  EXPECT_EQ(files[3].status, "renamed");
  EXPECT_EQ(files[4].path, "logo.png");
  EXPECT_TRUE(files[4].binary);
  EXPECT_EQ(files[4].patch, "");
  EXPECT_EQ(files[5].path, "\xc3\xbc.txt");
}

TEST(Patches, PositionsCountFromTheFirstHunkHeader) {
  std::vector<FilePatch> files = Split(kDiff);
  const FilePatch& main = files[0];
  // 1 " int main", 2 "-return 0", 3 "+return 1", 4 " }", 5 "@@", 6 " a",
  // 7 "+b", 8 " c".
  auto at = [&](int64_t p) {
    auto a = AtPosition(main, p);
    return a ? a->side + ":" + std::to_string(a->line) : "none";
  };
  EXPECT_EQ(at(1), "RIGHT:1");
  EXPECT_EQ(at(2), "LEFT:2");
  EXPECT_EQ(at(3), "RIGHT:2");
  EXPECT_EQ(at(4), "RIGHT:3");
  EXPECT_EQ(at(5), "none");  // a hunk header takes a place but is no line
  EXPECT_EQ(at(6), "RIGHT:10");
  EXPECT_EQ(at(7), "RIGHT:11");
  EXPECT_EQ(at(8), "RIGHT:12");
  EXPECT_EQ(at(9), "none");
  EXPECT_EQ(at(0), "none");
  EXPECT_EQ(PositionOf(main, 11, "RIGHT"), 7);
  EXPECT_EQ(PositionOf(main, 2, "LEFT"), 2);
  EXPECT_EQ(PositionOf(main, 2, "RIGHT"), 3);
  EXPECT_EQ(PositionOf(main, 50, "RIGHT"), std::nullopt);
  EXPECT_EQ(HunkUpTo(main, 7), "@@ -10,2 +10,3 @@ static int f(void)\n a\n+b");
  EXPECT_EQ(HunkUpTo(main, 2), "@@ -1,3 +1,3 @@\n int main(void) {\n-  return 0;");
  // The "\ No newline" line takes a place too.
  EXPECT_EQ(files[1].lines.size(), 2u);
  EXPECT_EQ(AtPosition(files[1], 2), std::nullopt);
}

TEST(Patches, GarbageIsLeftOut) {
  EXPECT_TRUE(Split("").empty());
  EXPECT_TRUE(Split("not a diff\n+++ b/x\n@@ -1 +1 @@\n").empty());
  std::vector<FilePatch> files =
      Split("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n@@ garbage\n+c\n");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].lines.size(), 2u);  // what follows the bad header is not counted
  EXPECT_EQ(files[0].additions, 1);
  files = Split("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -99999999999999999999 +1 @@\n+b\n");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(files[0].lines.empty());
  // No name anywhere: left out.
  EXPECT_TRUE(Split("diff --git weird\n@@ -1 +1 @@\n+b\n").empty());
}

}  // namespace
}  // namespace kiln::forge::patches
