// Escape suite, rootless mode: kiln run by an unprivileged user (nobody).
// There the sandbox's user namespace maps the command to that same host
// user, init runs as that user too, and there is no cgroup: the other layers
// have to hold on their own.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/escape/escape_support.h"
#include "tests/support/host_features.h"

namespace kiln::testing::escape {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kNobody = 65534;

class EscapeRootless : public EscapeTest {
 protected:
  void SetUp() override {
    EscapeTest::SetUp();
    if (IsSkipped()) return;
    KILN_REQUIRE_ROOTLESS_HOST();
  }
  static RunOptions AsNobody() {
    RunOptions o;
    o.as_uid = kNobody;
    o.as_gid = kNobody;
    return o;
  }
  Outcome AttackAsNobody(const std::string& name, const std::vector<std::string>& args = {},
                         const std::vector<std::string>& sandbox_args = {}) {
    return Attack(name, args, sandbox_args, AsNobody());
  }
};

TEST_F(EscapeRootless, MountIsRefused) {
  EXPECT_TRUE(Blocked(AttackAsNobody("mount"), {"mount(tmpfs, /tmp): Operation not permitted",
                                                "fsopen(tmpfs): Operation not permitted"}));
  EXPECT_TRUE(Blocked(AttackAsNobody("umount"),
                      {"umount2(/proc/sys, MNT_DETACH): Operation not permitted"}));
}

TEST_F(EscapeRootless, NoNewNamespaces) {
  // The host allows unprivileged user namespaces: only the policy stands
  // between the command and a namespace where it has every capability.
  EXPECT_TRUE(Blocked(AttackAsNobody("userns"), {"unshare(CLONE_NEWUSER): Operation not permitted",
                                                 "clone(CLONE_NEWUSER): Operation not permitted"}));
  EXPECT_TRUE(
      Blocked(AttackAsNobody("unshare"), {"unshare(CLONE_NEWNS): Operation not permitted"}));
}

TEST_F(EscapeRootless, HostProcessOfTheSameUserIsOutOfReach) {
  // The target runs as nobody, the very host user the command maps to: with
  // the same uid, only the pid namespace and the policy protect it.
  HostProcess target(kNobody);
  std::string pid = std::to_string(target.pid());
  EXPECT_TRUE(Blocked(AttackAsNobody("ptrace", {pid}),
                      {"ptrace(PTRACE_ATTACH, host pid " + pid + "): Operation not permitted",
                       "process_vm_readv(host pid " + pid + "): Operation not permitted",
                       "ptrace(PTRACE_SEIZE, init): Operation not permitted"}));
  // init runs as the command's own user here, so kill() reaches it; a pid
  // namespace's init ignores signals from inside it.
  EXPECT_TRUE(Blocked(AttackAsNobody("kill", {pid}),
                      {"kill(host pid " + pid + ", SIGKILL): No such process",
                       "kill(init, SIGKILL): delivered, but"}));
  EXPECT_TRUE(target.Alive());
  EXPECT_EQ(target.TracerPid(), "0");
}

TEST_F(EscapeRootless, InitIsNotInspectableByItsOwnUser) {
  // init and the command share a uid: PR_SET_DUMPABLE(0) alone keeps init's
  // memory, environment and descriptors out of reach.
  std::string secret = "kiln-supervisor-secret-" + std::to_string(getpid());
  ::setenv("KILN_ESCAPE_SUPERVISOR_SECRET", secret.c_str(), 1);
  auto o = AttackAsNobody("init-proc");
  ::unsetenv("KILN_ESCAPE_SUPERVISOR_SECRET");
  EXPECT_TRUE(
      Blocked(o, {"open(/proc/1/environ): Permission denied",
                  "open(/proc/1/mem): Permission denied", "open(/proc/1/fd/): Permission denied"}));
  EXPECT_EQ(o.out.find(secret), std::string::npos);
  EXPECT_EQ(o.err.find(secret), std::string::npos);
  EXPECT_TRUE(
      Blocked(AttackAsNobody("setns"), {"open(/proc/1/ns/user): Permission denied",
                                        "setns(/proc/self/ns/user): Operation not permitted"}));
}

TEST_F(EscapeRootless, KilnBinaryOwnedByTheSameUserCannotBeOverwritten) {
  // CVE-2019-5736 where it bites hardest: a kiln the user installed in its
  // own directory, writable by the very host user the sandbox maps to.
  TempDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), kNobody, kNobody), 0);
  std::string kiln = dir.path() + "/kiln";
  fs::copy_file(KilnBinary(), kiln);
  ASSERT_EQ(::chown(kiln.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(::chmod(kiln.c_str(), 0755), 0);
  const std::string before = FileStamp(kiln);
  auto o = kiln::testing::Run(AttackArgv(kiln, "proc-exe", {}, {}, kNobody), AsNobody());
  EXPECT_EQ(FileStamp(kiln), before) << "the user's kiln binary changed";
  EXPECT_TRUE(Blocked(o, {"open(/proc/1/exe -> ?, O_WRONLY): Permission denied",
                          "open(/proc/1/exe, O_PATH): Permission denied",
                          "execve(/proc/1/exe): Permission denied"}));
}

TEST_F(EscapeRootless, FilesOnlyOthersMayReadStayUnreadable) {
  // A bound directory holding files only their host owner may read: root's,
  // and another unprivileged user's (daemon, uid 1).
  TempDir dir;
  WriteAll(dir.path() + "/root-only", "root secret\n", 0600);
  WriteAll(dir.path() + "/daemon-only", "daemon secret\n", 0600);
  ASSERT_EQ(::chown((dir.path() + "/daemon-only").c_str(), 1, 1), 0);
  auto o = AttackAsNobody("read-file", {"/secret/root-only", "/secret/daemon-only", "/etc/shadow"},
                          {"--bind", dir.path() + ":/secret:ro"});
  EXPECT_TRUE(Blocked(o, {"open(/secret/root-only): Permission denied",
                          "open(/secret/daemon-only): Permission denied",
                          "open(/etc/shadow): No such file or directory"}));
  EXPECT_EQ(o.out.find("secret\n"), std::string::npos);
}

TEST_F(EscapeRootless, SandboxCannotRewriteKilnsStateForLaterSandboxes) {
  // Unprivileged, kiln's state directory (its seccomp filter cache and host
  // image) belongs to the very host user the sandbox maps to. A workspace
  // that holds it, as `--workspace ~` holds ~/.local/state/kiln, must not
  // let one sandbox rewrite the cached filter or image of every later one:
  // kiln refuses such a workspace, or the rewrite fails.
  TempDir home;
  ASSERT_EQ(::chown(home.path().c_str(), kNobody, kNobody), 0);
  std::string state = home.path() + "/state";
  ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  ASSERT_EQ(::chown(state.c_str(), kNobody, kNobody), 0);
  auto kiln = [&](const std::vector<std::string>& options,
                  const std::vector<std::string>& command) {
    std::vector<std::string> argv = {KilnBinary(),
                                     "sandbox",
                                     "run",
                                     "--state-dir",
                                     state,
                                     "--bind",
                                     HelperDir() + ":/attack:ro"};
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back("--");
    argv.insert(argv.end(), command.begin(), command.end());
    argv.push_back("marker:" + marker());
    return kiln::testing::Run(argv, AsNobody());
  };
  // Earlier runs have filled the caches.
  ASSERT_EQ(kiln({}, {kAttackInside, "probe-ids"}).status, 0);

  auto poison =
      kiln({"--workspace", home.path()}, {kAttackInside, "poison-state", "/workspace/state"});
  if (poison.status == 2) {
    EXPECT_NE(poison.err.find("state directory"), std::string::npos) << poison.err;
  } else {
    EXPECT_TRUE(Blocked(poison)) << "a sandbox rewrote kiln's own state";
  }
  // A later, unrelated sandbox of the same user still has its filter.
  EXPECT_TRUE(Blocked(kiln({}, {kAttackInside, "userns"}),
                      {"unshare(CLONE_NEWUSER): Operation not permitted"}));
}

}  // namespace
}  // namespace kiln::testing::escape
