// The host probes against independent evidence: util-linux's unshare for
// user namespaces, /proc/sys for sysctls; and under a seccomp filter, where a
// refusal proves nothing about the kernel, a probe must say unknown.
#include "sandbox/probe.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "base/fd.h"
#include "base/strings.h"

namespace kiln::sandbox::probe {
namespace {

// util-linux's own attempt: a user and mount namespace, root mapped, a tmpfs
// mounted inside. `as` is a setpriv prefix, or empty for the caller.
bool UnshareWorks(const std::string& as) {
  std::string cmd = as +
                    "unshare --user --map-root-user --mount sh -c 'mount -t tmpfs none /tmp' "
                    ">/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

TEST(ProbeTest, UserNamespaceAgreesWithUnshare) {
  if (std::system("command -v unshare >/dev/null") != 0) GTEST_SKIP() << "no unshare(1) here";
  Finding mine = UserNamespace();
  EXPECT_EQ(mine.present(), UnshareWorks("")) << mine.detail;
  if (::geteuid() != 0) return;
  Finding nobody = UserNamespace(kNobody);
  EXPECT_EQ(nobody.present(), UnshareWorks("setpriv --reuid 65534 --regid 65534 --clear-groups "))
      << nobody.detail;
  EXPECT_NE(nobody.detail.find("as uid 65534"), std::string::npos) << nobody.detail;
}

// util-linux's own attempt at kiln's root: a tmpfs, and an overlay with its
// upper layer on it, in a mount namespace (and a user namespace, with
// userxattr, for an unprivileged user).
bool OverlayWorks(const std::string& as) {
  std::string user_ns = as.empty() ? "" : "--user --map-root-user ";
  std::string opts = std::string("lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w") +
                     (as.empty() ? "" : ",userxattr");
  std::string cmd = as + "unshare " + user_ns +
                    "--mount sh -c 'mount -t tmpfs none /tmp && mkdir /tmp/l /tmp/u /tmp/w "
                    "/tmp/m && mount -t overlay overlay -o " +
                    opts + " /tmp/m' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

TEST(ProbeTest, OverlayRootAgreesWithUnshareAndMount) {
  if (std::system("command -v unshare >/dev/null") != 0) GTEST_SKIP() << "no unshare(1) here";
  if (::geteuid() != 0) GTEST_SKIP() << "compares root's and nobody's overlays";
  Finding root = OverlayRoot();
  EXPECT_EQ(root.present(), OverlayWorks("")) << root.detail;
  Finding nobody = OverlayRoot(kNobody);
  EXPECT_EQ(nobody.present(), OverlayWorks("setpriv --reuid 65534 --regid 65534 --clear-groups "))
      << nobody.detail;
  EXPECT_NE(nobody.detail.find("userxattr"), std::string::npos) << nobody.detail;
}

TEST(ProbeTest, SysctlReadsProcSys) {
  auto text = ReadFile("/proc/sys/kernel/ostype");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(Sysctl("kernel.ostype"), std::string(Trim(*text)));
  EXPECT_EQ(Sysctl("kernel.no_such_knob_here"), std::nullopt);
}

// Installs a filter refusing unshare with EPERM and mseal, io_uring_setup and
// the x32 bit's numbers with ENOSYS: what a container runtime's profile does.
void InstallRefusingFilter() {
  constexpr uint32_t kEperm = SECCOMP_RET_ERRNO | EPERM;
  constexpr uint32_t kEnosys = SECCOMP_RET_ERRNO | ENOSYS;
  sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, kEperm),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 462 /* mseal */, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, kEnosys),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, kEnosys),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, kEnosys),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    std::_Exit(99);
  }
}

TEST(ProbeTest, UnderAFilterARefusalProvesNothing) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    InstallRefusingFilter();
    State states[] = {UserNamespace().state, Mseal().state, IoUring().state, X32Abi().state};
    (void)!::write(p[1], states, sizeof states);
    std::_Exit(0);
  }
  ::close(p[1]);
  State states[4];
  ssize_t n = ::read(p[0], states, sizeof states);
  ::close(p[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof states));
  const char* names[] = {"user namespace", "mseal", "io_uring", "x32"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(states[i], State::kUnknown)
        << names[i] << ": a filter's refusal was taken for the kernel's answer (" << Name(states[i])
        << ")";
  }
}

}  // namespace
}  // namespace kiln::sandbox::probe
