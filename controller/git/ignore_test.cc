// The .gitignore matcher, against cases from git's own wildmatch tests and
// against `git check-ignore` on a real tree.
#include "controller/git/ignore.h"

#include <memory>

#include "controller/git/testutil.h"

namespace kiln::git {
namespace {

using testing::Git;
using testing::InitRepo;
using testing::Sh;
using testing::TempDir;
using testing::WriteText;

struct WildCase {
  const char* pattern;
  const char* text;
  bool pathname;
  bool match;
};

TEST(WildMatchTest, GitCases) {
  const WildCase cases[] = {
      {"foo", "foo", true, true},
      {"foo", "bar", true, false},
      {"", "", true, true},
      {"???", "foo", true, true},
      {"??", "foo", true, false},
      {"*", "foo", true, true},
      {"f*", "foo", true, true},
      {"*f", "foo", true, false},
      {"*foo*", "foo", true, true},
      {"*ob*a*r*", "foobar", true, true},
      {"*ab", "aaaaaaabababab", true, true},
      {"foo\\*", "foo*", true, true},
      {"foo\\*bar", "foobar", true, false},
      {"f\\\\oo", "f\\oo", true, true},
      {"*[al]?", "ball", true, true},
      {"[ten]", "ten", true, false},
      {"**[!te]", "ten", true, true},
      {"**[!ten]", "ten", true, false},
      {"t[a-g]n", "ten", true, true},
      {"t[!a-g]n", "ten", true, false},
      {"t[!a-g]n", "ton", true, true},
      {"t[^a-g]n", "ton", true, true},
      {"a[]]b", "a]b", true, true},
      {"a[]-]b", "a-b", true, true},
      {"a[]a-]b", "aab", true, true},
      {"]", "]", true, true},
      {"foo*bar", "foo/baz/bar", true, false},
      {"foo**bar", "foo/baz/bar", true, false},
      {"foo/*/bar", "foo/baz/bar", true, true},
      {"foo/**/bar", "foo/baz/bar", true, true},
      {"foo/**/bar", "foo/b/a/z/bar", true, true},
      {"foo/**/bar", "foo/bar", true, true},
      {"foo/**/**/bar", "foo/bar", true, true},
      {"foo?bar", "foo/bar", true, false},
      {"foo[/]bar", "foo/bar", true, false},
      {"foo*bar", "foo/bar", false, true},
      {"**/foo", "foo", true, true},
      {"**/foo", "XXX/foo", true, true},
      {"**/foo", "bar/baz/foo", true, true},
      {"*/foo", "bar/baz/foo", true, false},
      {"**/bar*", "foo/bar/baz", true, false},
      {"**/bar/*", "deep/foo/bar/baz", true, true},
      {"**/bar/*", "deep/foo/bar/baz/", true, false},
      {"**/bar/**", "deep/foo/bar/baz/", true, true},
      {"**/bar/*", "deep/foo/bar", true, false},
      {"**/bar/**", "deep/foo/bar/", true, true},
      {"*/bar/**", "foo/bar/baz/x", true, true},
      {"foo/**", "foo/a/b", true, true},
      {"[[:alpha:]][[:digit:]][[:upper:]]", "a1B", true, true},
      {"[[:digit:][:upper:][:space:]]", "a", true, false},
      {"[[:digit:][:upper:][:space:]]", "A", true, true},
      {"[[:xdigit:]]", "f", true, true},
      {"[a-c[:digit:]x-z]", "5", true, true},
      {"[a-c[:digit:]x-z]", "q", true, false},
      {"[[:nope:]]", "a", true, false},
      {"[", "[", true, false},
      {"\\", "\\", true, false},
      {"-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-/-70-iso8859-1",
       true, false},
      {"XXX/*/*/*/*/*/*/12/*/*/*/m/*/*/*",
       "XXX/adobe/courier/bold/o/normal//12/120/75/75/m/70/iso8859/1", true, true},
  };
  for (const WildCase& c : cases) {
    EXPECT_EQ(WildMatch(c.pattern, c.text, c.pathname), c.match)
        << "pattern '" << c.pattern << "' text '" << c.text << "' pathname " << c.pathname;
  }
}

TEST(IgnoreFileTest, Syntax) {
  IgnoreFile f(
      "\xEF\xBB\xBF# comment\n"
      "\n"
      "*.o\n"
      "!keep.o\n"
      "build/\n"
      "/root-only\n"
      "docs/*.pdf\n"
      "trailing   \n"
      "escaped\\ \n"
      "\\#hash\n"
      "\\!bang\n");
  using V = IgnoreFile::Verdict;
  EXPECT_EQ(f.Match("a.o", false), V::kIgnored);
  EXPECT_EQ(f.Match("sub/a.o", false), V::kIgnored);
  EXPECT_EQ(f.Match("keep.o", false), V::kKept);
  EXPECT_EQ(f.Match("build", true), V::kIgnored);
  EXPECT_EQ(f.Match("build", false), V::kNone);  // a file named build is not a directory
  EXPECT_EQ(f.Match("root-only", false), V::kIgnored);
  EXPECT_EQ(f.Match("sub/root-only", false), V::kNone);
  EXPECT_EQ(f.Match("docs/a.pdf", false), V::kIgnored);
  EXPECT_EQ(f.Match("docs/sub/a.pdf", false), V::kNone);
  EXPECT_EQ(f.Match("trailing", false), V::kIgnored);
  EXPECT_EQ(f.Match("escaped ", false), V::kIgnored);
  EXPECT_EQ(f.Match("#hash", false), V::kIgnored);
  EXPECT_EQ(f.Match("!bang", false), V::kIgnored);
  EXPECT_EQ(f.Match("# comment", false), V::kNone);
}

TEST(IgnoreFrameTest, NearerFileWins) {
  auto root = std::make_shared<const IgnoreFrame>(IgnoreFrame{nullptr, "", IgnoreFile("*.log\n")});
  IgnoreFrame sub{root, "sub/", IgnoreFile("!keep.log\n/local\n")};
  EXPECT_TRUE(IsIgnored(root.get(), "x.log", false));
  EXPECT_TRUE(IsIgnored(&sub, "sub/x.log", false));
  EXPECT_FALSE(IsIgnored(&sub, "sub/keep.log", false));
  EXPECT_TRUE(IsIgnored(&sub, "sub/local", false));
  EXPECT_FALSE(IsIgnored(&sub, "sub/deeper/local", false));  // anchored to sub/
  EXPECT_FALSE(IsIgnored(&sub, "sub/x.txt", false));
}

// The same rules and paths through git itself.
TEST(IgnoreFrameTest, AgreesWithGitCheckIgnore) {
  TempDir tmp;
  std::string repo = tmp / "repo";
  InitRepo(repo);
  const std::string root_rules = "*.log\n!important.log\nbuild/\n/top.txt\ndoc/**/*.tmp\n*~\n";
  const std::string sub_rules = "!x.log\nlocal\n*.txt\n";
  WriteText(repo + "/.gitignore", root_rules);
  WriteText(repo + "/sub/.gitignore", sub_rules);
  auto root = std::make_shared<const IgnoreFrame>(IgnoreFrame{nullptr, "", IgnoreFile(root_rules)});
  IgnoreFrame sub{root, "sub/", IgnoreFile(sub_rules)};
  const char* paths[] = {"a.log",       "important.log", "top.txt",       "sub/top.txt",
                         "doc/a/b.tmp", "doc/b.tmp",     "file~",         "sub/x.log",
                         "sub/y.log",   "sub/local",     "sub/a/local",   "sub/a.md",
                         "x/build/a.c", "a.c",           "sub/deep/z.txt"};
  // The rules in force for a path: sub/.gitignore's only below sub/.
  auto frame_of = [&](const std::string& path) {
    return path.rfind("sub/", 0) == 0 ? &sub : root.get();
  };
  for (const char* p : paths) {
    std::string path = p;
    // Directories on the way count as git sees them: "x/build/a.c" is
    // ignored because x/build is.
    bool ours = false;
    for (size_t slash = path.find('/'); !ours && slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      std::string dir = path.substr(0, slash);
      ours = IsIgnored(frame_of(dir), dir, true);
    }
    ours = ours || IsIgnored(frame_of(path), path, false);
    int status = Sh(testing::GitCommand(repo, "check-ignore -q --no-index " + path)).status;
    ASSERT_TRUE(status == 0 || status == 1) << path;
    EXPECT_EQ(ours, status == 0) << path;
  }
  Git(repo, "status --porcelain");  // the repository is well-formed
}

}  // namespace
}  // namespace kiln::git
