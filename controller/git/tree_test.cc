// Cache::Tree: content, ownership, and a .git the git CLI accepts.
#include <sys/stat.h>

#include <thread>

#include "controller/git/git.h"
#include "controller/git/testutil.h"

namespace kiln::git {
namespace {

using testing::CommitAll;
using testing::Exists;
using testing::Git;
using testing::InitRepo;
using testing::kGid;
using testing::kUid;
using testing::List;
using testing::ReadText;
using testing::TempDir;
using testing::WriteText;

class TreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown)";
    origin_ = tmp_ / "origin";
    InitRepo(origin_);
    WriteText(origin_ + "/README.md", "hello\n");
    WriteText(origin_ + "/src/deep/nested/file.c", "int main() { return 0; }\n");
    WriteText(origin_ + "/run.sh", "#!/bin/sh\necho run\n");
    ::chmod((origin_ + "/run.sh").c_str(), 0755);
    ::symlink("README.md", (origin_ + "/link").c_str());
    // Would turn LF into CRLF in a filtered checkout: the tree has the blob.
    WriteText(origin_ + "/.gitattributes", "*.txt text eol=crlf\n");
    WriteText(origin_ + "/lf.txt", "a\nb\n");
    CommitAll(origin_, "first");
    WriteText(origin_ + "/README.md", "hello again\n");
    std::string head = CommitAll(origin_, "second");
    auto r = cache_.Resolve(origin_, head);
    ASSERT_TRUE(r.ok()) << r.error().message();
    resolved_ = *r;
  }

  TempDir tmp_;
  std::string origin_;
  Cache cache_{tmp_ / "cache"};
  Resolved resolved_;
};

TEST_F(TreeTest, ContentOwnerAndGitRepository) {
  auto tree = cache_.Tree(resolved_, kUid, kGid);
  ASSERT_TRUE(tree.ok()) << tree.error().message();
  const std::string& t = *tree;
  EXPECT_EQ(t, tmp_ / "cache/trees/" + resolved_.commit + "-" + std::to_string(kUid));

  EXPECT_EQ(ReadText(t + "/README.md"), "hello again\n");
  EXPECT_EQ(ReadText(t + "/src/deep/nested/file.c"), "int main() { return 0; }\n");
  EXPECT_EQ(ReadText(t + "/lf.txt"), "a\nb\n");
  struct stat st;
  ASSERT_EQ(::stat((t + "/run.sh").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  char target[64] = {};
  ASSERT_GT(::readlink((t + "/link").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "README.md");

  // Every file and directory belongs to the sandbox's user, except the pack
  // files shared with the mirror: root's, read-only, readable by all.
  int packs = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(t)) {
    ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
    std::string p = e.path().string();
    if (p.find("/.git/objects/pack/") != std::string::npos) {
      ++packs;
      EXPECT_EQ(st.st_uid, 0u) << p;
      EXPECT_EQ(st.st_mode & 07777, 0444u) << p;
      EXPECT_GE(st.st_nlink, 2u) << p << " is a hard link of the mirror's pack";
      continue;
    }
    EXPECT_EQ(st.st_uid, kUid) << p;
    EXPECT_EQ(st.st_gid, kGid) << p;
  }
  EXPECT_GE(packs, 2);  // a .pack and its .idx
  ASSERT_EQ(::stat(t.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kUid);
  EXPECT_EQ(st.st_mode & 07777, 0755u);

  // The git CLI sees a clean checkout of the commit, with its history, and
  // needs no object outside the tree.
  EXPECT_EQ(Git(t, "status --porcelain"), "");
  EXPECT_EQ(Git(t, "log -1 --format=%H"), resolved_.commit);
  EXPECT_EQ(Git(t, "rev-list --count HEAD"), "2");
  EXPECT_EQ(Git(t, "diff --name-only HEAD~1"), "README.md");
  EXPECT_EQ(Git(t, "diff HEAD"), "");
  EXPECT_EQ(Git(t, "fsck --no-dangling --no-progress"), "");
  EXPECT_FALSE(Exists(t + "/.git/objects/info/alternates"));
  EXPECT_EQ(ReadText(t + "/.git/config").find("url"), std::string::npos);
  EXPECT_EQ(ReadText(t + "/.git/config").find(origin_), std::string::npos);
}

TEST_F(TreeTest, SecondCallReusesTheTree) {
  auto first = cache_.Tree(resolved_, kUid, kGid);
  ASSERT_TRUE(first.ok()) << first.error().message();
  struct stat a, b;
  ASSERT_EQ(::stat((*first + "/README.md").c_str(), &a), 0);
  auto second = cache_.Tree(resolved_, kUid, kGid);
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_EQ(*second, *first);
  ASSERT_EQ(::stat((*second + "/README.md").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // not rebuilt

  // Another uid gets a tree of its own.
  auto other = cache_.Tree(resolved_, kUid + 1, kGid + 1);
  ASSERT_TRUE(other.ok()) << other.error().message();
  EXPECT_NE(*other, *first);
  ASSERT_EQ(::stat(other->c_str(), &b), 0);
  EXPECT_EQ(b.st_uid, kUid + 1);
}

TEST_F(TreeTest, LooseObjectsOfTheMirrorAreCopied) {
  // Fetches write packs; a loose object comes from elsewhere (git CLI, gc).
  WriteText(tmp_ / "loose.txt", "a loose object\n");
  std::string oid = Git(resolved_.mirror_path, "hash-object -w " + (tmp_ / "loose.txt"));
  auto tree = cache_.Tree(resolved_, kUid, kGid);
  ASSERT_TRUE(tree.ok()) << tree.error().message();
  std::string copy = *tree + "/.git/objects/" + oid.substr(0, 2) + "/" + oid.substr(2);
  struct stat st;
  ASSERT_EQ(::lstat(copy.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kUid);
  EXPECT_EQ(st.st_nlink, 1u);  // a copy, not the mirror's inode
  EXPECT_EQ(Git(*tree, "cat-file -p " + oid), "a loose object");
}

TEST_F(TreeTest, ConcurrentCallersShareOneBuild) {
  std::vector<Result<std::string>> results(4, Error::Internal("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { results[i] = cache_.Tree(resolved_, kUid, kGid); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, *results[0]);
  }
  std::string name = resolved_.commit + "-" + std::to_string(kUid);
  EXPECT_EQ(List(tmp_ / "cache/trees"), (std::vector<std::string>{name, name + ".lock"}));
  EXPECT_EQ(Git(*results[0], "status --porcelain"), "");
}

TEST_F(TreeTest, LeftoversOfACrashedBuildAreNotATree) {
  std::string trees = tmp_ / "cache/trees";
  std::string name = resolved_.commit + "-" + std::to_string(kUid);
  std::string stale = trees + "/." + name + ".tmp-abcdef";
  WriteText(stale + "/README.md", "half\n");
  auto tree = cache_.Tree(resolved_, kUid, kGid);
  ASSERT_TRUE(tree.ok()) << tree.error().message();
  EXPECT_EQ(ReadText(*tree + "/README.md"), "hello again\n");
  EXPECT_FALSE(Exists(stale));
}

TEST_F(TreeTest, RejectsACommitThatIsNotAnObjectName) {
  Resolved bad = resolved_;
  bad.commit = "../../../etc";
  auto tree = cache_.Tree(bad, kUid, kGid);
  ASSERT_FALSE(tree.ok());
  EXPECT_EQ(tree.error().code(), Error::Code::kInvalidArgument);
  bad.commit = std::string(40, 'f');  // well-formed, not in the mirror
  tree = cache_.Tree(bad, kUid, kGid);
  ASSERT_FALSE(tree.ok());
  EXPECT_NE(tree.error().message().find(bad.commit), std::string::npos);
  EXPECT_FALSE(Exists(tmp_ / "cache/trees/" + bad.commit + "-" + std::to_string(kUid)));
  // Nothing half-made is left behind.
  for (const std::string& n : List(tmp_ / "cache/trees")) {
    EXPECT_EQ(n.find(".tmp-"), std::string::npos) << n;
  }
}

}  // namespace
}  // namespace kiln::git
