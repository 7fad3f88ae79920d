#include "controller/config/secrets.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "base/fd.h"
#include "base/mountinfo.h"
#include "tests/support/temp_dir.h"

namespace kiln::secrets {
namespace {

class Secrets : public ::testing::Test {
 protected:
  void TearDown() override {
    (void)mountinfo::UnmountAll(dir_ + "/mnt");
    ::unsetenv("KILN_SECRET_FROM_ENV");
  }
  std::string WriteSecrets(const std::string& text, mode_t mode) {
    std::string path = dir_ + "/secrets.yaml";
    ::unlink(path.c_str());
    EXPECT_TRUE(WriteNewFile(path, text, 0644, Sync::kNoFsync).ok());
    ::chmod(path.c_str(), mode);
    return path;
  }
  kiln::testing::TempDir tmp_;
  std::string dir_ = tmp_.path();
};

TEST_F(Secrets, SelectsOnlyTheNamedOnes) {
  ::setenv("KILN_SECRET_FROM_ENV", "env-value", 1);
  auto v = Vault::Load(WriteSecrets("NPM_TOKEN: npm-123\nPYPI_TOKEN: pypi-456\n", 0600));
  ASSERT_TRUE(v.ok()) << v.error().message();
  auto s = v->Select({"NPM_TOKEN", "FROM_ENV"});
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->size(), 2u);
  EXPECT_EQ(s->at("NPM_TOKEN"), "npm-123");
  EXPECT_EQ(s->at("FROM_ENV"), "env-value");
  EXPECT_EQ(s->count("PYPI_TOKEN"), 0u);
}

TEST_F(Secrets, UnknownNameIsAnError) {
  auto v = Vault::Load(WriteSecrets("A: 1\n", 0600));
  ASSERT_TRUE(v.ok());
  auto s = v->Select({"A", "MISSING"});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("unknown secret 'MISSING'"), std::string::npos);
}

TEST_F(Secrets, RefusesAFileOthersCanRead) {
  auto v = Vault::Load(WriteSecrets("A: 1\n", 0644));
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message().find("mode 0644"), std::string::npos) << v.error().message();
}

TEST_F(Secrets, RefusesASymlink) {
  std::string target = WriteSecrets("A: 1\n", 0600);
  std::string link = dir_ + "/link.yaml";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  auto v = Vault::Load(link);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message().find("is a symlink"), std::string::npos);
}

TEST_F(Secrets, MalformedFileNamesTheLine) {
  auto v = Vault::Load(WriteSecrets("A: 1\nbad name: 2\n", 0600));
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message().find("secrets.yaml:2: 'bad name'"), std::string::npos)
      << v.error().message();
  auto w = Vault::Load(WriteSecrets("A: [1, 2]\n", 0600));
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message().find("'A' must be a string"), std::string::npos);
}

TEST_F(Secrets, MountsReadOnlyFilesOwnedByTheSandboxUid) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  std::string mnt = dir_ + "/mnt";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0700), 0);
  ASSERT_TRUE(Mount(mnt, {{"TOKEN", "s3cret"}}, 200001000, 200001000, 1 << 20).ok());
  EXPECT_TRUE(mountinfo::IsMountPoint(mnt));
  auto text = ReadFile(mnt + "/TOKEN");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "s3cret");
  struct stat st {};
  ASSERT_EQ(::stat((mnt + "/TOKEN").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 200001000u);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  // Read-only: not even root writes there.
  EXPECT_FALSE(WriteNewFile(mnt + "/OTHER", "x", 0644, Sync::kNoFsync).ok());
  ASSERT_TRUE(mountinfo::UnmountAll(mnt).ok());
  EXPECT_FALSE(mountinfo::IsMountPoint(mnt));
  EXPECT_TRUE(mountinfo::UnmountAll(mnt).ok());  // idempotent
}

}  // namespace
}  // namespace kiln::secrets
