// Escape suite, process attacks: namespaces, host processes and the
// sandbox's init, /proc knobs, identity and limits, terminal injection and
// the fork and memory bombs.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "tests/escape/escape_support.h"

namespace kiln::testing::escape {
namespace {

namespace fs = std::filesystem;

class EscapeProc : public EscapeTest {};

TEST_F(EscapeProc, UnshareIsRefused) {
  // Layer: seccomp (unshare is not allowed; clone with namespace flags is
  // filtered on its flags; clone3, whose flags a filter cannot read, is ENOSYS).
  EXPECT_TRUE(
      Blocked(Attack("unshare"), {"unshare(CLONE_NEWNS): Operation not permitted",
                                  "unshare(CLONE_NEWNET): Operation not permitted",
                                  "unshare(CLONE_NEWTIME): Operation not permitted",
                                  "clone(CLONE_NEWPID): Operation not permitted",
                                  "clone3(CLONE_NEWNS|CLONE_NEWPID): Function not implemented"}));
}

TEST_F(EscapeProc, NoNewUserNamespace) {
  // A nested user namespace would give the command every capability in it.
  for (const std::vector<std::string>& ids :
       {std::vector<std::string>{}, {"--uid", "0", "--gid", "0"}}) {
    EXPECT_TRUE(
        Blocked(Attack("userns", {}, ids), {"unshare(CLONE_NEWUSER): Operation not permitted",
                                            "clone(CLONE_NEWUSER): Operation not permitted",
                                            "clone3(CLONE_NEWUSER): Function not implemented"}));
  }
}

TEST_F(EscapeProc, SetnsIsRefused) {
  HostProcess target;
  std::string pid = std::to_string(target.pid());
  EXPECT_TRUE(Blocked(
      Attack("setns", {pid}),
      {"open(/proc/1/ns/mnt): Permission denied", "open(/proc/1/ns/user): Permission denied",
       "setns(/proc/self/ns/mnt): Operation not permitted",
       "setns(pidfd of init, CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWUSER): "
       "Operation not permitted",
       "open(/proc/" + pid + "/ns/mnt) of a host process: No such file"}));
}

TEST_F(EscapeProc, PtraceOfAHostProcessAndOfInitIsRefused) {
  HostProcess target;
  std::string pid = std::to_string(target.pid());
  EXPECT_TRUE(Blocked(Attack("ptrace", {pid}),
                      {"ptrace(PTRACE_ATTACH, host pid " + pid + "): Operation not permitted",
                       "process_vm_readv(host pid " + pid + "): Operation not permitted",
                       "open(/proc/" + pid + "/mem, O_RDWR): No such file or directory",
                       "ptrace(PTRACE_SEIZE, init): Operation not permitted",
                       "open(/proc/1/mem, O_RDWR): Permission denied"}));
  EXPECT_TRUE(target.Alive());
  EXPECT_EQ(target.TracerPid(), "0");
}

TEST_F(EscapeProc, KillOfAHostProcessAndOfInitIsRefused) {
  // Layer: the pid namespace (host pids do not exist inside); init is host
  // root, which the command's user may not signal.
  HostProcess target;
  std::string pid = std::to_string(target.pid());
  EXPECT_TRUE(
      Blocked(Attack("kill", {pid}), {"kill(host pid " + pid + ", SIGKILL): No such process",
                                      "pidfd_open(host pid " + pid + "): No such process",
                                      "kill(init, SIGKILL): Operation not permitted"}));
  EXPECT_TRUE(target.Alive());
}

TEST_F(EscapeProc, InitIsNotInspectable) {
  // init is the supervisor's copy: its environment holds whatever the
  // controller runs kiln with.
  std::string secret = "kiln-supervisor-secret-" + std::to_string(getpid());
  ::setenv("KILN_ESCAPE_SUPERVISOR_SECRET", secret.c_str(), 1);
  auto o = Attack("init-proc");
  ::unsetenv("KILN_ESCAPE_SUPERVISOR_SECRET");
  EXPECT_TRUE(Blocked(
      o, {"open(/proc/1/environ): Permission denied", "open(/proc/1/mem): Permission denied",
          "open(/proc/1/root/): Permission denied", "open(/proc/1/fd/): Permission denied"}));
  EXPECT_EQ(o.out.find(secret), std::string::npos);
  EXPECT_EQ(o.err.find(secret), std::string::npos);
}

TEST_F(EscapeProc, SysrqTriggerIsOutOfReach) {
  // This attack writes 'h' (help), which only logs, should it ever get through.
  auto o = Attack("sysrq");
  if (fs::exists("/proc/sysrq-trigger")) {
    EXPECT_TRUE(Blocked(o, {"/proc/sysrq-trigger"}));
    EXPECT_EQ(VerdictLine(o).find("open(/proc/sysrq-trigger, O_WRONLY): No such file"),
              std::string::npos);
  } else {
    std::printf("note: this kernel has no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ is off)\n");
    EXPECT_TRUE(Blocked(o, {"open(/proc/sysrq-trigger, O_WRONLY): No such file or directory"}));
  }
}

TEST_F(EscapeProc, ProcSysIsReadOnly) {
  // core_pattern and modprobe run a program as host root. The fixture checks
  // each knob and writes it back if an attack ever changed it.
  for (const std::vector<std::string>& ids :
       {std::vector<std::string>{}, {"--uid", "0", "--gid", "0"}}) {
    EXPECT_TRUE(Blocked(Attack("proc-sys", {}, ids),
                        {"open(/proc/sys/kernel/core_pattern, O_WRONLY): Permission denied",
                         "open(/proc/sys/kernel/hostname, O_WRONLY): Permission denied",
                         "open(/proc/sys/kernel/randomize_va_space, O_WRONLY)"}));
  }
}

TEST_F(EscapeProc, RlimitsCannotBeRaised) {
  EXPECT_TRUE(
      Blocked(Attack("rlimit"),
              {"setrlimit(RLIMIT_NOFILE above the hard limit 1024): Operation not permitted",
               "setrlimit(RLIMIT_CORE above the hard limit 0): Operation not permitted",
               "prlimit(init, RLIMIT_NOFILE): Operation not permitted"}));
}

TEST_F(EscapeProc, CapabilitiesCannotBeRaised) {
  for (const std::vector<std::string>& ids :
       {std::vector<std::string>{}, {"--uid", "0", "--gid", "0"}}) {
    EXPECT_TRUE(Blocked(Attack("capset", {}, ids),
                        {"capset(every capability): Operation not permitted",
                         "prctl(PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN): Operation not permitted",
                         "prctl(PR_SET_SECUREBITS, 0): Operation not permitted",
                         "setgroups({0}): Operation not permitted"}));
  }
}

TEST_F(EscapeProc, HostnameIsTheSandboxs) {
  EXPECT_TRUE(
      Blocked(Attack("hostname"), {"sethostname(kiln-escaped): Operation not permitted",
                                   "setdomainname(kiln-escaped): Operation not permitted"}));
}

// Runs argv on a fresh pseudo-terminal that is the controlling terminal of
// argv's session, as when a user starts kiln from a shell. Returns what
// appeared on the terminal and what was typed into it (its input queue, as
// the user's shell would read it after kiln exits).
struct TerminalRun {
  int status = -1;
  std::string screen, typed;
};

TerminalRun RunOnTerminal(const std::vector<std::string>& argv) {
  TerminalRun r;
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) return r;
  std::string slave = ::ptsname(master);
  int shell_side = ::open(slave.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    int tty = ::open(slave.c_str(), O_RDWR);  // the session's controlling terminal
    ::ioctl(tty, TIOCSCTTY, 0);
    ::dup2(tty, 0);
    ::dup2(tty, 1);
    ::dup2(tty, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool exited = false;
  int st = 0;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 100) == 1) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n > 0) r.screen.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (exited) break;  // exited and drained
    exited = ::waitpid(pid, &st, WNOHANG) == pid;
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &st, 0);
  }
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  ssize_t n = ::read(shell_side, buf, sizeof buf);
  if (n > 0) r.typed.assign(buf, static_cast<size_t>(n));
  ::close(shell_side);
  ::close(master);
  std::erase(r.screen, '\r');
  return r;
}

TEST_F(EscapeProc, TiocstiCannotTypeIntoTheHostTerminal) {
  // CVE-2017-5226: the sandbox's stdin is the terminal of the user who
  // started kiln. Layers: seccomp (TIOCSTI is EPERM) and setsid (the
  // terminal is not the command's controlling terminal).
  std::string text = "echo kiln-tiocsti-" + std::to_string(getpid());
  TerminalRun r = RunOnTerminal(AttackArgv(KilnBinary(), "tiocsti", {text}, {}));
  std::istringstream lines(r.screen);
  std::string verdict;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("BLOCKED ", 0) == 0 || line.rfind("ESCAPED ", 0) == 0 ||
        line.rfind("ERROR ", 0) == 0) {
      verdict = line;
    }
  }
  EXPECT_EQ(r.status, 0) << r.screen;
  EXPECT_EQ(verdict.rfind("BLOCKED ", 0), 0u) << r.screen;
  for (const char* f : {"TIOCSTI(fd 0): Operation not permitted",
                        "ioctl(fd 0, TIOCSCTTY, 0): Operation not permitted",
                        "open(/dev/tty): No such device or address",
                        "ioctl(fd 0, TIOCLINUX, TIOCL_PASTESEL): Operation not permitted"}) {
    EXPECT_NE(verdict.find(f), std::string::npos) << f << "\n" << r.screen;
  }
  EXPECT_EQ(r.typed, "") << "input was injected into the host's terminal";
  EXPECT_EQ(r.screen.find(text), std::string::npos) << "injected input was echoed:\n" << r.screen;
}

// Processes in this test's sandboxes, from the pids cgroup (v1 or v2).
uint64_t SandboxPids() {
  uint64_t n = 0;
  std::error_code ec;
  for (const std::string& parent :
       {"/sys/fs/cgroup/pids/" + TestCgroupParent(), "/sys/fs/cgroup/" + TestCgroupParent()}) {
    for (const auto& e : fs::directory_iterator(parent, ec)) {
      n += std::strtoull(ReadAll((e.path() / "pids.current").string()).c_str(), nullptr, 10);
    }
  }
  return n;
}

TEST_F(EscapeProc, ForkBombHitsThePidsLimitAndTheHostStaysResponsive) {
  // Default limits (pids 1024). The bomb runs 4 s, then the sandbox ends
  // and takes every copy with it (the fixture checks none survives).
  TempDir dir;
  std::string report = dir.path() + "/report.json";
  Outcome o;
  std::atomic<bool> done{false};
  std::thread bomb([&] {
    o = Attack("fork-bomb", {"4000"}, {"--report", report});
    done = true;
  });
  // Wait for the bomb to fill the pids limit (the cgroup says so cheaply,
  // where scanning /proc competes with a thousand processes), then time the
  // host while it is at its worst.
  uint64_t seen = 0;
  while (!done && seen < 1000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    seen = SandboxPids();
  }
  double during = 0;
  for (int i = 0; i < 5; ++i) during = std::max(during, HostSpawnSeconds());
  bool measured_during_bomb = !done;
  bomb.join();
  EXPECT_GE(seen, 1000u) << "the bomb was not seen under way\n" << o.out << o.err;
  EXPECT_TRUE(measured_during_bomb) << "the host was timed after the bomb ended";
  EXPECT_LT(during, 2.0) << "spawning a host process took " << during << " s during the bomb";
  EXPECT_LT(HostSpawnSeconds(), 1.0);
  EXPECT_TRUE(Blocked(o, {"fork bomb: ", "refusals: Resource temporarily unavailable"}));
  auto j = ReadReport(report);
  ASSERT_TRUE(j.contains("pids_peak")) << ReadAll(report);
  EXPECT_LE(j["pids_peak"].get<uint64_t>(), 1024u);
  EXPECT_GE(j["pids_peak"].get<uint64_t>(), 1000u);
}

TEST_F(EscapeProc, MemoryBombIsOomKilledInside) {
  TempDir dir;
  std::string report = dir.path() + "/report.json";
  uint64_t avail = HostMemAvailable();
  auto o = Attack("memory-bomb", {"1024"}, {"--memory", "64M", "--report", report});
  EXPECT_TRUE(Blocked(o, {"memory bomb: worker killed by signal 9 after", "OOM-killed"}));
  auto j = ReadReport(report);
  ASSERT_TRUE(j.contains("oom_killed")) << ReadAll(report);
  EXPECT_TRUE(j["oom_killed"].get<bool>());
  EXPECT_LE(j["memory_peak_bytes"].get<uint64_t>(), 64u << 20);
  EXPECT_GT(HostMemAvailable() + (512ull << 20), avail) << "host memory stayed in use";
  EXPECT_LT(HostSpawnSeconds(), 1.0);
}

}  // namespace
}  // namespace kiln::testing::escape
