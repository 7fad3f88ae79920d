// `kiln sandbox run` end to end: what a user of the CLI checks, and that
// every ending leaves the host as it was.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/sandbox_suite.h"
#include "tests/support/host_features.h"
#include "tests/support/kiln_runner.h"

namespace kiln::testing {
namespace {

namespace fs = std::filesystem;

class SandboxCliTest : public SandboxSuite {};

TEST_F(SandboxCliTest, ExitStatusIsTheCommands) {
  EXPECT_EQ(Sandbox({}, {"sh", "-c", "exit 42"}).status, 42);
  EXPECT_EQ(Sandbox({}, {"true"}).status, 0);
  EXPECT_EQ(Sandbox({}, {"sh", "-c", "kill -TERM $$"}).status, 128 + SIGTERM);
}

TEST_F(SandboxCliTest, FreshNamespaces) {
  auto o = Sandbox({"--hostname", "box1"},
                   {"sh", "-c",
                    "hostname; echo $$; id -u; id -g; ls /sys/class/net; "
                    "cat /proc/self/status | grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):'"});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out,
            "box1\n"
            "2\n"  // the shell is pid 2: kiln's init is pid 1
            "1000\n1000\n"
            "lo\n"  // loopback only
            "CapEff:\t0000000000000000\n"
            "CapBnd:\t0000000000000000\n"
            "NoNewPrivs:\t1\n"
            "Seccomp:\t2\n");
}

TEST_F(SandboxCliTest, LoopbackIsUpAndNothingElse) {
  // A listener and a client on the sandbox's own loopback work; the host's do not exist.
  auto o = Sandbox({}, {"python3", "-c",
                        "import socket\n"
                        "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(1)\n"
                        "c=socket.create_connection(s.getsockname()); a,_=s.accept()\n"
                        "c.send(b'ping'); print(a.recv(4).decode())\n"
                        "try:\n"
                        "  socket.create_connection(('10.0.2.2', 80), timeout=2)\n"
                        "except OSError as e: print('unreachable', e.errno)\n"});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("ping\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("unreachable 101"), std::string::npos) << o.out;  // ENETUNREACH
}

TEST_F(SandboxCliTest, HostImageIsReadOnlyAndFiltered) {
  auto o = Sandbox(
      {}, {"sh", "-c",
           "touch /usr/kiln-escape 2>/dev/null && echo wrote-usr; "
           "test -e /etc/shadow && echo has-shadow; test -e /etc/gshadow && echo has-gshadow; "
           "test -r /etc/passwd && echo has-passwd; "
           "touch /etc/kiln-upper && echo upper-writable-by-uid-1000; "
           "touch /tmp/ok && echo tmp-ok"});
  EXPECT_EQ(o.out, "has-passwd\ntmp-ok\n") << o.err;
  EXPECT_FALSE(fs::exists("/usr/kiln-escape"));
}

TEST_F(SandboxCliTest, RootfsChangesAreDiscarded) {
  ASSERT_EQ(Sandbox({}, {"sh", "-c", "echo x > /tmp/kiln-run-marker"}).status, 0);
  auto o = Sandbox({}, {"sh", "-c", "test -e /tmp/kiln-run-marker && echo kept || echo gone"});
  EXPECT_EQ(o.out, "gone\n");
  EXPECT_FALSE(fs::exists("/tmp/kiln-run-marker"));
}

TEST_F(SandboxCliTest, UidZeroInsideIsNotHostRoot) {
  // Inside root maps to an unprivileged host id: host-owned files stay read-only.
  auto o = Sandbox({"--uid", "0", "--gid", "0"},
                   {"sh", "-c",
                    "id -u; echo x > /etc/kiln-root-marker 2>/dev/null || echo refused; "
                    "grep CapEff /proc/self/status"});
  EXPECT_EQ(o.out, "0\nrefused\nCapEff:\t0000000000000000\n") << o.err;
}

TEST_F(SandboxCliTest, BindsWorkspaceAndTmpfs) {
  TempDir data, ws;
  WriteAll(data.path() + "/in.txt", "from host\n");
  ::chmod(ws.path().c_str(), 0777);
  auto o = Sandbox(
      {"--bind", data.path() + ":/data:ro", "--workspace", ws.path(), "--tmpfs", "/scratch:1M"},
      {"sh", "-c",
       "cat /data/in.txt; pwd; "
       "echo nope > /data/out.txt 2>/dev/null || echo ro-refused; "
       "echo result > /workspace/out.txt; "
       "head -c 2000000 /dev/zero > /scratch/big 2>/dev/null || echo tmpfs-full"});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "from host\n/workspace\nro-refused\ntmpfs-full\n");
  EXPECT_EQ(ReadAll(ws.path() + "/out.txt"), "result\n");
  EXPECT_FALSE(fs::exists(data.path() + "/out.txt"));
}

TEST_F(SandboxCliTest, EnvironmentIsMinimalPlusWhatIsAsked) {
  setenv("KILN_TEST_HOST_SECRET", "do-not-leak", 1);
  auto o = Sandbox({"--env", "GREETING=hi", "--workdir", "/tmp"}, {"sh", "-c", "env | sort; pwd"});
  unsetenv("KILN_TEST_HOST_SECRET");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out.find("do-not-leak"), std::string::npos);
  EXPECT_NE(o.out.find("GREETING=hi\n"), std::string::npos);
  EXPECT_NE(o.out.find("PATH=/usr/local/sbin:"), std::string::npos);
  EXPECT_TRUE(o.out.ends_with("/tmp\n")) << o.out;
}

TEST_F(SandboxCliTest, OnlyPassedDescriptorsAreInherited) {
  TempDir dir;
  WriteAll(dir.path() + "/passed", "passed-content\n");
  WriteAll(dir.path() + "/leaked", "leaked-content\n");
  int passed = open((dir.path() + "/passed").c_str(), O_RDONLY);  // not CLOEXEC: kiln inherits both
  int leaked = open((dir.path() + "/leaked").c_str(), O_RDONLY);
  ASSERT_GE(passed, 3);
  RunOptions opts;
  opts.keep_fds = {passed, leaked};
  auto o = Sandbox({"--pass-fd", std::to_string(passed)},
                   // A plain command, no pipe or redirection: while the shell sets those
                   // up it holds descriptors of its own, and ls could list them.
                   {"sh", "-c", "cat <&" + std::to_string(passed) + "; ls /proc/$$/fd"}, opts);
  close(passed);
  close(leaked);
  ASSERT_EQ(o.status, 0) << o.err;
  std::set<std::string> expected = {"0", "1", "2", std::to_string(passed)};
  std::string listed;  // ls sorts names as text, as the set does
  for (const auto& fd : expected) listed += fd + "\n";
  EXPECT_EQ(o.out, "passed-content\n" + listed) << "only stdio and the passed fd";
}

// `kiln sandbox run` links nothing but the sandbox, statically: no loader, no
// shared library. The other verbs are kiln-controller's, reached through kiln.
TEST_F(SandboxCliTest, KilnIsStaticAndHandsOtherVerbsToKilnController) {
  auto dynamic = kiln::testing::Run({"/usr/bin/readelf", "--dynamic", KilnBinary()});
  ASSERT_EQ(dynamic.status, 0) << dynamic.err;
  EXPECT_EQ(dynamic.out.find("(NEEDED)"), std::string::npos) << dynamic.out;
  auto headers = kiln::testing::Run({"/usr/bin/readelf", "--program-headers", KilnBinary()});
  ASSERT_EQ(headers.status, 0) << headers.err;
  EXPECT_EQ(headers.out.find("INTERP"), std::string::npos) << headers.out;
  EXPECT_NE(headers.out.find("DYN (Position-Independent Executable file)"), std::string::npos)
      << "linked as a static PIE, so that ASLR applies\n"
      << headers.out;

  auto version = kiln::testing::Run({KilnBinary(), "--version"});
  EXPECT_EQ(version.status, 0) << version.err;
  EXPECT_EQ(version.out, "kiln 0.1.0\n");
  auto help = kiln::testing::Run({KilnBinary(), "--log-format", "json", "runs", "--help"});
  EXPECT_EQ(help.status, 0) << help.err;
  EXPECT_NE(help.out.find("list"), std::string::npos) << help.out;
}

TEST_F(SandboxCliTest, KilnWithoutKilnControllerBesideItStillRunsSandboxes) {
  TempDir dir;
  std::string kiln = dir.path() + "/kiln";
  fs::copy_file(KilnBinary(), kiln);
  auto o =
      kiln::testing::Run({kiln, "sandbox", "run", "--state-dir", TestStateDir(), "--cgroup-parent",
                          TestCgroupParent(), "--", "sh", "-c", "echo inside"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "inside\n");
  auto other = kiln::testing::Run({kiln, "runs", "list"});
  EXPECT_EQ(other.status, 127);
  EXPECT_NE(other.err.find("cannot run " + dir.path() + "/kiln-controller: No such file"),
            std::string::npos)
      << other.err;
}

TEST_F(SandboxCliTest, TimeoutTermsThenKills) {
  TempDir dir;
  std::string report = dir.path() + "/r.json";
  auto t0 = std::chrono::steady_clock::now();
  auto o = Sandbox({"--timeout", "500ms", "--grace", "300ms", "--report", report},
                   {"sh", "-c", "trap '' TERM; sleep 30; echo unreachable"});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(o.status, 128 + SIGKILL) << o.err;
  EXPECT_LT(secs, 20) << "the sleep must not have run to its end";
  EXPECT_NE(o.err.find("timed out"), std::string::npos);
  auto j = nlohmann::json::parse(ReadAll(report));
  EXPECT_TRUE(j["timed_out"].get<bool>());
  EXPECT_EQ(j["signal"], SIGKILL);

  // A command that honours SIGTERM ends with it.
  EXPECT_EQ(Sandbox({"--timeout", "300ms"}, {"sleep", "30"}).status, 128 + SIGTERM);
}

TEST_F(SandboxCliTest, ReportDescribesTheRun) {
  TempDir dir;
  std::string report = dir.path() + "/r.json";
  auto o =
      Sandbox({"--report", report},
              {"sh", "-c",
               "unshare --user true; head -c 50000000 /dev/zero | tail -c 1 >/dev/null; exit 3"});
  EXPECT_EQ(o.status, 3);
  auto j = nlohmann::json::parse(ReadAll(report));
  EXPECT_EQ(j["status"], 3);
  EXPECT_EQ(j["exit_code"], 3);
  EXPECT_TRUE(j["signal"].is_null());
  EXPECT_FALSE(j["timed_out"].get<bool>());
  EXPECT_FALSE(j["oom_killed"].get<bool>());
  EXPECT_GT(j["wall_seconds"].get<double>(), 0);
  EXPECT_GE(j["cpu_seconds"].get<double>(), 0);
  EXPECT_GT(j["memory_peak_bytes"].get<uint64_t>(), 1u << 20);
  EXPECT_GE(j["pids_peak"].get<uint64_t>(), 3u);
  EXPECT_GE(j["seccomp_denials"].get<uint64_t>(), 1u);
  EXPECT_GE(j["denied_syscalls"]["unshare"].get<uint64_t>(), 1u) << j.dump();
}

TEST_F(SandboxCliTest, SeccompLogPrintsDenials) {
  auto quiet = Sandbox({}, {"unshare", "--user", "true"});
  EXPECT_NE(quiet.status, 0);
  EXPECT_EQ(quiet.err.find("seccomp: denied"), std::string::npos);
  auto logged = Sandbox({"--seccomp-log"}, {"unshare", "--user", "true"});
  EXPECT_NE(logged.status, 0);
  EXPECT_NE(logged.err.find("seccomp: denied unshare"), std::string::npos) << logged.err;
}

TEST_F(SandboxCliTest, OomStaysInside) {
  TempDir dir;
  std::string report = dir.path() + "/r.json";
  auto o = Sandbox({"--memory", "64M", "--report", report},
                   {"python3", "-c", "x = bytearray(512 * 1024 * 1024)"});
  EXPECT_EQ(o.status, 128 + SIGKILL) << o.err;
  auto j = nlohmann::json::parse(ReadAll(report));
  EXPECT_TRUE(j["oom_killed"].get<bool>());
  EXPECT_LE(j["memory_peak_bytes"].get<uint64_t>(), 64u << 20);
  // The host (this test process) is alive and well.
  EXPECT_EQ(Sandbox({}, {"true"}).status, 0);
}

TEST_F(SandboxCliTest, NothingSurvivesTheCommand) {
  std::string marker = "kiln-orphan-" + std::to_string(getpid());
  // A daemonised grandchild outlives the shell; kiln must end it.
  auto o = Sandbox(
      {},
      {"sh", "-c", "setsid sleep 300 " + marker + " </dev/null >/dev/null 2>&1 & echo started"});
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(o.out, "started\n");
  EXPECT_TRUE(ProcessesMatching(marker).empty());
}

TEST_F(SandboxCliTest, SupervisorKilledThenGcCleansUp) {
  std::string marker = "kiln-sigkill-" + std::to_string(getpid());
  pid_t pid = fork();
  if (pid == 0) {
    execl(KilnBinary().c_str(), "kiln", "sandbox", "run", "--state-dir", TestStateDir().c_str(),
          "--cgroup-parent", TestCgroupParent().c_str(), "--id", marker.c_str(), "--", "sh", "-c",
          "sleep 300; true", marker.c_str(), nullptr);
    _exit(127);
  }
  // Wait until the command runs inside (kiln's own command line matches too).
  auto sleeping = [&] {
    for (pid_t p : ProcessesMatching(marker)) {
      if (ReadAll("/proc/" + std::to_string(p) + "/comm") == "sh\n") return true;
    }
    return false;
  };
  for (int i = 0; i < 500 && !sleeping(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(sleeping());
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  for (int i = 0; i < 200 && !ProcessesMatching(marker).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(ProcessesMatching(marker).empty()) << "the sandbox must die with its supervisor";
  HostState leftover = Snapshot();
  EXPECT_TRUE(leftover.run_dirs.count(TestStateDir() + "/run/" + marker + ".json"))
      << "state to reap is expected";

  auto gc = kiln::testing::Run({KilnBinary(), "sandbox", "gc", "--state-dir", TestStateDir(),
                                "--cgroup-parent", TestCgroupParent()});
  EXPECT_EQ(gc.status, 0) << gc.err;
  EXPECT_NE(gc.out.find("removed " + marker), std::string::npos) << gc.out;
  // TearDown checks that nothing is left.
}

TEST_F(SandboxCliTest, ImageDirectoryReplacesTheHostView) {
  TempDir image;
  fs::create_directories(image.path() + "/bin");
  fs::copy_file(KILN_IMAGE_PROBE, image.path() + "/bin/probe");
  auto o = Sandbox({"--image", image.path()}, {"/bin/probe"});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "probe uid=1000 usr=no etc=no\n");
  // The image is a read-only lower layer: the run changed nothing in it.
  EXPECT_FALSE(fs::exists(image.path() + "/proc"));
  EXPECT_FALSE(fs::exists(image.path() + "/dev"));
}

TEST_F(SandboxCliTest, LayersStackWithWhiteoutsAndOpaqueDirectories) {
  if (::geteuid() != 0) GTEST_SKIP() << "whiteouts and trusted.* xattrs need root";
  TempDir bottom, middle, top;
  fs::create_directories(bottom.path() + "/bin");
  fs::create_directories(bottom.path() + "/usr/bin");
  fs::create_directories(bottom.path() + "/etc");
  fs::copy_file(KILN_IMAGE_PROBE, bottom.path() + "/bin/probe");
  bottom.Write("etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  auto all = Sandbox({"--layer", bottom.path()}, {"/bin/probe"});
  ASSERT_EQ(all.status, 0) << all.err;
  EXPECT_EQ(all.out, "probe uid=1000 usr=yes etc=yes\n");

  // The middle layer deletes /etc/passwd (an overlay whiteout); the top one
  // replaces /usr by an empty directory (opaque).
  fs::create_directories(middle.path() + "/etc");
  ASSERT_EQ(::mknod((middle.path() + "/etc/passwd").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  fs::create_directories(top.path() + "/usr");
  ASSERT_EQ(::setxattr((top.path() + "/usr").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  auto o = Sandbox({"--layer", bottom.path(), "--layer", middle.path(), "--layer", top.path()},
                   {"/bin/probe"});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "probe uid=1000 usr=no etc=no\n");
  auto both = Sandbox({"--image", bottom.path(), "--layer", top.path()}, {"/bin/probe"});
  EXPECT_EQ(both.status, 2);
  EXPECT_NE(both.err.find("exclude each other"), std::string::npos) << both.err;
}

TEST_F(SandboxCliTest, SignalsReachTheCommand) {
  TempDir dir;
  std::string ready = dir.path() + "/ready";
  ::chmod(dir.path().c_str(), 0777);
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    execl(KilnBinary().c_str(), "kiln", "sandbox", "run", "--state-dir", TestStateDir().c_str(),
          "--cgroup-parent", TestCgroupParent().c_str(), "--workspace", dir.path().c_str(), "--",
          "sh", "-c",
          "trap 'echo got-term; exit 7' TERM; touch ready; while :; do sleep 0.05; done", nullptr);
    _exit(127);
  }
  close(out[1]);
  for (int i = 0; i < 500 && !fs::exists(ready); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fs::exists(ready));
  kill(pid, SIGTERM);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  char buf[64] = {};
  ssize_t n = read(out[0], buf, sizeof buf - 1);
  close(out[0]);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 7) << st;
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "got-term\n");
}

TEST_F(SandboxCliTest, CgroupV2BackendEndToEnd) {
  // This host's cgroup2 mount has no controllers, so only the mechanics run:
  // a v2 cgroup is created, joined, reported on and removed.
  std::string v2 = "/sys/fs/cgroup/unified";
  if (!fs::exists(v2 + "/cgroup.controllers")) GTEST_SKIP() << "no hybrid cgroup2 mount here";
  TempDir dir;
  std::string report = dir.path() + "/r.json";
  auto o = Sandbox({"--cgroup-root", v2, "--memory", "max", "--pids", "max", "--report", report},
                   {"sh", "-c", "cat /proc/self/cgroup | grep '^0::'"});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "0::/\n") << "the cgroup namespace's root is the sandbox's cgroup";
  auto j = nlohmann::json::parse(ReadAll(report));
  EXPECT_GT(j["cpu_seconds"].get<double>(), 0.0) << "cpu.stat is read from the v2 cgroup";
  for (const auto& e : fs::directory_iterator(v2 + "/" + TestCgroupParent())) {
    EXPECT_FALSE(e.is_directory()) << "left behind: " << e.path();
  }
}

TEST_F(SandboxCliTest, InitRevealsNothingOfTheSupervisor) {
  auto o = Sandbox({"--env", "KILN_INIT_PROBE=visible-to-command-only"},
                   {"sh", "-c", "tr '\\0' ' ' </proc/1/cmdline; echo; cat /proc/1/comm"});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out.find(TestStateDir()), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("KILN_INIT_PROBE"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("kiln-init"), std::string::npos) << o.out;
}

// /dev holds the six device files and they work, as root (nodes made with
// mknod) and rootless (the host's, bind-mounted); the sandbox cannot add one.
TEST_F(SandboxCliTest, DeviceFilesWorkAndNoneCanBeAdded) {
  const std::string script =
      "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; "
      "echo x > /dev/null && echo null-ok; head -c 3 /dev/zero | od -An -tx1; "
      "(echo x > /dev/full) 2>/dev/null || echo full-refused; head -c 8 /dev/urandom | wc -c; "
      "mknod /dev/kiln-mem c 1 1 2>/dev/null || echo mknod-dev-refused";
  const std::string expected =
      "/dev/null character special file 1:3 666\n"
      "/dev/zero character special file 1:5 666\n"
      "/dev/full character special file 1:7 666\n"
      "/dev/random character special file 1:8 666\n"
      "/dev/urandom character special file 1:9 666\n"
      "/dev/tty character special file 5:0 666\n"
      "null-ok\n 00 00 00\nfull-refused\n8\nmknod-dev-refused\n";
  // As root, /dev (the one mount without nodev) belongs to root: nothing can
  // be added. Rootless, everything inside belongs to the one mapped user.
  auto root = Sandbox(
      {}, {"sh", "-c", script + "; touch /dev/kiln-file 2>/dev/null || echo write-dev-refused"});
  ASSERT_EQ(root.status, 0) << root.err;
  EXPECT_EQ(root.out, expected + "write-dev-refused\n");
  KILN_REQUIRE_ROOTLESS_HOST();
  RunOptions nobody;
  nobody.as_uid = 65534;
  nobody.as_gid = 65534;
  auto rootless = Sandbox({}, {"sh", "-c", script}, nobody);
  ASSERT_EQ(rootless.status, 0) << rootless.err;
  EXPECT_EQ(rootless.out, expected);
}

TEST_F(SandboxCliTest, RootlessAsNobody) {
  KILN_REQUIRE_ROOTLESS_HOST();
  RunOptions opts;
  opts.as_uid = 65534;
  opts.as_gid = 65534;
  auto o = Sandbox({},
                   {"sh", "-c",
                    "id -u; cat /proc/self/uid_map | tr -s ' '; touch /tmp/x && echo tmp-ok; "
                    "grep CapEff /proc/self/status"},
                   opts);
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "1000\n 1000 65534 1\ntmp-ok\nCapEff:\t0000000000000000\n");
  EXPECT_NE(o.err.find("without cgroup limits"), std::string::npos);
}

TEST_F(SandboxCliTest, RootlessCapsProcessesAndCachesNoFilter) {
  KILN_REQUIRE_ROOTLESS_HOST();
  RunOptions opts;
  opts.as_uid = 65534;
  opts.as_gid = 65534;
  // RLIMIT_NPROC stands in for the cgroup's pids limit and counts only the
  // sandbox's own processes: 12 background sleeps do not fit under 8.
  auto o = Sandbox({"--pids", "8", "--no-cgroup", "--memory", "max"},
                   {"python3", "-c",
                    "import os, resource, time\n"
                    "print(resource.getrlimit(resource.RLIMIT_NPROC)[0])\n"
                    "started = 0\n"
                    "for _ in range(12):\n"
                    "  try:\n"
                    "    if os.fork() == 0:\n"
                    "      time.sleep(3); os._exit(0)\n"
                    "    started += 1\n"
                    "  except OSError:\n"
                    "    pass\n"
                    "print(started)\n"},
                   opts);
  ASSERT_EQ(o.status, 0) << o.err;
  ASSERT_EQ(o.out.substr(0, 2), "8\n") << o.out;
  EXPECT_LT(std::stoi(o.out.substr(2)), 8) << o.out;
  // The unprivileged state directory is the sandbox's own uid's: no
  // compiled filter is kept there for a later sandbox to load.
  EXPECT_FALSE(fs::exists(TestStateDir() + "-u65534/seccomp"));
}

}  // namespace
}  // namespace kiln::testing
