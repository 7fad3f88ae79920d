// write.h against real repositories: a workspace's changes committed into a
// mirror and pushed to a bare repository, files read at commits, patches
// between commits. The git CLI is the oracle: what `git log`, `git show`,
// `git ls-tree` and `git diff` say is what a user would check.
#include "controller/git/write.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <thread>

#include "controller/git/git.h"
#include "controller/git/testutil.h"
#include "tests/support/net.h"

namespace kiln::git {
namespace {

using testing::CommitAll;
using testing::Git;
using testing::GitCommand;
using testing::InitRepo;
using testing::ReadText;
using testing::Sh;
using testing::ShQuote;
using testing::TempDir;
using testing::WriteText;

constexpr char kKeep[] = "refs/kiln/runs/1";

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

FileChange Change(const std::string& path, char status, uint32_t new_mode) {
  FileChange f;
  f.path = path;
  f.status = status;
  f.new_mode = new_mode;
  return f;
}

class WriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    origin_ = tmp_ / "origin";
    InitRepo(origin_);
    WriteText(origin_ + "/README.md", "line 1\nline 2\nline 3\n");
    WriteText(origin_ + "/src/main.c", "int main() { return 0; }\n");
    WriteText(origin_ + "/docs/a.txt", "a\n");
    WriteText(origin_ + "/docs/b.txt", "b\n");
    WriteText(origin_ + "/bin/tool.sh", "#!/bin/sh\n");
    ::chmod((origin_ + "/bin/tool.sh").c_str(), 0755);
    ::symlink("README.md", (origin_ + "/link").c_str());
    base_ = CommitAll(origin_, "base");
    Git(origin_, "branch other");
    Git(origin_, "tag v1");
    auto r = cache_.Resolve(origin_, "main");
    ASSERT_TRUE(r.ok()) << r.error().message();
    mirror_ = r->mirror_path;
    // The workspace: a checkout of the commit, changed in place.
    ws_ = tmp_ / "ws";
    Git(tmp_.path(), "clone -q " + ShQuote(origin_) + " ws");
  }

  // Collect's view of the workspace, committed.
  std::string CommitWorkspace(const Signature& who = {"Kiln Bot", "bot@kiln.dev", 1700000000}) {
    auto d = Collect(mirror_, base_, ws_);
    EXPECT_TRUE(d.ok()) << d.error().message();
    if (!d.ok()) return "";
    auto c =
        CommitChanges(mirror_, base_, ws_, d->files, "Run 1\n\nWhat the agent did.", who, kKeep);
    EXPECT_TRUE(c.ok()) << c.error().message();
    return c.ok() ? *c : "";
  }

  // True when the mirror holds an object with the content of path.
  bool MirrorHoldsContentOf(const std::string& path) {
    std::string id = Git(tmp_.path(), "hash-object " + ShQuote(path));
    return Sh(GitCommand(mirror_, "cat-file -e " + id)).status == 0;
  }

  TempDir tmp_;
  std::string origin_, base_, mirror_, ws_;
  Cache cache_{tmp_ / "cache"};
};

// --- CommitChanges --------------------------------------------------------

TEST_F(WriteTest, CommitsWhatCollectFound) {
  WriteText(ws_ + "/README.md", "line 1\nline two\nline 3\n");
  WriteText(ws_ + "/src/new.c", "int x;\n");
  ASSERT_EQ(::unlink((ws_ + "/docs/a.txt").c_str()), 0);
  ASSERT_EQ(::chmod((ws_ + "/src/main.c").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((ws_ + "/bin/tool.sh").c_str(), 0644), 0);
  ASSERT_EQ(::symlink("../../etc/shadow", (ws_ + "/src/leak").c_str()), 0);
  std::string sha = CommitWorkspace();
  ASSERT_EQ(sha.size(), 40u);

  EXPECT_EQ(Git(mirror_, std::string("rev-parse ") + kKeep), sha);
  EXPECT_EQ(Git(mirror_, "log -1 --format='%an <%ae> %at %cn <%ce> %ct %P' " + sha),
            "Kiln Bot <bot@kiln.dev> 1700000000 Kiln Bot <bot@kiln.dev> 1700000000 " + base_);
  EXPECT_EQ(Git(mirror_, "log -1 --format=%B " + sha), "Run 1\n\nWhat the agent did.\n");
  EXPECT_EQ(
      Git(mirror_, "show --format= --name-status --no-renames " + sha),
      "M\tREADME.md\nM\tbin/tool.sh\nD\tdocs/a.txt\nA\tsrc/leak\nM\tsrc/main.c\nA\tsrc/new.c");
  std::string tree = Git(mirror_, "ls-tree -r " + sha);
  EXPECT_TRUE(Contains(tree, "100755 blob")) << tree;
  EXPECT_TRUE(Contains(tree, "120000 blob")) << tree;
  EXPECT_EQ(Git(mirror_, "ls-tree --format='%(objectmode) %(path)' -r " + sha),
            "100644 README.md\n100644 bin/tool.sh\n100644 docs/b.txt\n120000 link\n"
            "120000 src/leak\n100755 src/main.c\n100644 src/new.c");
  EXPECT_EQ(Git(mirror_, "cat-file -p " + sha + ":src/leak"), "../../etc/shadow");
  // The commit holds exactly what Collect reported: the same patch.
  auto d = Collect(mirror_, base_, ws_);
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(Sh(GitCommand(mirror_, "diff --no-renames " + base_ + " " + sha)).out, d->patch);
  EXPECT_FALSE(MirrorHoldsContentOf("/etc/shadow"));
}

TEST_F(WriteTest, SignatureTimeZeroIsNow) {
  WriteText(ws_ + "/README.md", "changed\n");
  int64_t before = std::time(nullptr);
  std::string sha = CommitWorkspace(Signature{});
  int64_t at = std::stoll(Git(mirror_, "log -1 --format=%ct " + sha));
  EXPECT_GE(at, before);
  EXPECT_LE(at, std::time(nullptr));
  EXPECT_EQ(Git(mirror_, "log -1 --format='%an <%ae>' " + sha), "kiln <kiln@localhost>");
}

TEST_F(WriteTest, FileAndDirectorySwapPlaces) {
  // docs/ becomes a file; README.md becomes a directory.
  ASSERT_EQ(Sh("rm -r " + ShQuote(ws_ + "/docs") + " " + ShQuote(ws_ + "/README.md")).status, 0);
  WriteText(ws_ + "/docs", "now a file\n");
  WriteText(ws_ + "/README.md/inner.md", "now a directory\n");
  std::string sha = CommitWorkspace();
  ASSERT_FALSE(sha.empty());
  EXPECT_EQ(Git(mirror_, "ls-tree --format='%(objectmode) %(path)' -r " + sha),
            "100644 README.md/inner.md\n100755 bin/tool.sh\n100644 docs\n120000 link\n"
            "100644 src/main.c");
  EXPECT_EQ(Git(mirror_, "cat-file -p " + sha + ":docs"), "now a file");
}

TEST_F(WriteTest, RenameRemovesTheOldPath) {
  ASSERT_EQ(::rename((ws_ + "/docs/a.txt").c_str(), (ws_ + "/docs/c.txt").c_str()), 0);
  FileChange renamed = Change("docs/c.txt", 'A', 0100644);
  renamed.old_path = "docs/a.txt";
  auto c =
      CommitChanges(mirror_, base_, ws_, {renamed, Change("docs/a.txt", 'D', 0)}, "mv", {}, kKeep);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(Git(mirror_, "show --format= --name-status -M " + *c), "R100\tdocs/a.txt\tdocs/c.txt");
}

TEST_F(WriteTest, ContentIsReadNowFromTheWorkspace) {
  WriteText(ws_ + "/README.md", "first\n");
  auto d = Collect(mirror_, base_, ws_);
  ASSERT_TRUE(d.ok()) << d.error().message();
  WriteText(ws_ + "/README.md", "second\n");
  auto c = CommitChanges(mirror_, base_, ws_, d->files, "m", {}, kKeep);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(Git(mirror_, "cat-file -p " + *c + ":README.md"), "second");
}

TEST_F(WriteTest, SymlinkedDirectoryIsNeverFollowed) {
  // The agent replaced src/ by a link to /etc and listed src/passwd.
  ASSERT_EQ(Sh("rm -r " + ShQuote(ws_ + "/src")).status, 0);
  ASSERT_EQ(::symlink("/etc", (ws_ + "/src").c_str()), 0);
  for (const std::string& path : {std::string("src/passwd"), std::string("src/ssl/openssl.cnf")}) {
    auto c = CommitChanges(mirror_, base_, ws_, {Change(path, 'M', 0100644)}, "m", {}, kKeep);
    ASSERT_FALSE(c.ok()) << path;
    EXPECT_TRUE(Contains(c.error().message(), "'" + path + "'")) << c.error().message();
    EXPECT_TRUE(Contains(c.error().message(), "open('src')")) << c.error().message();
  }
  EXPECT_FALSE(MirrorHoldsContentOf("/etc/passwd"));
  EXPECT_FALSE(MirrorHoldsContentOf("/etc/ssl/openssl.cnf"));
  EXPECT_NE(Sh(GitCommand(mirror_, std::string("rev-parse --verify -q ") + kKeep)).status, 0);

  // Deeper: a link in the middle of the path.
  ASSERT_EQ(::symlink("/etc", (ws_ + "/docs/etc").c_str()), 0);
  auto deep = CommitChanges(mirror_, base_, ws_, {Change("docs/etc/hostname", 'A', 0100644)}, "m",
                            {}, kKeep);
  ASSERT_FALSE(deep.ok());
  EXPECT_TRUE(Contains(deep.error().message(), "open('docs/etc')")) << deep.error().message();
}

TEST_F(WriteTest, SymlinkIsCommittedAsALink) {
  ASSERT_EQ(::symlink("/etc/passwd", (ws_ + "/secret").c_str()), 0);
  // The tracked link retargeted, and a file replaced by a link.
  ASSERT_EQ(::unlink((ws_ + "/link").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/shadow", (ws_ + "/link").c_str()), 0);
  ASSERT_EQ(::unlink((ws_ + "/docs/b.txt").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/passwd", (ws_ + "/docs/b.txt").c_str()), 0);
  std::string sha = CommitWorkspace();
  ASSERT_FALSE(sha.empty());
  EXPECT_EQ(Git(mirror_, "ls-tree --format='%(objectmode) %(path)' " + sha + " secret link"),
            "120000 link\n120000 secret");
  EXPECT_EQ(Git(mirror_, "ls-tree --format='%(objectmode)' " + sha + " docs/b.txt"), "120000");
  EXPECT_EQ(Git(mirror_, "cat-file -p " + sha + ":secret"), "/etc/passwd");
  EXPECT_EQ(Git(mirror_, "cat-file -p " + sha + ":link"), "/etc/shadow");
  EXPECT_EQ(Git(mirror_, "cat-file -p " + sha + ":docs/b.txt"), "/etc/passwd");
  EXPECT_FALSE(MirrorHoldsContentOf("/etc/passwd"));
  EXPECT_FALSE(MirrorHoldsContentOf("/etc/shadow"));
}

TEST_F(WriteTest, CommitErrorsNameThePath) {
  auto commit = [&](std::vector<FileChange> files, const std::string& keep = kKeep) {
    return CommitChanges(mirror_, base_, ws_, files, "m", {}, keep);
  };
  auto expect_error = [](const Result<std::string>& r, const std::string& part) {
    ASSERT_FALSE(r.ok()) << part;
    EXPECT_TRUE(Contains(r.error().message(), part)) << r.error().message();
  };
  auto empty = commit({});
  expect_error(empty, "no changes to commit");
  EXPECT_EQ(empty.error().code(), Error::Code::kInvalidArgument);

  // A FIFO, whether the change list says so (mode 0) or not.
  ASSERT_EQ(::mkfifo((ws_ + "/pipe").c_str(), 0644), 0);
  expect_error(commit({Change("pipe", 'A', 0)}), "'pipe': a socket, FIFO or device");
  expect_error(commit({Change("pipe", 'A', 0100644)}), "'pipe': a socket, FIFO or device");
  // Paths no tree may hold, or that escape the workspace.
  for (std::string bad :
       {"../outside", "/etc/passwd", "a//b", "./x", ".git/config", "x/.GIT/y", "dir/", ""}) {
    auto r = commit({Change(bad, 'A', 0100644)});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), Error::Code::kInvalidArgument) << bad;
  }
  expect_error(commit({Change("README.md", 'M', 0100644), Change("README.md", 'M', 0100644)}),
               "listed twice");
  expect_error(commit({Change("missing.txt", 'A', 0100644)}), "'missing.txt'");
  expect_error(commit({Change("src", 'A', 0100644)}), "'src': it is a directory");
  // Nothing changed after all.
  expect_error(commit({Change("README.md", 'M', 0100644)}), "leave the parent's tree as it was");
  // Keep refs live under refs/kiln/, which fetches leave alone.
  expect_error(commit({Change("README.md", 'D', 0)}, "refs/heads/run"), "'refs/heads/run'");
  expect_error(commit({Change("README.md", 'D', 0)}, "refs/kiln/bad..name"), "refs/kiln/");
  auto no_parent = CommitChanges(mirror_, std::string(40, 'a'), ws_, {Change("README.md", 'D', 0)},
                                 "m", {}, kKeep);
  ASSERT_FALSE(no_parent.ok());
  EXPECT_EQ(no_parent.error().code(), Error::Code::kNotFound);
  auto no_message =
      CommitChanges(mirror_, base_, ws_, {Change("README.md", 'D', 0)}, " \n\n", {}, kKeep);
  expect_error(no_message, "message is empty");
  // None of these left a keep ref behind.
  EXPECT_NE(Sh(GitCommand(mirror_, std::string("rev-parse --verify -q ") + kKeep)).status, 0);
}

TEST_F(WriteTest, FetchesKeepRefsUnderRefsKiln) {
  WriteText(ws_ + "/README.md", "changed\n");
  std::string sha = CommitWorkspace();
  ASSERT_FALSE(sha.empty());
  // The origin moves on: a new commit on main, a branch deleted, a pull
  // request ref added, and a ref of its own under refs/kiln/ (which must not
  // overwrite the mirror's).
  WriteText(origin_ + "/README.md", "upstream\n");
  std::string upstream = CommitAll(origin_, "upstream");
  Git(origin_, "branch -D other");
  Git(origin_, "update-ref refs/pull/7/head " + upstream);
  Git(origin_, "update-ref refs/kiln/runs/1 " + upstream);
  Git(origin_, "update-ref refs/kiln/runs/2 " + upstream);
  auto r = cache_.Resolve(origin_, "main");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(r->fetched);
  EXPECT_EQ(r->commit, upstream);
  EXPECT_EQ(Git(mirror_, "for-each-ref --format='%(refname) %(objectname)'"),
            "refs/heads/main " + upstream + "\nrefs/kiln/runs/1 " + sha + "\nrefs/pull/7/head " +
                upstream + "\nrefs/tags/v1 " + base_);
  EXPECT_EQ(Git(mirror_, "cat-file -t " + sha), "commit");

  // A namespace the origin drops entirely is still pruned; refs/kiln/ is not.
  Git(origin_, "update-ref -d refs/pull/7/head");
  Git(origin_, "tag -d v1");
  ASSERT_TRUE(cache_.Resolve(origin_, "main").ok());
  EXPECT_EQ(Git(mirror_, "for-each-ref --format='%(refname)'"),
            "refs/heads/main\nrefs/kiln/runs/1");
}

// --- Push -----------------------------------------------------------------

class PushTest : public WriteTest {
 protected:
  void SetUp() override {
    WriteTest::SetUp();
    remote_ = tmp_ / "remote.git";
    Git(tmp_.path(), "clone -q --bare " + ShQuote(origin_) + " remote.git");
    Git(remote_, "branch feature " + base_);
  }

  std::string Refs() { return Git(remote_, "for-each-ref --format='%(refname) %(objectname)'"); }

  std::string remote_;
};

TEST_F(PushTest, PushesANewBranchAndLeavesTheOthers) {
  WriteText(ws_ + "/README.md", "changed\n");
  std::string sha = CommitWorkspace();
  std::string before = Refs();
  auto p = Push(mirror_, sha, remote_, "kiln/run-1", {});
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(Git(remote_, "rev-parse refs/heads/kiln/run-1"), sha);
  EXPECT_EQ(Git(remote_, "log --format=%s kiln/run-1"), "Run 1\nbase");
  // Every other branch and tag as it was.
  EXPECT_EQ(Refs(), "refs/heads/feature " + base_ + "\nrefs/heads/kiln/run-1 " + sha +
                        "\nrefs/heads/main " + base_ + "\nrefs/heads/other " + base_ +
                        "\nrefs/tags/v1 " + base_);
  EXPECT_EQ(before, "refs/heads/feature " + base_ + "\nrefs/heads/main " + base_ +
                        "\nrefs/heads/other " + base_ + "\nrefs/tags/v1 " + base_);
  // No temporary ref left in the mirror.
  EXPECT_EQ(Git(mirror_, "for-each-ref refs/kiln/push"), "");
  // Pushing the same commit again is a no-op, not an error.
  auto again = Push(mirror_, sha, remote_, "kiln/run-1", {});
  EXPECT_TRUE(again.ok()) << again.error().message();
}

TEST_F(PushTest, FastForwardNeedsNoForce) {
  WriteText(ws_ + "/README.md", "changed\n");
  std::string sha = CommitWorkspace();
  auto p = Push(mirror_, sha, remote_, "main", {});
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(Git(remote_, "rev-parse main"), sha);
  EXPECT_EQ(Git(remote_, "rev-parse feature"), base_);
}

TEST_F(PushTest, NonFastForwardNeedsForce) {
  // The remote's main moved on without the run's commit.
  WriteText(origin_ + "/other.txt", "someone else\n");
  std::string theirs = CommitAll(origin_, "theirs");
  Git(origin_, "push -q " + ShQuote(remote_) + " main");
  WriteText(ws_ + "/README.md", "changed\n");
  std::string sha = CommitWorkspace();
  std::string before = Refs();

  // The mirror does not have the remote's commit yet, then it does: refused
  // either way, and the remote left as it was.
  for (bool fetched : {false, true}) {
    if (fetched) {
      ASSERT_TRUE(cache_.Resolve(origin_, "main").ok());
    }
    auto p = Push(mirror_, sha, remote_, "main", {});
    ASSERT_FALSE(p.ok()) << fetched;
    EXPECT_TRUE(Contains(p.error().message(), "branch 'main'")) << p.error().message();
    EXPECT_TRUE(Contains(p.error().message(), "rejected, not a fast-forward"))
        << p.error().message();
    EXPECT_EQ(Git(remote_, "rev-parse main"), theirs);
    EXPECT_EQ(Refs(), before);
  }
  EXPECT_EQ(Git(mirror_, "for-each-ref refs/kiln/push"), "");
}

TEST_F(PushTest, ForceReplacesTheBranchOnly) {
  // The remote's main moved on with a commit the mirror never saw.
  std::string other = tmp_ / "other";
  Git(tmp_.path(), "clone -q " + ShQuote(remote_) + " other");
  WriteText(other + "/other.txt", "someone else\n");
  std::string theirs = CommitAll(other, "theirs");
  Git(other, "push -q origin main");
  WriteText(ws_ + "/README.md", "changed\n");
  std::string sha = CommitWorkspace();
  ASSERT_NE(Sh(GitCommand(mirror_, "cat-file -e " + theirs)).status, 0);

  PushOptions force;
  force.force = true;
  auto forced = Push(mirror_, sha, remote_, "main", force);
  ASSERT_TRUE(forced.ok()) << forced.error().message();
  EXPECT_EQ(Git(remote_, "log --format=%s main"), "Run 1\nbase");
  EXPECT_EQ(Refs(), "refs/heads/feature " + base_ + "\nrefs/heads/main " + sha +
                        "\nrefs/heads/other " + base_ + "\nrefs/tags/v1 " + base_);
  // No temporary ref left, and the mirror's own refs did not move.
  EXPECT_EQ(Git(mirror_, "for-each-ref --format='%(refname)'"),
            "refs/heads/main\nrefs/heads/other\nrefs/kiln/runs/1\nrefs/tags/v1");
  // A forced push of a new branch needs nothing to fetch.
  auto fresh = Push(mirror_, sha, remote_, "kiln/new", force);
  ASSERT_TRUE(fresh.ok()) << fresh.error().message();
  EXPECT_EQ(Git(remote_, "rev-parse kiln/new"), sha);
}

// A remote that refuses the update itself (a pre-receive hook, as a forge's
// branch protection would): served by `git daemon` over git://, the one
// transport here that runs the remote's hooks and reports per-ref status.
TEST_F(PushTest, RemoteRefusalNamesBranchAndReason) {
  std::string served = tmp_ / "served";
  Git(tmp_.path(), "clone -q --bare " + ShQuote(origin_) + " served/guarded.git");
  WriteText(served + "/guarded.git/hooks/pre-receive",
            "#!/bin/sh\necho 'protected branch' >&2\nexit 1\n");
  ASSERT_EQ(::chmod((served + "/guarded.git/hooks/pre-receive").c_str(), 0755), 0);
  uint16_t port = kiln::testing::FreePort();
  ASSERT_GT(port, 0);
  std::string pid_file = tmp_ / "daemon.pid";
  auto started =
      Sh("git daemon --detach --reuseaddr --export-all --enable=receive-pack "
         "--listen=127.0.0.1 --port=" +
         std::to_string(port) + " --base-path=" + ShQuote(served) +
         " --pid-file=" + ShQuote(pid_file) + " " + ShQuote(served));
  if (started.status != 0) GTEST_SKIP() << "git daemon: " << started.out;
  for (int i = 0; i < 100 && !kiln::testing::Listening(port); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  pid_t daemon = std::stoi(ReadText(pid_file));
  struct Kill {
    pid_t pid;
    ~Kill() { ::kill(pid, SIGTERM); }
  } kill_daemon{daemon};
  ASSERT_TRUE(kiln::testing::Listening(port));

  WriteText(ws_ + "/README.md", "changed\n");
  std::string sha = CommitWorkspace();
  std::string url = "git://127.0.0.1:" + std::to_string(port) + "/guarded.git";
  auto p = Push(mirror_, sha, url, "main", {});
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(Contains(p.error().message(), "branch 'main' of '" + url + "'"))
      << p.error().message();
  EXPECT_TRUE(Contains(p.error().message(), "rejected: pre-receive hook declined"))
      << p.error().message();
  EXPECT_EQ(Git(served + "/guarded.git", "rev-parse main"), base_);
  EXPECT_EQ(Git(mirror_, "for-each-ref refs/kiln/push"), "");
}

TEST_F(PushTest, ErrorsNameTheBranch) {
  WriteText(ws_ + "/README.md", "changed\n");
  std::string sha = CommitWorkspace();
  auto missing_remote = Push(mirror_, sha, tmp_ / "no-such.git", "x", {});
  ASSERT_FALSE(missing_remote.ok());
  EXPECT_TRUE(Contains(missing_remote.error().message(), "branch 'x' of '" + tmp_ / "no-such.git"))
      << missing_remote.error().message();
  PushOptions token;
  token.token = "secret-token";
  auto refused = Push(mirror_, sha, "https://127.0.0.1:1/r.git", "x", token);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(Contains(refused.error().message(), "branch 'x'")) << refused.error().message();
  EXPECT_FALSE(Contains(refused.error().message(), "secret-token"));
  for (std::string bad : {"", "a..b", "with space", "x.lock", "-x", "HEAD", "refs/../x", "a/"}) {
    auto r = Push(mirror_, sha, remote_, bad, {});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), Error::Code::kInvalidArgument) << bad;
  }
  auto unknown = Push(mirror_, std::string(40, 'b'), remote_, "x", {});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Error::Code::kNotFound);
  EXPECT_EQ(Git(mirror_, "for-each-ref refs/kiln/push"), "");
  EXPECT_EQ(Sh(GitCommand(remote_, "rev-parse --verify -q refs/heads/x")).status, 1);
}

// --- Reading at a commit ----------------------------------------------------

TEST_F(WriteTest, ReadFileAtAndListDirAt) {
  auto readme = ReadFileAt(mirror_, base_, "README.md");
  ASSERT_TRUE(readme.ok()) << readme.error().message();
  ASSERT_TRUE(readme->has_value());
  EXPECT_EQ(**readme, "line 1\nline 2\nline 3\n");
  auto tool = ReadFileAt(mirror_, base_, "bin/tool.sh");
  ASSERT_TRUE(tool.ok() && tool->has_value());
  EXPECT_EQ(**tool, "#!/bin/sh\n");
  for (std::string absent : {"nope.txt", "src/nope.c", "README.md/inner", "nope/deeper/x"}) {
    auto r = ReadFileAt(mirror_, base_, absent);
    ASSERT_TRUE(r.ok()) << absent << ": " << r.error().message();
    EXPECT_FALSE(r->has_value()) << absent;
  }
  struct {
    std::string path, error;
  } errors[] = {{"src", "directory"},
                {"link", "symlink"},
                {"../x", "not a relative path"},
                {"/README.md", "not a relative path"},
                {"", "not a relative path"}};
  for (const auto& e : errors) {
    auto r = ReadFileAt(mirror_, base_, e.path);
    ASSERT_FALSE(r.ok()) << e.path;
    EXPECT_TRUE(Contains(r.error().message(), e.error)) << r.error().message();
  }
  // A submodule entry, made with the plumbing.
  Git(origin_, "update-index --add --cacheinfo 160000," + base_ + ",sub");
  Git(origin_, "commit -q -m sub");
  std::string with_sub = Git(origin_, "rev-parse HEAD");
  ASSERT_TRUE(cache_.Resolve(origin_, with_sub).ok());
  auto sub = ReadFileAt(mirror_, with_sub, "sub");
  ASSERT_FALSE(sub.ok());
  EXPECT_TRUE(Contains(sub.error().message(), "submodule")) << sub.error().message();

  auto root = ListDirAt(mirror_, base_, "");
  ASSERT_TRUE(root.ok()) << root.error().message();
  EXPECT_EQ(*root, (std::vector<std::string>{"README.md", "bin", "docs", "link", "src"}));
  auto docs = ListDirAt(mirror_, base_, "docs/");
  ASSERT_TRUE(docs.ok());
  EXPECT_EQ(*docs, (std::vector<std::string>{"a.txt", "b.txt"}));
  for (std::string none : {"nope", "README.md", "docs/a.txt/x"}) {
    auto r = ListDirAt(mirror_, base_, none);
    ASSERT_TRUE(r.ok()) << none << ": " << r.error().message();
    EXPECT_TRUE(r->empty()) << none;
  }
  EXPECT_FALSE(ListDirAt(mirror_, base_, "../etc").ok());
  EXPECT_FALSE(ReadFileAt(mirror_, "main", "README.md").ok());  // a commit name, not a branch
}

TEST_F(WriteTest, DiffCommitsMatchesGitDiff) {
  std::string lines;
  for (int i = 1; i <= 30; ++i) lines += "line " + std::to_string(i) + "\n";
  WriteText(origin_ + "/multi.txt", lines);
  WriteText(origin_ + "/moved.txt", lines);
  WriteText(origin_ + "/renamed.txt", "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\n");
  WriteText(origin_ + "/noeol.txt", "a\nb");
  WriteText(origin_ + "/data.bin", std::string("\x01\x00\x02", 3));
  WriteText(origin_ + "/with space.txt", "x\n");
  std::string c1 = CommitAll(origin_, "c1");
  std::string changed = lines;
  changed.replace(changed.find("line 3\n"), 7, "line three\n");
  changed.replace(changed.find("line 27\n"), 8, "line 27 changed\nline 27b\n");
  WriteText(origin_ + "/multi.txt", changed);
  Git(origin_, "mv moved.txt moved-to.txt");
  Git(origin_, "mv renamed.txt renamed-to.txt");
  WriteText(origin_ + "/renamed-to.txt", "one\ntwo\nthree\nfour\nfive\nsix\nseven\nEIGHT\n");
  WriteText(origin_ + "/noeol.txt", "a\nc");
  WriteText(origin_ + "/data.bin", std::string("\x01\x00\x03", 3));
  WriteText(origin_ + "/with space.txt", "y\n");
  WriteText(origin_ + "/\xC3\xBC.txt", "unicode\n");
  ::chmod((origin_ + "/README.md").c_str(), 0755);
  ASSERT_EQ(::unlink((origin_ + "/docs/a.txt").c_str()), 0);
  ASSERT_EQ(::unlink((origin_ + "/link").c_str()), 0);
  WriteText(origin_ + "/link", "now a file\n");
  std::string c2 = CommitAll(origin_, "c2");
  ASSERT_TRUE(cache_.Resolve(origin_, "main").ok());

  auto d = DiffCommits(mirror_, c1, c2);
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(*d, Sh(GitCommand(mirror_, "diff " + c1 + " " + c2)).out);
  EXPECT_TRUE(Contains(*d, "rename from moved.txt\nrename to moved-to.txt\n")) << *d;
  auto same = DiffCommits(mirror_, c2, c2);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, "");
  EXPECT_FALSE(DiffCommits(mirror_, c1, std::string(40, 'c')).ok());
}

TEST_F(WriteTest, MergeBase) {
  WriteText(origin_ + "/a.txt", "main\n");
  std::string main2 = CommitAll(origin_, "main 2");
  Git(origin_, "checkout -q other");
  WriteText(origin_ + "/b.txt", "other\n");
  std::string other2 = CommitAll(origin_, "other 2");
  Git(origin_, "checkout -q --orphan lonely");
  std::string lonely = CommitAll(origin_, "lonely");
  ASSERT_TRUE(cache_.Resolve(origin_, "lonely").ok());

  auto mb = MergeBase(mirror_, main2, other2);
  ASSERT_TRUE(mb.ok()) << mb.error().message();
  EXPECT_EQ(*mb, base_);
  EXPECT_EQ(*mb, Git(mirror_, "merge-base " + main2 + " " + other2));
  auto self = MergeBase(mirror_, main2, base_);
  ASSERT_TRUE(self.ok());
  EXPECT_EQ(*self, base_);
  auto none = MergeBase(mirror_, main2, lonely);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), Error::Code::kNotFound);
  EXPECT_FALSE(MergeBase(mirror_, "main", other2).ok());
}

}  // namespace
}  // namespace kiln::git
