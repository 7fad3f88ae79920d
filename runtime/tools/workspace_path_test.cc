#include "runtime/tools/workspace_path.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "runtime/tools/testutil.h"

namespace kiln::workspace_path {
namespace {

class WorkspacePath : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("src/a.txt", "a");
    outside_.Write("secret", "s3cret");
    ASSERT_EQ(::symlink((outside_ / "secret").c_str(), (dir_ / "abs-link").c_str()), 0);
    ASSERT_EQ(::symlink("../../..", (dir_ / "src/up").c_str()), 0);
    ASSERT_EQ(::symlink("a.txt", (dir_ / "src/ok-link").c_str()), 0);
    auto ws = Workspace::Open(dir_.path());
    ASSERT_TRUE(ws.ok()) << ws.error().message();
    ws_ = std::make_unique<Workspace>(std::move(*ws));
  }
  testutil::TempDir dir_, outside_;
  std::unique_ptr<Workspace> ws_;
};

TEST_F(WorkspacePath, OpensFilesInsideByRelativeOrAbsolutePath) {
  EXPECT_TRUE(ws_->OpenFile("src/a.txt", O_RDONLY).ok());
  EXPECT_TRUE(ws_->OpenFile((dir_ / "src/a.txt"), O_RDONLY).ok());
  EXPECT_TRUE(ws_->OpenFile("src/../src/a.txt", O_RDONLY).ok());
  EXPECT_TRUE(ws_->OpenFile("src/ok-link", O_RDONLY).ok());  // a symlink that stays inside
}

TEST_F(WorkspacePath, DotDotEscapeIsRefused) {
  auto r = ws_->OpenFile("../" + outside_.path().substr(5) + "/secret", O_RDONLY);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("escapes the workspace"), std::string::npos)
      << r.error().message();
}

TEST_F(WorkspacePath, AbsolutePathOutsideIsRefused) {
  auto r = ws_->OpenFile((outside_ / "secret"), O_RDONLY);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("is outside the workspace"), std::string::npos);
  EXPECT_FALSE(ws_->OpenFile("/etc/passwd", O_RDONLY).ok());
}

TEST_F(WorkspacePath, SymlinkEscapesAreRefused) {
  auto r = ws_->OpenFile("abs-link", O_RDONLY);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("escapes the workspace"), std::string::npos)
      << r.error().message();
  EXPECT_FALSE(ws_->OpenFile("src/up/etc/passwd", O_RDONLY).ok());
  // Creating through an escaping symlinked directory is refused too.
  EXPECT_FALSE(ws_->OpenParent("src/up/tmp/x", true).ok());
}

TEST_F(WorkspacePath, MissingFileIsNotFound) {
  auto r = ws_->OpenFile("nope.txt", O_RDONLY);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Error::Code::kNotFound);
  EXPECT_EQ(r.error().message(), "no such file: 'nope.txt'");
}

TEST_F(WorkspacePath, OpenParentCreatesDirectoriesInside) {
  auto p = ws_->OpenParent("new/deep/file.txt", true);
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->second, "file.txt");
  EXPECT_EQ(::access((dir_ / "new/deep").c_str(), F_OK), 0);
  EXPECT_FALSE(ws_->OpenParent("src/..", false).ok());
}

}  // namespace
}  // namespace kiln::workspace_path
