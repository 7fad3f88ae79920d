// Escape suite, kernel-surface attacks: interfaces that are not namespaced
// or have a long record of exploitable bugs, the other system call ABIs,
// the seccomp filter itself, and flooding the supervisor with denials.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "tests/escape/escape_support.h"
#include "tests/support/host_features.h"

namespace kiln::testing::escape {
namespace {

namespace fs = std::filesystem;

class EscapeKernel : public EscapeTest {
 protected:
  // Floods the supervisor with denials of distinct made-up numbers through
  // `abi` and checks that what it keeps and reports stays bounded.
  void ExpectBoundedUnderFlood(const std::string& abi);
};

TEST_F(EscapeKernel, KeyringsAreRefused) {
  // Keyrings are per host uid, not per namespace. The fixture checks that no
  // sandbox uid owns keys on the host afterwards (/proc/key-users).
  EXPECT_TRUE(Blocked(Attack("keyctl"),
                      {"add_key(user, kiln-escape, @u): Operation not permitted",
                       "keyctl(KEYCTL_JOIN_SESSION_KEYRING, kiln-escape): Operation not permitted",
                       "request_key(user, kiln-escape): Operation not permitted"}));
}

TEST_F(EscapeKernel, BpfIsRefused) {
  EXPECT_TRUE(Blocked(Attack("bpf"), {"bpf(BPF_MAP_CREATE): Operation not permitted",
                                      "bpf(BPF_PROG_LOAD, socket filter): Operation not permitted",
                                      "bpf(BPF_PROG_GET_NEXT_ID): Operation not permitted"}));
}

TEST_F(EscapeKernel, PerfEventsAreRefused) {
  EXPECT_TRUE(
      Blocked(Attack("perf"),
              {"perf_event_open(cpu-clock, self): Operation not permitted",
               "perf_event_open(cpu-clock, every process on cpu 0): Operation not permitted"}));
}

TEST_F(EscapeKernel, IoUringIsRefused) {
  // Layer: seccomp alone; the host may well allow io_uring
  // (kernel.io_uring_disabled), so the policy must not.
  EXPECT_TRUE(Blocked(Attack("io-uring"), {"io_uring_setup(8): Operation not permitted",
                                           "io_uring_enter(-1): Operation not permitted",
                                           "io_uring_register(-1): Operation not permitted"}));
}

TEST_F(EscapeKernel, UserfaultfdIsRefused) {
  EXPECT_TRUE(
      Blocked(Attack("userfaultfd"), {"userfaultfd(O_CLOEXEC): Operation not permitted",
                                      "userfaultfd(UFFD_USER_MODE_ONLY): Operation not permitted",
                                      "open(/dev/userfaultfd): No such file or directory"}));
}

TEST_F(EscapeKernel, X32SystemCallsAreRefused) {
  // EPERM from the filter, before the kernel (which may not even have x32)
  // sees the number.
  EXPECT_TRUE(Blocked(Attack("x32"), {"x32 getpid: Operation not permitted",
                                      "x32 unshare(CLONE_NEWUSER): Operation not permitted",
                                      "x32 ptrace (x32 number 521): Operation not permitted"}));
}

TEST_F(EscapeKernel, I386SystemCallsAreRefused) {
  // Without IA32 emulation `int 0x80` faults before any filter sees it: there
  // is no i386 ABI to attack, and nothing to prove.
  KILN_REQUIRE_HOST(sandbox::probe::I386Abi(), "the i386 ABI");
  EXPECT_TRUE(
      Blocked(Attack("i386"),
              {"int 0x80 getpid (i386 20): Operation not permitted",
               "int 0x80 unshare(CLONE_NEWUSER) (i386 310): Operation not permitted",
               "int 0x80 socketcall(socket, AF_PACKET) (i386 102): Operation not permitted"}));
}

TEST_F(EscapeKernel, ModulesCannotBeLoadedOrRemoved) {
  // The fixture compares /proc/modules (when the kernel has modules).
  EXPECT_TRUE(
      Blocked(Attack("modules"), {"init_module: Operation not permitted",
                                  "finit_module(/attack/kiln-attack): Operation not permitted",
                                  "delete_module(kiln_escape_absent): Operation not permitted"}));
}

TEST_F(EscapeKernel, RebootAndKexecAreRefused) {
  EXPECT_TRUE(
      Blocked(Attack("reboot"), {"reboot(LINUX_REBOOT_CMD_CAD_OFF): Operation not permitted",
                                 "kexec_load(no segments): Operation not permitted"}));
}

TEST_F(EscapeKernel, ClockCannotBeSet) {
  EXPECT_TRUE(
      Blocked(Attack("clock"), {"clock_settime(CLOCK_REALTIME, now): Operation not permitted",
                                "settimeofday(now): Operation not permitted",
                                "adjtimex(ADJ_TICK): Operation not permitted"}));
}

TEST_F(EscapeKernel, OwnSeccompListenerCannotOverrideKilns) {
  // kiln routes denials to a listener; a second listener of the attacker's
  // would win ties and could answer "continue". The kernel allows one
  // listener per filter chain (EBUSY), and stacked filters only restrict.
  EXPECT_TRUE(
      Blocked(Attack("seccomp-listener"),
              {"seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER): Device or resource busy",
               "unshare(CLONE_NEWUSER) under an allow-all filter: Operation not permitted"}));
}

// VmRSS of the kiln supervisor this test started (its parent is us).
uint64_t SupervisorRss(const std::string& marker) {
  for (pid_t pid : ProcessesMatching(marker)) {
    std::istringstream in(ReadAll("/proc/" + std::to_string(pid) + "/status"));
    uint64_t rss = 0;
    pid_t ppid = 0;
    for (std::string key; in >> key;) {
      if (key == "PPid:") in >> ppid;
      if (key == "VmRSS:") in >> rss;
    }
    if (ppid == getpid()) return rss * 1024;
  }
  return 0;
}

void EscapeKernel::ExpectBoundedUnderFlood(const std::string& abi) {
  TempDir dir;
  std::string report = dir.path() + "/report.json";
  std::atomic<bool> done{false};
  Outcome o;
  std::thread flood([&] {
    o = Attack("denial-flood", {abi, "3000", "2"}, {"--report", report});
    done = true;
  });
  uint64_t first = 0, peak = 0;
  while (!done) {
    uint64_t rss = SupervisorRss(marker());
    if (rss != 0 && first == 0) first = rss;
    peak = std::max(peak, rss);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  flood.join();
  EXPECT_TRUE(Blocked(o, {"distinct " + abi + " system call numbers: Operation not permitted"}));
  auto j = ReadReport(report);
  ASSERT_TRUE(j.contains("denied_syscalls")) << ReadAll(report).substr(0, 2000);
  EXPECT_GT(j["seccomp_denials"].get<uint64_t>(), 10000u) << "the flood never got going";
  EXPECT_LE(j["denied_syscalls"].size(), 1100u)
      << "the supervisor keeps one entry per made-up number";
  EXPECT_GT(j["denied_syscalls"].value("other", 0u), 0u)
      << "the made-up numbers past the cap are counted together";
  EXPECT_LT(fs::file_size(report), 256u << 10) << "the report grows with every made-up number";
  EXPECT_LT(peak - std::min(first, peak), 8u << 20)
      << "the supervisor grew from " << first << " to " << peak << " bytes during the flood";
}

TEST_F(EscapeKernel, DenialFloodThroughX32DoesNotGrowTheSupervisor) {
  // Every denial is answered by the supervisor, outside the sandbox's memory
  // cgroup, and counted by name in the report. The filter refuses the x32
  // bit before the kernel looks at the number, so on any x86_64 kernel every
  // 30-bit number reaches the supervisor; what it keeps must stay bounded.
#if !defined(__x86_64__)
  GTEST_SKIP() << "the x32 bit is an x86_64 system call number";
#endif
  ExpectBoundedUnderFlood("x32");
}

TEST_F(EscapeKernel, DenialFloodThroughI386DoesNotGrowTheSupervisor) {
  // The same through `int 0x80`, where the whole 32-bit range is reachable.
  KILN_REQUIRE_HOST(sandbox::probe::I386Abi(), "the i386 ABI");
  ExpectBoundedUnderFlood("i386");
}

}  // namespace
}  // namespace kiln::testing::escape
