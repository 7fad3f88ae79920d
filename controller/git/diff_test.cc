// Collect: a workspace changed the way an agent would, read back as data.
// The patch is checked literally and by `git apply` on a fresh checkout.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <map>

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
using testing::ReadText;
using testing::Sh;
using testing::ShQuote;
using testing::TempDir;
using testing::WriteText;

const char kUnicodePath[] =
    "dir with space/\xC3\xBCn\xC3\xAF c\xC3\xB6"
    "d\xC3\xA9.txt";  // ünï cödé

class CollectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount)";
    origin_ = tmp_ / "origin";
    InitRepo(origin_);
    WriteText(origin_ + "/README.md", "line 1\nline 2\nline 3\nline 4\nline 5\n");
    WriteText(origin_ + "/bin/tool.sh", "#!/bin/sh\necho tool\n");
    WriteText(origin_ + "/data.bin", std::string("\x01\x00\x02\x03", 4) + "binary");
    WriteText(origin_ + "/del/me.txt", "delete me\n");
    WriteText(origin_ + "/.gitignore", "*.log\nbuild/\n");
    WriteText(origin_ + "/big.txt", "small\n");
    WriteText(origin_ + "/" + kUnicodePath, "unicode\n");
    WriteText(origin_ + "/replace/file.txt", "a file in a directory\n");
    ::symlink("README.md", (origin_ + "/link").c_str());
    commit_ = CommitAll(origin_, "base");
    auto r = cache_.Resolve(origin_, commit_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    mirror_ = r->mirror_path;
    auto t = cache_.Tree(*r, kUid, kGid);
    ASSERT_TRUE(t.ok()) << t.error().message();
    auto w = MountWorkspace(*t, tmp_ / "run", kUid, kGid);
    ASSERT_TRUE(w.ok()) << w.error().message();
    ws_ = w->merged;
  }
  void TearDown() override { (void)RemoveWorkspace(tmp_ / "run"); }

  Diff MustCollect(const DiffOptions& options = {}) {
    auto d = Collect(mirror_, commit_, ws_, options);
    EXPECT_TRUE(d.ok()) << d.error().message();
    return d.ok() ? *d : Diff{};
  }

  static std::map<std::string, FileChange> ByPath(const Diff& d) {
    std::map<std::string, FileChange> out;
    for (const FileChange& f : d.files) out[f.path] = f;
    return out;
  }

  // Applies patch with `git apply` to a fresh clone at the commit and
  // returns the clone's path.
  std::string ApplyToFreshClone(const std::string& patch) {
    std::string clone = tmp_ / "clone";
    Git(tmp_.path(), "clone -q " + ShQuote(origin_) + " clone");
    Git(clone, "checkout -q --detach " + commit_);
    WriteText(tmp_ / "patch.diff", patch);
    Git(clone, "apply --whitespace=nowarn " + ShQuote(tmp_ / "patch.diff"));
    return clone;
  }

  TempDir tmp_;
  std::string origin_, commit_, mirror_, ws_;
  Cache cache_{tmp_ / "cache"};
};

TEST_F(CollectTest, UnchangedWorkspaceHasAnEmptyDiff) {
  Diff d = MustCollect();
  EXPECT_EQ(d.patch, "");
  EXPECT_TRUE(d.files.empty());
  EXPECT_EQ(d.files_total, 0u);
  EXPECT_FALSE(d.truncated);
  EXPECT_EQ(d.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(CollectTest, ModifiedAddedDeletedAndModeChange) {
  WriteText(ws_ + "/README.md", "line 1\nline 2\nline three\nline 4\nline 5\n");
  WriteText(ws_ + "/src/new.c", "int x;\n");
  WriteText(ws_ + "/empty.txt", "");
  ASSERT_EQ(::unlink((ws_ + "/del/me.txt").c_str()), 0);
  ASSERT_EQ(::chmod((ws_ + "/bin/tool.sh").c_str(), 0755), 0);
  Diff d = MustCollect();

  std::vector<std::string> paths;
  for (const FileChange& f : d.files) paths.push_back(f.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"README.md", "bin/tool.sh", "del/me.txt", "empty.txt",
                                             "src/new.c"}));
  auto files = ByPath(d);
  EXPECT_EQ(files["README.md"].status, 'M');
  EXPECT_EQ(files["README.md"].old_mode, 0100644u);
  EXPECT_EQ(files["README.md"].new_mode, 0100644u);
  EXPECT_EQ(files["src/new.c"].status, 'A');
  EXPECT_EQ(files["src/new.c"].old_mode, 0u);
  EXPECT_EQ(files["src/new.c"].size, 7u);
  EXPECT_EQ(files["del/me.txt"].status, 'D');
  EXPECT_EQ(files["del/me.txt"].new_mode, 0u);
  EXPECT_EQ(files["bin/tool.sh"].status, 'M');
  EXPECT_EQ(files["bin/tool.sh"].old_mode, 0100644u);
  EXPECT_EQ(files["bin/tool.sh"].new_mode, 0100755u);
  EXPECT_EQ(d.files_total, 5u);
  EXPECT_FALSE(d.truncated);

  EXPECT_NE(d.patch.find("diff --git a/README.md b/README.md\nindex "), std::string::npos);
  EXPECT_NE(d.patch.find(" 100644\n--- a/README.md\n+++ b/README.md\n@@ -1,5 +1,5 @@\n line 1\n"
                         " line 2\n-line 3\n+line three\n line 4\n"),
            std::string::npos)
      << d.patch;
  EXPECT_NE(d.patch.find("diff --git a/bin/tool.sh b/bin/tool.sh\nold mode 100644\nnew mode "
                         "100755\ndiff --git"),
            std::string::npos)
      << d.patch;
  EXPECT_NE(d.patch.find("diff --git a/del/me.txt b/del/me.txt\ndeleted file mode 100644\nindex "),
            std::string::npos);
  EXPECT_NE(d.patch.find("..0000000\n--- a/del/me.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-delete me\n"),
            std::string::npos);
  EXPECT_NE(d.patch.find("diff --git a/empty.txt b/empty.txt\nnew file mode 100644\n"
                         "index 0000000..e69de29\ndiff --git"),
            std::string::npos)
      << d.patch;
  EXPECT_NE(d.patch.find("new file mode 100644\nindex 0000000.."), std::string::npos);
  EXPECT_NE(d.patch.find("--- /dev/null\n+++ b/src/new.c\n@@ -0,0 +1 @@\n+int x;\n"),
            std::string::npos);

  // The digest is the patch's, and git applies the patch to the same result.
  WriteText(tmp_ / "patch.diff", d.patch);
  std::string sum = Sh("sha256sum " + ShQuote(tmp_ / "patch.diff")).out.substr(0, 64);
  EXPECT_EQ(d.sha256, sum);
  std::string clone = ApplyToFreshClone(d.patch);
  EXPECT_EQ(ReadText(clone + "/README.md"), ReadText(ws_ + "/README.md"));
  EXPECT_EQ(ReadText(clone + "/src/new.c"), "int x;\n");
  EXPECT_TRUE(Exists(clone + "/empty.txt"));
  EXPECT_FALSE(Exists(clone + "/del/me.txt"));
  struct stat st;
  ASSERT_EQ(::stat((clone + "/bin/tool.sh").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
}

TEST_F(CollectTest, BinaryAndTooLarge) {
  WriteText(ws_ + "/data.bin", std::string("\x01\x00\x02\x04", 4) + "binary!");
  WriteText(ws_ + "/new.bin", std::string("abc\0def", 7));
  WriteText(ws_ + "/big.txt", std::string(4096, 'x') + "\n");
  WriteText(ws_ + "/huge-new.txt", std::string(5000, 'y'));
  DiffOptions options;
  options.max_file_bytes = 1024;
  Diff d = MustCollect(options);
  auto files = ByPath(d);
  EXPECT_TRUE(files["data.bin"].binary);
  EXPECT_FALSE(files["data.bin"].too_large);
  EXPECT_TRUE(files["new.bin"].binary);
  EXPECT_TRUE(files["big.txt"].too_large);
  EXPECT_EQ(files["big.txt"].size, 4097u);
  EXPECT_TRUE(files["huge-new.txt"].too_large);
  EXPECT_EQ(files["huge-new.txt"].status, 'A');
  EXPECT_NE(d.patch.find("Binary files a/data.bin and b/data.bin differ\n"), std::string::npos);
  EXPECT_NE(d.patch.find("Binary files /dev/null and b/new.bin differ\n"), std::string::npos);
  EXPECT_NE(d.patch.find("Binary files a/big.txt and b/big.txt differ\n"), std::string::npos);
  EXPECT_NE(d.patch.find("Binary files /dev/null and b/huge-new.txt differ\n"), std::string::npos);
  EXPECT_EQ(d.patch.find("binary!"), std::string::npos);
  EXPECT_EQ(d.patch.find("xxxxxxxx"), std::string::npos);
  EXPECT_EQ(d.patch.find("yyyyyyyy"), std::string::npos);
}

TEST_F(CollectTest, UntrackedFilesThatGitignoreCoversAreLeftOut) {
  WriteText(ws_ + "/notes.txt", "keep me\n");
  WriteText(ws_ + "/debug.log", "ignored\n");
  WriteText(ws_ + "/build/out.o", "ignored\n");
  WriteText(ws_ + "/sub/.gitignore", "!wanted.log\n");
  WriteText(ws_ + "/sub/wanted.log", "re-included\n");
  WriteText(ws_ + "/sub/other.log", "ignored\n");
  Diff d = MustCollect();
  std::vector<std::string> paths;
  for (const FileChange& f : d.files) paths.push_back(f.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"notes.txt", "sub/.gitignore", "sub/wanted.log"}));
  // The same set git itself reports as untracked.
  EXPECT_EQ(Git(ws_, "status --porcelain --untracked-files=all"),
            "?? notes.txt\n?? sub/.gitignore\n?? sub/wanted.log");
}

TEST_F(CollectTest, SymlinksAreRecordedNeverFollowed) {
  ASSERT_EQ(::symlink("/etc/shadow", (ws_ + "/leak").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", (ws_ + "/etcdir").c_str()), 0);
  ASSERT_EQ(::unlink((ws_ + "/link").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/shadow", (ws_ + "/link").c_str()), 0);  // a tracked link retargeted
  ASSERT_EQ(::unlink((ws_ + "/big.txt").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/shadow", (ws_ + "/big.txt").c_str()), 0);  // a file became a link
  Diff d = MustCollect();
  auto files = ByPath(d);
  ASSERT_TRUE(files.count("leak"));
  EXPECT_EQ(files["leak"].status, 'A');
  EXPECT_EQ(files["leak"].new_mode, 0120000u);
  EXPECT_EQ(files["leak"].link_target, "/etc/shadow");
  EXPECT_EQ(files["leak"].size, 11u);
  EXPECT_EQ(files["etcdir"].new_mode, 0120000u);
  EXPECT_EQ(files["etcdir"].link_target, "/etc");
  EXPECT_EQ(files["link"].status, 'M');
  EXPECT_EQ(files["link"].old_mode, 0120000u);
  EXPECT_EQ(files["link"].new_mode, 0120000u);
  EXPECT_EQ(files["big.txt"].status, 'T');
  EXPECT_EQ(files["big.txt"].old_mode, 0100644u);
  EXPECT_EQ(files["big.txt"].new_mode, 0120000u);
  for (const FileChange& f : d.files) {
    EXPECT_EQ(f.path.rfind("etcdir/", 0), std::string::npos) << "followed into " << f.path;
  }
  EXPECT_NE(d.patch.find("diff --git a/leak b/leak\nnew file mode 120000\nindex 0000000.."),
            std::string::npos);
  EXPECT_NE(d.patch.find("+++ b/leak\n@@ -0,0 +1 @@\n+/etc/shadow\n\\ No newline at end of file\n"),
            std::string::npos)
      << d.patch;
  EXPECT_NE(d.patch.find("-README.md\n\\ No newline at end of file\n+/etc/shadow\n"),
            std::string::npos);
  // Nothing of /etc/shadow itself is in the patch.
  std::string shadow = ReadText("/etc/shadow");
  ASSERT_FALSE(shadow.empty());
  size_t at = 0;
  while (at < shadow.size()) {
    size_t nl = shadow.find('\n', at);
    std::string line = shadow.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    at = nl == std::string::npos ? shadow.size() : nl + 1;
    if (!line.empty()) {
      EXPECT_EQ(d.patch.find(line), std::string::npos) << "leaked: " << line;
    }
  }
  // git applies the type change and the links.
  std::string clone = ApplyToFreshClone(d.patch);
  char target[64] = {};
  ASSERT_GT(::readlink((clone + "/big.txt").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "/etc/shadow");
}

TEST_F(CollectTest, HardlinkIsARegularFile) {
  ASSERT_EQ(::link((ws_ + "/README.md").c_str(), (ws_ + "/hard.txt").c_str()), 0);
  Diff d = MustCollect();
  auto files = ByPath(d);
  ASSERT_EQ(d.files.size(), 1u) << d.patch;
  EXPECT_EQ(files["hard.txt"].status, 'A');
  EXPECT_EQ(files["hard.txt"].new_mode, 0100644u);
  EXPECT_NE(d.patch.find("+++ b/hard.txt\n@@ -0,0 +1,5 @@\n+line 1\n"), std::string::npos);
}

TEST_F(CollectTest, FifosSocketsAndDevicesAreListedNeverOpened) {
  ASSERT_EQ(::mkfifo((ws_ + "/pipe").c_str(), 0644), 0);
  ASSERT_EQ(::unlink((ws_ + "/README.md").c_str()), 0);
  ASSERT_EQ(::mkfifo((ws_ + "/README.md").c_str(), 0644), 0);  // a tracked file became a FIFO
  int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string sock_path = ws_ + "/sock";
  ASSERT_LT(sock_path.size(), sizeof addr.sun_path);
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path.c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

  // Opening the FIFO for reading would block forever: bound the wait.
  auto pending = std::async(std::launch::async, [&] { return Collect(mirror_, commit_, ws_); });
  if (pending.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "Collect blocked on a FIFO";
    std::fflush(nullptr);
    std::_Exit(1);
  }
  ::close(sock);
  auto d = pending.get();
  ASSERT_TRUE(d.ok()) << d.error().message();
  auto files = ByPath(*d);
  EXPECT_EQ(files["pipe"].status, 'A');
  EXPECT_EQ(files["pipe"].new_mode, 0u);
  EXPECT_EQ(files["sock"].status, 'A');
  EXPECT_EQ(files["sock"].new_mode, 0u);
  EXPECT_EQ(files["README.md"].status, 'T');
  EXPECT_EQ(files["README.md"].old_mode, 0100644u);
  EXPECT_EQ(files["README.md"].new_mode, 0u);
  EXPECT_EQ(d->patch.find("b/pipe"), std::string::npos);
  EXPECT_NE(d->patch.find("diff --git a/README.md b/README.md\ndeleted file mode 100644\n"),
            std::string::npos);
}

TEST_F(CollectTest, GarbageGitDirectoryDoesNotMatter) {
  std::filesystem::remove_all(ws_ + "/.git");
  WriteText(ws_ + "/.git", "gitdir: /etc\n");
  WriteText(ws_ + "/README.md", "rewritten\n");
  Diff d = MustCollect();
  auto files = ByPath(d);
  ASSERT_EQ(d.files.size(), 1u) << d.patch;
  EXPECT_EQ(files["README.md"].status, 'M');
  EXPECT_FALSE(files.count(".git"));
  EXPECT_EQ(d.patch.find("gitdir"), std::string::npos);

  // A .git directory with a forged HEAD and objects changes nothing either.
  std::filesystem::remove(ws_ + "/.git");
  WriteText(ws_ + "/.git/HEAD", "ref: refs/heads/evil\n");
  WriteText(ws_ + "/.git/objects/xx/garbage", "garbage\n");
  Diff again = MustCollect();
  EXPECT_EQ(again.patch, d.patch);
}

TEST_F(CollectTest, PathsWithSpacesAndUnicode) {
  WriteText(ws_ + "/" + kUnicodePath, "unicode changed\n");
  const std::string added = "new file \xE2\x9C\x93.txt";  // ✓
  WriteText(ws_ + "/" + added, "check\n");
  Diff d = MustCollect();
  auto files = ByPath(d);
  EXPECT_EQ(files[kUnicodePath].status, 'M');
  EXPECT_EQ(files[added].status, 'A');
  // git's quoting: octal escapes for bytes >= 0x80, a tab after labels with spaces.
  EXPECT_NE(
      d.patch.find("diff --git \"a/dir with space/\\303\\274n\\303\\257 c\\303\\266d\\303\\251"
                   ".txt\" \"b/dir with space/"),
      std::string::npos)
      << d.patch;
  EXPECT_NE(d.patch.find("+++ \"b/new file \\342\\234\\223.txt\"\t\n"), std::string::npos)
      << d.patch;
  std::string clone = ApplyToFreshClone(d.patch);
  EXPECT_EQ(ReadText(clone + "/" + kUnicodePath), "unicode changed\n");
  EXPECT_EQ(ReadText(clone + "/" + added), "check\n");
}

TEST_F(CollectTest, DirectoryAndFileSwapPlaces) {
  std::filesystem::remove_all(ws_ + "/replace");
  WriteText(ws_ + "/replace", "now a file\n");
  std::filesystem::remove(ws_ + "/big.txt");
  WriteText(ws_ + "/big.txt/inside.txt", "now a directory\n");
  Diff d = MustCollect();
  auto files = ByPath(d);
  EXPECT_EQ(files["replace/file.txt"].status, 'D');
  EXPECT_EQ(files["replace"].status, 'A');
  EXPECT_EQ(files["big.txt"].status, 'D');
  EXPECT_EQ(files["big.txt/inside.txt"].status, 'A');
  std::string clone = ApplyToFreshClone(d.patch);
  EXPECT_EQ(ReadText(clone + "/replace"), "now a file\n");
  EXPECT_EQ(ReadText(clone + "/big.txt/inside.txt"), "now a directory\n");
}

TEST_F(CollectTest, MaxFilesAndMaxPatchBytes) {
  for (int i = 0; i < 20; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/gen/f%02d.txt", i);
    WriteText(ws_ + name, "content " + std::to_string(i) + "\n");
  }
  DiffOptions few;
  few.max_files = 5;
  Diff d = MustCollect(few);
  EXPECT_EQ(d.files_total, 20u);
  ASSERT_EQ(d.files.size(), 5u);
  EXPECT_EQ(d.files[0].path, "gen/f00.txt");
  EXPECT_EQ(d.files[4].path, "gen/f04.txt");
  EXPECT_TRUE(d.truncated);
  EXPECT_NE(d.patch.find("b/gen/f04.txt"), std::string::npos);
  EXPECT_EQ(d.patch.find("b/gen/f05.txt"), std::string::npos);

  Diff full = MustCollect();
  ASSERT_FALSE(full.truncated);
  size_t third = full.patch.find("diff --git a/gen/f02.txt");
  ASSERT_NE(third, std::string::npos);
  DiffOptions small;
  small.max_patch_bytes = third + 10;  // two whole sections and a bit
  Diff cut = MustCollect(small);
  EXPECT_TRUE(cut.truncated);
  EXPECT_EQ(cut.patch, full.patch.substr(0, third));
  EXPECT_LE(cut.patch.size(), small.max_patch_bytes);
  EXPECT_EQ(cut.files.size(), 20u);
  EXPECT_EQ(cut.files_total, 20u);
  EXPECT_NE(cut.sha256, full.sha256);
}

TEST_F(CollectTest, ErrorsNameWhatFailed) {
  auto no_commit = Collect(mirror_, std::string(40, 'a'), ws_);
  ASSERT_FALSE(no_commit.ok());
  EXPECT_NE(no_commit.error().message().find(std::string(40, 'a')), std::string::npos);
  auto no_ws = Collect(mirror_, commit_, tmp_ / "missing");
  ASSERT_FALSE(no_ws.ok());
  EXPECT_NE(no_ws.error().message().find(tmp_ / "missing"), std::string::npos);
}

}  // namespace
}  // namespace kiln::git
