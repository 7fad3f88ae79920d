// MountWorkspace / RemoveWorkspace: copy-on-write over the cached tree, and a
// teardown that leaves no mount and no directory.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controller/git/git.h"
#include "controller/git/testutil.h"

namespace kiln::git {
namespace {

using mountinfo::IsMountPoint;
using testing::CommitAll;
using testing::Exists;
using testing::Git;
using testing::InitRepo;
using testing::kGid;
using testing::kUid;
using testing::ReadText;
using testing::TempDir;
using testing::WriteText;

class WorkspaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount)";
    std::string origin = tmp_ / "origin";
    InitRepo(origin);
    WriteText(origin + "/README.md", "pristine\n");
    WriteText(origin + "/dir/keep.txt", "keep\n");
    std::string commit = CommitAll(origin, "first");
    auto r = cache_.Resolve(origin, commit);
    ASSERT_TRUE(r.ok()) << r.error().message();
    auto t = cache_.Tree(*r, kUid, kGid);
    ASSERT_TRUE(t.ok()) << t.error().message();
    tree_ = *t;
  }
  void TearDown() override {
    for (const char* run : {"run1", "run2"}) (void)RemoveWorkspace(tmp_ / run);
  }

  TempDir tmp_;
  Cache cache_{tmp_ / "cache"};
  std::string tree_;
};

TEST_F(WorkspaceTest, WritesGoToUpperAndTheTreeStaysPristine) {
  auto ws = MountWorkspace(tree_, tmp_ / "run1", kUid, kGid);
  ASSERT_TRUE(ws.ok()) << ws.error().message();
  EXPECT_EQ(ws->merged, tmp_ / "run1/workspace");
  EXPECT_EQ(ws->upper, tmp_ / "run1/upper");
  EXPECT_EQ(ws->work, tmp_ / "run1/work");
  EXPECT_TRUE(IsMountPoint(ws->merged));
  struct stat st;
  ASSERT_EQ(::stat(ws->merged.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kUid);
  EXPECT_EQ(st.st_gid, kGid);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(ReadText(ws->merged + "/README.md"), "pristine\n");
  EXPECT_EQ(Git(ws->merged, "status --porcelain"), "");

  WriteText(ws->merged + "/README.md", "changed\n");
  WriteText(ws->merged + "/new.txt", "new\n");
  ASSERT_EQ(::unlink((ws->merged + "/dir/keep.txt").c_str()), 0);
  EXPECT_EQ(ReadText(ws->upper + "/README.md"), "changed\n");
  EXPECT_EQ(ReadText(ws->upper + "/new.txt"), "new\n");
  EXPECT_EQ(ReadText(tree_ + "/README.md"), "pristine\n");
  EXPECT_EQ(ReadText(tree_ + "/dir/keep.txt"), "keep\n");
  EXPECT_FALSE(Exists(tree_ + "/new.txt"));
  EXPECT_EQ(Git(ws->merged, "status --porcelain"), " M README.md\n D dir/keep.txt\n?? new.txt");
  EXPECT_EQ(Git(tree_, "status --porcelain"), "");

  // nosuid, nodev.
  std::string mountinfo = ReadText("/proc/self/mountinfo");
  size_t at = mountinfo.find(" " + ws->merged + " ");
  ASSERT_NE(at, std::string::npos);
  std::string line = mountinfo.substr(at, mountinfo.find('\n', at) - at);
  EXPECT_NE(line.find("nosuid"), std::string::npos) << line;
  EXPECT_NE(line.find("nodev"), std::string::npos) << line;
}

TEST_F(WorkspaceTest, SecondRunSeesAPristineTree) {
  auto first = MountWorkspace(tree_, tmp_ / "run1", kUid, kGid);
  ASSERT_TRUE(first.ok()) << first.error().message();
  WriteText(first->merged + "/README.md", "first run\n");
  auto second = MountWorkspace(tree_, tmp_ / "run2", kUid, kGid);
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ(ReadText(second->merged + "/README.md"), "pristine\n");
  EXPECT_EQ(ReadText(first->merged + "/README.md"), "first run\n");
}

TEST_F(WorkspaceTest, RemoveLeavesNoMountAndNoDirectory) {
  auto ws = MountWorkspace(tree_, tmp_ / "run1", kUid, kGid);
  ASSERT_TRUE(ws.ok()) << ws.error().message();
  WriteText(ws->merged + "/deep/er/file.txt", "x\n");
  ::chmod((ws->merged + "/deep/er").c_str(), 0);
  ASSERT_TRUE(RemoveWorkspace(tmp_ / "run1").ok());
  EXPECT_FALSE(IsMountPoint(ws->merged));
  EXPECT_FALSE(Exists(ws->merged));
  EXPECT_FALSE(Exists(ws->upper));
  EXPECT_FALSE(Exists(ws->work));
  EXPECT_TRUE(Exists(tmp_ / "run1"));  // the run directory is the caller's
  EXPECT_EQ(ReadText(tree_ + "/README.md"), "pristine\n");
  // Idempotent, and a run that never mounted is fine.
  EXPECT_TRUE(RemoveWorkspace(tmp_ / "run1").ok());
  EXPECT_TRUE(RemoveWorkspace(tmp_ / "never").ok());
}

TEST_F(WorkspaceTest, RemoveDetachesABusyMount) {
  auto ws = MountWorkspace(tree_, tmp_ / "run1", kUid, kGid);
  ASSERT_TRUE(ws.ok()) << ws.error().message();
  int fd = ::open((ws->merged + "/README.md").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto removed = RemoveWorkspace(tmp_ / "run1");
  ::close(fd);
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_FALSE(IsMountPoint(ws->merged));
  EXPECT_FALSE(Exists(ws->upper));
}

TEST_F(WorkspaceTest, RemoveDetachesMountsStackedOnTheWorkspace) {
  auto ws = MountWorkspace(tree_, tmp_ / "run1", kUid, kGid);
  ASSERT_TRUE(ws.ok()) << ws.error().message();
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(::mount("tmpfs", ws->merged.c_str(), "tmpfs", 0, "size=1m"), 0) << i;
  }
  ASSERT_TRUE(RemoveWorkspace(tmp_ / "run1").ok());
  EXPECT_FALSE(IsMountPoint(ws->merged));
  EXPECT_FALSE(Exists(ws->merged));
  EXPECT_FALSE(Exists(ws->upper));
}

TEST_F(WorkspaceTest, RemoveDoesNotFollowPlantedSymlinks) {
  std::string outside = tmp_ / "outside";
  WriteText(outside + "/canary", "alive\n");
  auto ws = MountWorkspace(tree_, tmp_ / "run1", kUid, kGid);
  ASSERT_TRUE(ws.ok()) << ws.error().message();
  ASSERT_EQ(::symlink(outside.c_str(), (ws->merged + "/escape").c_str()), 0);
  ASSERT_EQ(::symlink((outside + "/canary").c_str(), (ws->merged + "/file-link").c_str()), 0);
  ASSERT_TRUE(RemoveWorkspace(tmp_ / "run1").ok());
  EXPECT_EQ(ReadText(outside + "/canary"), "alive\n");
  EXPECT_FALSE(Exists(ws->upper));
}

TEST_F(WorkspaceTest, MountingTwiceOverOneRunDirectoryFails) {
  auto ws = MountWorkspace(tree_, tmp_ / "run1", kUid, kGid);
  ASSERT_TRUE(ws.ok()) << ws.error().message();
  WriteText(ws->merged + "/mine.txt", "mine\n");
  auto again = MountWorkspace(tree_, tmp_ / "run1", kUid, kGid);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message().find("mkdir('" + ws->upper + "'"), std::string::npos)
      << again.error().message();
  // The first mount and its content are untouched.
  EXPECT_EQ(ReadText(ws->merged + "/mine.txt"), "mine\n");
  EXPECT_TRUE(IsMountPoint(ws->merged));
}

TEST_F(WorkspaceTest, RejectsPathsThatWouldChangeTheOverlayOptions) {
  auto ws = MountWorkspace(tree_, tmp_ / "run,upperdir=x", kUid, kGid);
  ASSERT_FALSE(ws.ok());
  EXPECT_EQ(ws.error().code(), Error::Code::kInvalidArgument);
  EXPECT_FALSE(Exists(tmp_ / "run,upperdir=x"));
}

}  // namespace
}  // namespace kiln::git
