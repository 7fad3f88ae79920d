#include "runtime/tools/search.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "runtime/tools/testutil.h"

namespace kiln::tool_search {
namespace {

class Search : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("src/a.cc", "int main() {\n  return TODO;\n}\n");
    dir_.Write("src/b.h", "// TODO: header\n");
    dir_.Write("build/gen.cc", "TODO generated\n");
    dir_.Write("notes.log", "TODO log\n");
    dir_.Write(".gitignore", "build/\n*.log\n");
    dir_.Write(".git/config", "TODO in git\n");
    dir_.Write("bin.dat", std::string("TODO\0\0", 6));
    outside_.Write("o.txt", "TODO outside\n");
    ASSERT_EQ(::symlink(outside_.path().c_str(), (dir_ / "escape").c_str()), 0);
    auto ws = workspace_path::Workspace::Open(dir_.path());
    ASSERT_TRUE(ws.ok());
    ws_ = std::make_unique<workspace_path::Workspace>(std::move(*ws));
  }
  testutil::TempDir dir_, outside_;
  std::unique_ptr<workspace_path::Workspace> ws_;
  tool::Limits limits_;
};

TEST_F(Search, FindsMatchesRespectingGitignoreAndSkippingGitBinaryAndSymlinks) {
  auto o = tool_search::Run(*ws_, limits_, {{"pattern", "TODO"}});
  EXPECT_FALSE(o.is_error) << o.content;
  EXPECT_EQ(o.content,
            "src/a.cc:2:  return TODO;\nsrc/b.h:1:// TODO: header\n"
            "[skipped 1 binary and 0 large files]\n");
}

TEST_F(Search, GlobPathAndCaseOptions) {
  auto o = tool_search::Run(*ws_, limits_,
                            {{"pattern", "todo"}, {"glob", "*.h"}, {"ignore_case", true}});
  EXPECT_EQ(o.content, "src/b.h:1:// TODO: header\n");
  o = tool_search::Run(*ws_, limits_, {{"pattern", "^int"}, {"path", "src/a.cc"}});
  EXPECT_EQ(o.content, "src/a.cc:1:int main() {\n");
}

TEST_F(Search, CapsMatchesAndRejectsBadPatternsAndEscapes) {
  std::string many;
  for (int i = 0; i < 50; ++i) many += "hit\n";
  dir_.Write("many.txt", many);
  limits_.search_max_matches = 10;
  auto o = tool_search::Run(*ws_, limits_, {{"pattern", "hit"}});
  EXPECT_NE(o.content.find("[stopped after 10 matches"), std::string::npos) << o.content;
  o = tool_search::Run(*ws_, limits_, {{"pattern", "("}});
  EXPECT_TRUE(o.is_error);
  EXPECT_NE(o.content.find("not a valid POSIX extended regular expression"), std::string::npos);
  o = tool_search::Run(*ws_, limits_, {{"pattern", "TODO"}, {"path", "escape"}});
  EXPECT_TRUE(o.is_error);
  EXPECT_NE(o.content.find("escapes the workspace"), std::string::npos) << o.content;
}

}  // namespace
}  // namespace kiln::tool_search
