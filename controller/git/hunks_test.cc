// ParseHunks: patches written by the git CLI (the oracle for the shape of
// real input), and malformed or hostile ones, which must neither crash nor
// yield anything but sane line numbers under named paths.
#include <algorithm>
#include <random>
#include <tuple>

#include "controller/git/git.h"
#include "controller/git/testutil.h"
#include "controller/git/write.h"

namespace kiln::git {
namespace {

using testing::CommitAll;
using testing::Git;
using testing::GitCommand;
using testing::InitRepo;
using testing::Sh;
using testing::TempDir;
using testing::WriteText;

using Lines = std::map<std::string, std::set<int64_t>>;

std::set<int64_t> Range(int64_t first, int64_t last) {
  std::set<int64_t> out;
  for (int64_t i = first; i <= last; ++i) out.insert(i);
  return out;
}

// What must hold for any input: named paths, positive line numbers, and no
// more lines reported per side than the patch has lines.
void ExpectSane(std::string_view patch, const CommentableLines& lines) {
  size_t patch_lines = static_cast<size_t>(std::count(patch.begin(), patch.end(), '\n')) + 1;
  for (const Lines* side : {&lines.left, &lines.right}) {
    size_t total = 0;
    for (const auto& [path, numbers] : *side) {
      EXPECT_FALSE(path.empty());
      EXPECT_FALSE(numbers.empty()) << path;
      if (!numbers.empty()) {
        EXPECT_GE(*numbers.begin(), 1) << path;
        EXPECT_LE(*numbers.rbegin(), (int64_t{1} << 41)) << path;
      }
      total += numbers.size();
    }
    EXPECT_LE(total, patch_lines);
  }
  // Hunks: under a path with lines, each a span of lines reported for it.
  size_t hunks = 0;
  for (const auto& [path, spans] : lines.hunks) {
    EXPECT_TRUE(lines.left.count(path) || lines.right.count(path)) << path;
    for (const HunkSpan& h : spans) {
      EXPECT_TRUE(h.left_first > 0 || h.right_first > 0) << path;
      for (auto [first, last, side] : {std::tuple(h.left_first, h.left_last, &lines.left),
                                       std::tuple(h.right_first, h.right_last, &lines.right)}) {
        if (first == 0) {
          EXPECT_EQ(last, 0) << path;
          continue;
        }
        EXPECT_LE(first, last) << path;
        auto it = side->find(path);
        ASSERT_NE(it, side->end()) << path;
        EXPECT_EQ(it->second.count(first), 1u) << path << first;
        EXPECT_EQ(it->second.count(last), 1u) << path << last;
      }
    }
    hunks += spans.size();
  }
  EXPECT_LE(hunks, patch_lines);
}

class HunksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = tmp_ / "repo";
    InitRepo(repo_);
    WriteText(repo_ + "/multi.txt", Numbered("line ", 30));
    WriteText(repo_ + "/gone.txt", "g1\ng2\n");
    WriteText(repo_ + "/old_name.txt", Numbered("n", 10));
    WriteText(repo_ + "/noeol.txt", "a\nb");
    WriteText(repo_ + "/pure_old.txt", "pure\n");
    WriteText(repo_ + "/with space.txt", "s1\ns2\n");
    WriteText(repo_ + "/data.bin", std::string("\x01\x00\x02", 3));
    WriteText(repo_ + "/\xC3\xBC.txt", "u1\n");
    c1_ = CommitAll(repo_, "c1");
    std::string multi = Numbered("line ", 30);
    multi.replace(multi.find("line 3\n"), 7, "line three\n");
    multi.replace(multi.find("line 27\n"), 8, "line 27 changed\nline 27b\n");
    WriteText(repo_ + "/multi.txt", multi);
    WriteText(repo_ + "/added.txt", "x1\nx2\nx3\n");
    Git(repo_, "rm -q gone.txt");
    Git(repo_, "mv old_name.txt new_name.txt");
    std::string renamed = Numbered("n", 10);
    renamed.replace(renamed.find("n2\n"), 3, "N2\n");
    WriteText(repo_ + "/new_name.txt", renamed);
    WriteText(repo_ + "/noeol.txt", "a\nc");
    Git(repo_, "mv pure_old.txt pure_new.txt");
    WriteText(repo_ + "/with space.txt", "s1\nS2\n");
    WriteText(repo_ + "/data.bin", std::string("\x01\x00\x03", 3));
    WriteText(repo_ + "/\xC3\xBC.txt", "U1\n");
    c2_ = CommitAll(repo_, "c2");
  }

  static std::string Numbered(const std::string& prefix, int n) {
    std::string out;
    for (int i = 1; i <= n; ++i) out += prefix + std::to_string(i) + "\n";
    return out;
  }

  std::string GitDiff(const std::string& args) {
    return Sh(GitCommand(repo_, "diff " + args + " " + c1_ + " " + c2_)).out;
  }

  // The lines the c1..c2 patch must yield (renames detected).
  static CommentableLines Expected() {
    CommentableLines want;
    want.left["multi.txt"] = Range(1, 6);
    want.right["multi.txt"] = Range(1, 6);
    for (int64_t i = 24; i <= 30; ++i) want.left["multi.txt"].insert(i);
    for (int64_t i = 24; i <= 31; ++i) want.right["multi.txt"].insert(i);
    want.right["added.txt"] = Range(1, 3);
    want.left["gone.txt"] = Range(1, 2);
    want.left["new_name.txt"] = Range(1, 5);
    want.right["new_name.txt"] = Range(1, 5);
    want.left["noeol.txt"] = Range(1, 2);
    want.right["noeol.txt"] = Range(1, 2);
    want.left["with space.txt"] = Range(1, 2);
    want.right["with space.txt"] = Range(1, 2);
    want.left["\xC3\xBC.txt"] = {1};
    want.right["\xC3\xBC.txt"] = {1};
    return want;
  }

  TempDir tmp_;
  std::string repo_, c1_, c2_;
};

TEST_F(HunksTest, GitDiffOutput) {
  std::string patch = GitDiff("");
  // The shapes this test is about are really in the input.
  for (const char* shape : {"rename from old_name.txt", "similarity index 100%", "+++ /dev/null",
                            "--- /dev/null", "\\ No newline at end of file", "@@ -1 +1 @@",
                            "--- a/with space.txt\t", "\"b/\\303\\274.txt\"", "Binary files"}) {
    EXPECT_NE(patch.find(shape), std::string::npos) << shape << " in\n" << patch;
  }
  CommentableLines got = ParseHunks(patch);
  CommentableLines want = Expected();
  EXPECT_EQ(got.left, want.left);
  EXPECT_EQ(got.right, want.right);

  // The same patch from DiffCommits, read from a bare clone.
  Git(tmp_.path(), "clone -q --bare repo bare.git");
  auto d = DiffCommits(tmp_ / "bare.git", c1_, c2_);
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(*d, patch);

  // Without rename detection the renamed file is a deletion and an addition.
  CommentableLines split = ParseHunks(GitDiff("--no-renames"));
  EXPECT_EQ(split.left["old_name.txt"], Range(1, 10));
  EXPECT_EQ(split.right["new_name.txt"], Range(1, 10));
  EXPECT_EQ(split.left.count("new_name.txt"), 0u);
  EXPECT_EQ(split.right["pure_new.txt"], Range(1, 1));
  EXPECT_EQ(split.left["pure_old.txt"], Range(1, 1));

  // More context: one hunk per file; every line of multi.txt in both.
  CommentableLines wide = ParseHunks(GitDiff("-U100"));
  EXPECT_EQ(wide.left["multi.txt"], Range(1, 30));
  EXPECT_EQ(wide.right["multi.txt"], Range(1, 31));
  // No context: only the changed lines.
  CommentableLines narrow = ParseHunks(GitDiff("-U0"));
  EXPECT_EQ(narrow.left["multi.txt"], (std::set<int64_t>{3, 27}));
  EXPECT_EQ(narrow.right["multi.txt"], (std::set<int64_t>{3, 27, 28}));
}

TEST_F(HunksTest, HunksAndRanges) {
  CommentableLines got = ParseHunks(GitDiff(""));
  // multi.txt has two hunks; each other changed file one.
  ASSERT_EQ(got.hunks["multi.txt"].size(), 2u);
  const HunkSpan& a = got.hunks["multi.txt"][0];
  const HunkSpan& b = got.hunks["multi.txt"][1];
  EXPECT_EQ(std::tuple(a.left_first, a.left_last, a.right_first, a.right_last),
            std::tuple(1, 6, 1, 6));
  EXPECT_EQ(std::tuple(b.left_first, b.left_last, b.right_first, b.right_last),
            std::tuple(24, 30, 24, 31));
  ASSERT_EQ(got.hunks["added.txt"].size(), 1u);
  EXPECT_EQ(std::tuple(got.hunks["added.txt"][0].left_first, got.hunks["added.txt"][0].right_last),
            std::tuple(0, 3));
  EXPECT_EQ(got.hunks.count("data.bin"), 0u);

  // Single lines, ranges inside a hunk (across sides too), and what is refused.
  EXPECT_EQ(WhyNotAnchored(got, "multi.txt", 0, "", 3, "RIGHT"), "");
  EXPECT_EQ(WhyNotAnchored(got, "multi.txt", 0, "", 3, "LEFT"), "");
  EXPECT_EQ(WhyNotAnchored(got, "multi.txt", 1, "RIGHT", 6, "RIGHT"), "");
  EXPECT_EQ(WhyNotAnchored(got, "multi.txt", 26, "LEFT", 28, "RIGHT"), "");
  EXPECT_EQ(WhyNotAnchored(got, "multi.txt", 0, "", 12, "RIGHT"), "the line is not in the diff");
  EXPECT_EQ(WhyNotAnchored(got, "README", 0, "", 1, "RIGHT"), "the file is not in the diff");
  EXPECT_EQ(WhyNotAnchored(got, "added.txt", 0, "", 1, "LEFT"), "the line is not in the diff");
  EXPECT_EQ(WhyNotAnchored(got, "multi.txt", 12, "RIGHT", 25, "RIGHT"),
            "the start line 12 (RIGHT) is not in the diff");
  EXPECT_EQ(WhyNotAnchored(got, "multi.txt", 2, "RIGHT", 7, "RIGHT"),
            "the end line 7 (RIGHT) is not in the diff");
  EXPECT_EQ(WhyNotAnchored(got, "multi.txt", 5, "RIGHT", 25, "RIGHT"),
            "the range spans more than one hunk of the diff; it must lie inside one hunk");
  EXPECT_EQ(WhyNotAnchored(got, "multi.txt", 5, "LEFT", 25, "RIGHT"),
            "the range spans more than one hunk of the diff; it must lie inside one hunk");
  // A renamed file's hunks are under its new path.
  EXPECT_EQ(WhyNotAnchored(got, "new_name.txt", 1, "LEFT", 5, "RIGHT"), "");
}

TEST_F(HunksTest, EveryTruncationIsSane) {
  std::string patch = GitDiff("");
  CommentableLines full = ParseHunks(patch);
  for (size_t n = 0; n <= patch.size(); ++n) {
    std::string_view cut(patch.data(), n);
    CommentableLines lines = ParseHunks(cut);
    ExpectSane(cut, lines);
    // A prefix never reports a line the whole patch does not.
    for (const auto& [path, numbers] : lines.right) {
      for (int64_t line : numbers) EXPECT_EQ(full.right[path].count(line), 1u) << path << line;
    }
    if (::testing::Test::HasFailure()) FAIL() << "cut at " << n;
  }
}

TEST_F(HunksTest, RandomMutationsAreSane) {
  std::string patch = GitDiff("");
  const std::vector<std::string> fragments = {
      "@@ -",
      "@@ -1,3 +1,3 @@",
      "@@ -99999999999999999999,1 +1 @@",
      "@@ -1,1099511627776 +1,1099511627776 @@",
      "--- a/",
      "+++ b/",
      "+++ /dev/null",
      "--- /dev/null",
      "diff --git ",
      "\\ No newline at end of file",
      "\"a/\\",
      "\"b/\\777",
      "\n",
      "\r\n",
      std::string(1, '\0'),
      "+",
      "-",
      " ",
  };
  std::mt19937 rng(20240611);
  for (int round = 0; round < 3000; ++round) {
    std::string m = patch;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % (m.size() + 1);
      switch (rng() % 4) {
        case 0:  // a byte changed
          if (!m.empty()) m[at % m.size()] = static_cast<char>(rng() & 0xff);
          break;
        case 1:  // a fragment inserted
          m.insert(at, fragments[rng() % fragments.size()]);
          break;
        case 2:  // a span removed
          m.erase(at, rng() % 64);
          break;
        default:  // a span duplicated
          m.insert(at, m.substr(rng() % (m.size() + 1), rng() % 200));
      }
    }
    CommentableLines lines = ParseHunks(m);
    ExpectSane(m, lines);
    if (::testing::Test::HasFailure()) FAIL() << "round " << round << ":\n" << m;
  }
}

TEST(ParseHunks, MalformedInput) {
  struct Case {
    std::string name, patch;
    Lines left, right;
  } cases[] = {
      {"empty", "", {}, {}},
      {"blank lines", "\n\n\n", {}, {}},
      {"hunk without a file", "@@ -1,2 +1,2 @@\n a\n-b\n+c\n", {}, {}},
      {"number too large", "--- a/x\n+++ b/x\n@@ -99999999999999999999,1 +1 @@\n-a\n+b\n", {}, {}},
      {"count too large", "--- a/x\n+++ b/x\n@@ -1,2199023255552 +1 @@\n-a\n+b\n", {}, {}},
      {"huge count, few lines",
       "--- a/x\n+++ b/x\n@@ -1,1000000000000 +1,1000000000000 @@\n a\n",
       {{"x", {1}}},
       {{"x", {1}}}},
      {"range from line 0", "--- a/x\n+++ b/x\n@@ -0,3 +0,3 @@\n a\n b\n c\n", {}, {}},
      {"negative count", "--- a/x\n+++ b/x\n@@ -1,-1 +1 @@\n-a\n", {}, {}},
      {"no closing @@", "--- a/x\n+++ b/x\n@@ -1 +1\n-a\n+b\n", {}, {}},
      {"omitted counts", "--- a/x\n+++ b/x\n@@ -5 +7 @@\n-a\n+b\n", {{"x", {5}}}, {{"x", {7}}}},
      {"empty ranges", "--- a/x\n+++ b/x\n@@ -3,0 +4,2 @@\n+a\n+b\n", {}, {{"x", {4, 5}}}},
      {"truncated hunk, then the next file",
       "--- a/x\n+++ b/x\n@@ -1,5 +1,5 @@\n a\n b\ndiff --git a/y b/y\n--- a/y\n+++ b/y\n"
       "@@ -1 +1 @@\n-o\n+n\n",
       {{"x", {1, 2}}, {"y", {1}}},
       {{"x", {1, 2}}, {"y", {1}}}},
      {"header-like lines inside a hunk",
       "--- a/x\n+++ b/x\n@@ -1,2 +1,1 @@\n--- c\n-d\n+++ e\n",
       {{"x", {1, 2}}},
       {{"x", {1}}}},
      {"more lines than counted",
       "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n+c\n-d\n",
       {{"x", {1}}},
       {{"x", {1}}}},
      {"CRLF", "--- a/x\r\n+++ b/x\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n", {{"x", {1}}}, {{"x", {1}}}},
      {"stripped context line",
       "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n\n-c\n+d\n",
       {{"x", {1, 2, 3}}},
       {{"x", {1, 2, 3}}}},
      {"unterminated quote",
       "--- a/x\n+++ \"b/abc\n@@ -1 +1 @@\n-a\n+b\n",
       {{"x", {1}}},
       {{"x", {1}}}},
      {"bad octal escape", "--- \"a/\\9x\"\n+++ \"b/\\400\"\n@@ -1 +1 @@\n-a\n+b\n", {}, {}},
      {"both sides /dev/null", "--- /dev/null\n+++ /dev/null\n@@ -1 +1 @@\n-a\n+b\n", {}, {}},
      {"only +++", "+++ b/z\n@@ -0,0 +1,2 @@\n+a\n+b\n", {}, {{"z", {1, 2}}}},
      {"no prefixes (diff -u)",
       "--- x.orig\t2024-01-01\n+++ x\t2024-01-02\n@@ -1 +1 @@\n-a\n+b\n",
       {{"x", {1}}},
       {{"x", {1}}}},
      {"diff --git path when ---/+++ are missing",
       "diff --git a/p q b/p q\n@@ -1 +1 @@\n-a\n+b\n",
       {{"p q", {1}}},
       {{"p q", {1}}}},
      {"ambiguous diff --git path", "diff --git a/p b/q r\n@@ -1 +1 @@\n-a\n+b\n", {}, {}},
      {"paths do not leak into the next file",
       "--- a/x\n+++ b/x\ndiff --git a/y b/z\n@@ -1 +1 @@\n-a\n+b\n",
       {},
       {}},
      {"combined diff", "diff --cc x\n@@@ -1,1 -1,1 +1,1 @@@\n- a\n -b\n++c\n", {}, {}},
  };
  for (const Case& c : cases) {
    CommentableLines got = ParseHunks(c.patch);
    EXPECT_EQ(got.left, c.left) << c.name;
    EXPECT_EQ(got.right, c.right) << c.name;
    ExpectSane(c.patch, got);
  }
  // Big inputs of one repeated byte: no quadratic blow-up, nothing reported.
  for (char fill : {'@', '+', '-', ' ', '\n', '"', '\\'}) {
    std::string big(1 << 20, fill);
    CommentableLines got = ParseHunks(big);
    EXPECT_TRUE(got.left.empty() && got.right.empty()) << fill;
  }
  // A long hunk is read in full.
  std::string many = "--- a/x\n+++ b/x\n@@ -1,200000 +1,200000 @@\n";
  for (int i = 0; i < 200000; ++i) many += " l\n";
  CommentableLines got = ParseHunks(many);
  EXPECT_EQ(got.right["x"].size(), 200000u);
  EXPECT_EQ(*got.right["x"].rbegin(), 200000);
}

}  // namespace
}  // namespace kiln::git
