// Cache::Resolve against real repositories made with the git CLI.
#include <thread>

#include "controller/git/git.h"
#include "controller/git/testutil.h"

namespace kiln::git {
namespace {

using testing::CommitAll;
using testing::Exists;
using testing::Git;
using testing::InitRepo;
using testing::List;
using testing::Sh;
using testing::ShQuote;
using testing::TempDir;
using testing::WriteText;

class MirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    origin_ = tmp_ / "origin";
    InitRepo(origin_);
    WriteText(origin_ + "/a.txt", "one\n");
    c1_ = CommitAll(origin_, "first");
    Git(origin_, "tag -a v1 -m release-1");
    WriteText(origin_ + "/a.txt", "two\n");
    c2_ = CommitAll(origin_, "second");
    Git(origin_, "tag light");
    Git(origin_, "checkout -q -b feature");
    WriteText(origin_ + "/b.txt", "feature\n");
    c3_ = CommitAll(origin_, "third");
    Git(origin_, "checkout -q main");
  }

  TempDir tmp_;
  std::string origin_, c1_, c2_, c3_;
  Cache cache_{tmp_ / "cache"};
};

TEST_F(MirrorTest, ResolvesShaBranchTagAndHead) {
  struct Case {
    std::string rev, commit;
  } cases[] = {
      {"main", c2_},
      {"feature", c3_},
      {"v1", c1_},  // annotated tag, peeled
      {"light", c2_},
      {"HEAD", c2_},
      {c1_, c1_},
      {c3_.substr(0, 8), c3_},
      {"refs/heads/feature", c3_},
  };
  for (const Case& c : cases) {
    auto r = cache_.Resolve(origin_, c.rev);
    ASSERT_TRUE(r.ok()) << c.rev << ": " << r.error().message();
    EXPECT_EQ(r->commit, c.commit) << c.rev;
    EXPECT_EQ(r->url, origin_);
  }
}

TEST_F(MirrorTest, MirrorIsBareAndNamedBySha256OfUrl) {
  std::string url = "file://" + origin_;
  auto r = cache_.Resolve(url, "main");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->commit, c2_);
  std::string key = Sh("printf %s " + ShQuote(url) + " | sha256sum | cut -c1-24").out;
  key.pop_back();
  EXPECT_EQ(r->mirror_path, tmp_ / "cache/mirrors/" + key + ".git");
  EXPECT_EQ(Git(r->mirror_path, "rev-parse --is-bare-repository"), "true");
  // Every branch and tag of the origin, under the same names.
  EXPECT_EQ(Git(r->mirror_path, "for-each-ref --format='%(refname)'"),
            "refs/heads/feature\nrefs/heads/main\nrefs/tags/light\nrefs/tags/v1");
  EXPECT_EQ(Git(r->mirror_path, "symbolic-ref HEAD"), "refs/heads/main");
  EXPECT_EQ(List(tmp_ / "cache/mirrors"), (std::vector<std::string>{key + ".git", key + ".lock"}));
}

TEST_F(MirrorTest, CreatesItsRootWithParents) {
  Cache nested(tmp_ / "var/lib/kiln/cache");
  auto r = nested.Resolve(origin_, "main");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->commit, c2_);
  EXPECT_EQ(r->mirror_path.rfind(tmp_ / "var/lib/kiln/cache/mirrors/", 0), 0u);
}

TEST_F(MirrorTest, PresentShaNeedsNoFetchNewCommitIsFetched) {
  auto first = cache_.Resolve(origin_, c2_);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_TRUE(first->fetched);  // the clone

  auto again = cache_.Resolve(origin_, c1_);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_FALSE(again->fetched);
  EXPECT_EQ(again->commit, c1_);

  WriteText(origin_ + "/a.txt", "three\n");
  std::string c4 = CommitAll(origin_, "fourth");
  auto fresh = cache_.Resolve(origin_, c4);
  ASSERT_TRUE(fresh.ok()) << fresh.error().message();
  EXPECT_TRUE(fresh->fetched);
  EXPECT_EQ(fresh->commit, c4);

  // A branch moves: it is fetched every time and names the new tip.
  WriteText(origin_ + "/a.txt", "four\n");
  std::string c5 = CommitAll(origin_, "fifth");
  auto branch = cache_.Resolve(origin_, "main");
  ASSERT_TRUE(branch.ok()) << branch.error().message();
  EXPECT_TRUE(branch->fetched);
  EXPECT_EQ(branch->commit, c5);

  // With the origin gone, a sha in the mirror still resolves, offline.
  std::filesystem::rename(origin_, tmp_ / "moved");
  auto offline = cache_.Resolve(origin_, c4);
  ASSERT_TRUE(offline.ok()) << offline.error().message();
  EXPECT_FALSE(offline->fetched);
  auto name = cache_.Resolve(origin_, "main");
  ASSERT_FALSE(name.ok());
  EXPECT_EQ(name.error().message().rfind("repository '" + origin_ + "' is unreachable: ", 0), 0u)
      << name.error().message();
}

TEST_F(MirrorTest, UnreachableRepositoryLeavesNoMirror) {
  std::string url = tmp_ / "no-such-repo";
  auto r = cache_.Resolve(url, "main");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Error::Code::kIO);
  const std::string prefix = "repository '" + url + "' is unreachable: ";
  EXPECT_EQ(r.error().message().rfind(prefix, 0), 0u) << r.error().message();
  EXPECT_GT(r.error().message().size(), prefix.size());  // libgit2's reason follows
  // Only the lock file: no mirror, no half-made clone.
  auto names = List(tmp_ / "cache/mirrors");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_NE(names[0].find(".lock"), std::string::npos);

  auto bad_url = cache_.Resolve("https://127.0.0.1:1/nothing.git", "main");
  ASSERT_FALSE(bad_url.ok());
  EXPECT_EQ(bad_url.error().message().rfind("repository 'https://127.0.0.1:1/nothing.git' is "
                                            "unreachable: ",
                                            0),
            0u)
      << bad_url.error().message();
}

TEST_F(MirrorTest, MissingRevision) {
  for (std::string rev : {std::string("no-such-branch"), std::string(40, '0'),
                          std::string("deadbeef"), c1_ + ":a.txt"}) {
    auto r = cache_.Resolve(origin_, rev);
    ASSERT_FALSE(r.ok()) << rev;
    EXPECT_EQ(r.error().code(), Error::Code::kNotFound);
    EXPECT_EQ(r.error().message(), "revision '" + rev + "' not found in '" + origin_ + "'");
  }
}

TEST_F(MirrorTest, ConcurrentResolvesShareOneMirror) {
  std::string other = tmp_ / "other";
  InitRepo(other);
  WriteText(other + "/x.txt", "x\n");
  std::string other_commit = CommitAll(other, "x");

  std::vector<Result<Resolved>> results(8, Error::Internal("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      results[i] = i % 2 == 0 ? cache_.Resolve(origin_, c2_) : cache_.Resolve(other, other_commit);
    });
  }
  for (auto& t : threads) t.join();
  int fetched[2] = {0, 0};
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].error().message();
    EXPECT_EQ(results[i]->commit, i % 2 == 0 ? c2_ : other_commit);
    fetched[i % 2] += results[i]->fetched;
  }
  // One clone per repository; the other callers waited and found the sha.
  EXPECT_EQ(fetched[0], 1);
  EXPECT_EQ(fetched[1], 1);
  auto names = List(tmp_ / "cache/mirrors");
  EXPECT_EQ(names.size(), 4u);  // two mirrors, two lock files, nothing half-made
  for (const std::string& n : names) {
    EXPECT_TRUE(n.size() == 24 + 4 || n.size() == 24 + 5) << n;
  }
  EXPECT_TRUE(Exists(results[0]->mirror_path + "/objects/pack"));
}

}  // namespace
}  // namespace kiln::git
