// Collect guided by the overlay's upper directory: for every kind of change
// an agent can make through the overlay (whiteouts, opaque directories,
// renames, mode-only changes, symlinks, hard links, special files, ignored
// files), the result is the full scan's, which serves as the oracle. Each
// case also names the paths it expects, so a walk that misses a change in
// both modes still fails.
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "controller/git/git.h"
#include "controller/git/testutil.h"

namespace kiln::git {
namespace {

using testing::CommitAll;
using testing::InitRepo;
using testing::kGid;
using testing::kUid;
using testing::Sh;
using testing::ShQuote;
using testing::TempDir;
using testing::WriteText;

struct Case {
  const char* name;
  std::function<void(const std::string& ws)> change;
  std::vector<std::string> expected;  // "<status> <path>", in the diff's order
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// How the overlay is mounted: as the runner mounts it, or with the
// features that change what the upper directory holds for a rename
// (redirect_dir) or a chmod (metacopy).
enum class Mount { kWorkspace, kRedirectMetacopy };

class UpperTest : public ::testing::TestWithParam<std::tuple<Case, Mount>> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount)";
    std::string origin = tmp_ / "origin";
    InitRepo(origin);
    WriteText(origin + "/README.md", "readme\n");
    WriteText(origin + "/.gitignore", "*.log\n");
    WriteText(origin + "/src/main.c", "int main() { return 0; }\n");
    WriteText(origin + "/src/util/str.c", "char *s;\n");
    WriteText(origin + "/src/util/num.c", "int n;\n");
    WriteText(origin + "/src/util/.gitignore", "gen/\n");
    WriteText(origin + "/docs/a.md", "a\n");
    WriteText(origin + "/docs/b.md", "b\n");
    WriteText(origin + "/tool.sh", "#!/bin/sh\n");
    // Enough untouched files that a walk of everything is not the same as
    // a walk of what changed.
    for (int i = 0; i < 50; ++i) {
      WriteText(origin + "/many/f" + std::to_string(i) + ".txt", std::to_string(i) + "\n");
    }
    ASSERT_EQ(::symlink("README.md", (origin + "/link").c_str()), 0);
    commit_ = CommitAll(origin, "base");
    auto r = cache_.Resolve(origin, commit_);
    ASSERT_TRUE(r.ok()) << r.error().message();
    mirror_ = r->mirror_path;
    auto t = cache_.Tree(*r, kUid, kGid);
    ASSERT_TRUE(t.ok()) << t.error().message();
    if (std::get<1>(GetParam()) == Mount::kWorkspace) {
      auto w = MountWorkspace(*t, tmp_ / "run", kUid, kGid);
      ASSERT_TRUE(w.ok()) << w.error().message();
      ws_ = w->merged;
      upper_ = w->upper;
      return;
    }
    ws_ = tmp_ / "run/workspace";
    upper_ = tmp_ / "run/upper";
    for (const char* d : {"run", "run/workspace", "run/upper", "run/work"}) {
      ASSERT_EQ(::mkdir((tmp_ / d).c_str(), 0755), 0) << d;
    }
    std::string options = "lowerdir=" + *t + ",upperdir=" + upper_ +
                          ",workdir=" + (tmp_ / "run/work") + ",redirect_dir=on,metacopy=on";
    if (::mount("overlay", ws_.c_str(), "overlay", 0, options.c_str()) != 0) {
      GTEST_SKIP() << "this kernel's overlayfs refuses " << options << ": " << std::strerror(errno);
    }
  }
  void TearDown() override {
    if (!ws_.empty()) ::umount2(ws_.c_str(), MNT_DETACH);
  }

  Diff MustCollect(const std::string& upper) {
    DiffOptions options;
    options.upper = upper;
    auto d = Collect(mirror_, commit_, ws_, options);
    EXPECT_TRUE(d.ok()) << (upper.empty() ? "full scan: " : "upper: ") << d.error().message();
    return d.ok() ? *d : Diff{};
  }

  TempDir tmp_;
  Cache cache_{tmp_ / "cache"};
  std::string commit_, mirror_, ws_, upper_;
};

std::string Listing(const Diff& d) {
  std::string out;
  for (const FileChange& f : d.files) {
    char modes[40];
    std::snprintf(modes, sizeof modes, " %06o->%06o ", f.old_mode, f.new_mode);
    out += std::string(1, f.status) + " " + f.path + modes + std::to_string(f.size) + " " +
           f.link_target + (f.binary ? " binary" : "") + "\n";
  }
  return out;
}

TEST_P(UpperTest, SameResultAsTheFullScan) {
  const Case& c = std::get<0>(GetParam());
  c.change(ws_);
  Diff full = MustCollect("");
  Diff guided = MustCollect(upper_);
  std::vector<std::string> found;
  for (const FileChange& f : full.files) found.push_back(std::string(1, f.status) + " " + f.path);
  EXPECT_EQ(found, c.expected) << Listing(full);
  EXPECT_EQ(Listing(guided), Listing(full));
  EXPECT_EQ(guided.patch, full.patch);
  EXPECT_EQ(guided.files_total, full.files_total);
  EXPECT_EQ(guided.sha256, full.sha256);
}

void Run(const std::string& command) {
  auto o = Sh(command);
  ASSERT_EQ(o.status, 0) << command << ":\n" << o.out;
}

std::string In(const std::string& ws, const std::string& commands) {
  return "cd " + ShQuote(ws) + " && " + commands;
}

const Case kCases[] = {
    {"Nothing", [](const std::string&) {}, {}},
    {"ContentChanged",
     [](const std::string& ws) { WriteText(ws + "/src/util/str.c", "char *t;\n"); },
     {"M src/util/str.c"}},
    {"FileDeletedLeavesAWhiteout",
     [](const std::string& ws) { Run(In(ws, "rm docs/a.md")); },
     {"D docs/a.md"}},
    {"DirectoryDeleted",
     [](const std::string& ws) { Run(In(ws, "rm -r src/util")); },
     {"D src/util/.gitignore", "D src/util/num.c", "D src/util/str.c"}},
    {"DirectoryRemovedAndMadeAgainIsOpaque",
     [](const std::string& ws) {
       Run(In(ws, "rm -r docs && mkdir docs && echo new > docs/c.md && echo a > docs/a.md"));
     },
     {"D docs/b.md", "A docs/c.md"}},
    {"DirectoryBecomesAFile",
     [](const std::string& ws) { Run(In(ws, "rm -r docs && echo x > docs")); },
     {"A docs", "D docs/a.md", "D docs/b.md"}},
    {"FileBecomesADirectory",
     [](const std::string& ws) {
       Run(In(ws, "rm tool.sh && mkdir tool.sh && echo y > tool.sh/y"));
     },
     {"D tool.sh", "A tool.sh/y"}},
    {"FileRenamed",
     [](const std::string& ws) { Run(In(ws, "mv docs/a.md docs/z.md")); },
     {"D docs/a.md", "A docs/z.md"}},
    {"DirectoryRenamed",
     [](const std::string& ws) { Run(In(ws, "mv src/util src/lib")); },
     {"A src/lib/.gitignore", "A src/lib/num.c", "A src/lib/str.c", "D src/util/.gitignore",
      "D src/util/num.c", "D src/util/str.c"}},
    {"DirectoryRenamedAndChangedInside",
     [](const std::string& ws) { Run(In(ws, "mv docs text && echo B > text/b.md")); },
     {"D docs/a.md", "D docs/b.md", "A text/a.md", "A text/b.md"}},
    {"DirectoryRenamedOverAnother",
     [](const std::string& ws) { Run(In(ws, "rm -r docs && mv src/util docs")); },
     {"A docs/.gitignore", "D docs/a.md", "D docs/b.md", "A docs/num.c", "A docs/str.c",
      "D src/util/.gitignore", "D src/util/num.c", "D src/util/str.c"}},
    {"ModeOnly",
     [](const std::string& ws) { Run(In(ws, "chmod +x tool.sh src/main.c")); },
     {"M src/main.c", "M tool.sh"}},
    {"ModeOnlyOnADirectoryChangesNothing",
     [](const std::string& ws) { Run(In(ws, "chmod 700 many")); },
     {}},
    {"SymlinkRetargetedAndFileMadeALink",
     [](const std::string& ws) {
       Run(In(ws, "ln -sfn docs/b.md link && rm README.md && ln -s src README.md"));
     },
     {"T README.md", "M link"}},
    {"LinkMadeAFile",
     [](const std::string& ws) { Run(In(ws, "rm link && echo f > link")); },
     {"T link"}},
    {"HardLinks",
     [](const std::string& ws) {
       Run(In(ws, "ln docs/a.md docs/hard.md && echo n > new.txt && ln new.txt new2.txt"));
     },
     {"A docs/hard.md", "A new.txt", "A new2.txt"}},
    {"TouchedButUnchanged",
     [](const std::string& ws) {
       Run(In(ws,
              "touch README.md && cp many/f1.txt many/f1.txt.tmp && "
              "mv many/f1.txt.tmp many/f1.txt"));
     },
     {}},
    {"SpecialFiles",
     [](const std::string& ws) {
       Run(In(ws, "mkfifo src/fifo"));
       int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
       sockaddr_un addr{};
       addr.sun_family = AF_UNIX;
       std::string path = ws + "/sock";
       std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
       ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
       ::close(s);
     },
     {"A sock", "A src/fifo"}},
    {"IgnoredByAnUnchangedGitignoreAbove",
     [](const std::string& ws) {
       Run(In(ws,
              "echo log > src/util/x.log && mkdir -p src/util/gen && echo g > "
              "src/util/gen/g.c && echo kept > src/util/kept.c"));
     },
     {"A src/util/kept.c"}},
    {"GitignoreChanged",
     [](const std::string& ws) {
       Run(In(ws, "echo old > old.log && echo '*.tmp' > .gitignore && echo t > a.tmp"));
     },
     {"M .gitignore", "A old.log"}},
    {"DeepNewTree",
     [](const std::string& ws) { Run(In(ws, "mkdir -p a/b/c && echo d > a/b/c/d.txt")); },
     {"A a/b/c/d.txt"}},
};

std::string Name(const ::testing::TestParamInfo<UpperTest::ParamType>& info) {
  return std::string(std::get<0>(info.param).name) +
         (std::get<1>(info.param) == Mount::kWorkspace ? "" : "_RedirectMetacopy");
}

INSTANTIATE_TEST_SUITE_P(Changes, UpperTest,
                         ::testing::Combine(::testing::ValuesIn(kCases),
                                            ::testing::Values(Mount::kWorkspace,
                                                              Mount::kRedirectMetacopy)),
                         Name);

}  // namespace
}  // namespace kiln::git
