#include "sandbox/probe.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <sstream>

#include "base/fd.h"
#include "base/strings.h"

namespace kiln::sandbox::probe {

namespace {

// What a probing child reports: the step that failed (or -1 when every step
// passed), its errno, and a value for the caller.
struct Answer {
  int failed_step = -1;
  int err = 0;
  long value = 0;
};

struct ChildOutcome {
  bool answered = false;  // false when the child died before it could answer
  Answer answer;
  int wait_status = 0;
};

// Runs fn in a forked child, so that whatever it changes (namespaces,
// filters, identity) and however it ends (a signal) leaves the caller as it
// was. fn runs between fork and _exit: system calls only, no allocation.
template <typename Fn>
ChildOutcome InChild(Fn fn) {
  ChildOutcome o;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    o.answer.err = errno;
    return o;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    Answer a = fn();
    (void)!::write(p[1], &a, sizeof a);
    ::_exit(0);
  }
  ::close(p[1]);
  if (pid < 0) {
    o.answer.err = errno;
    ::close(p[0]);
    return o;
  }
  ssize_t n;
  do {
    n = ::read(p[0], &o.answer, sizeof o.answer);
  } while (n < 0 && errno == EINTR);
  ::close(p[0]);
  o.answered = n == static_cast<ssize_t>(sizeof o.answer);
  while (::waitpid(pid, &o.wait_status, 0) < 0 && errno == EINTR) {
  }
  return o;
}

std::string HowItEnded(const ChildOutcome& o) {
  if (WIFSIGNALED(o.wait_status)) {
    return std::string("the probe was killed by ") + ::sigabbrev_np(WTERMSIG(o.wait_status));
  }
  if (o.answer.err != 0) return std::string("the probe could not start: ") + strerror(o.answer.err);
  return "the probe ended without answering (status " + std::to_string(o.wait_status) + ")";
}

bool Unfiltered() { return OwnSeccompMode().value_or(0) == 0; }

// A refusal that may be the caller's own confinement rather than the kernel's
// answer: unknown, not absent, under a seccomp filter.
Finding RefusedOrUnknown(std::string detail) {
  if (!Unfiltered()) {
    return {State::kUnknown,
            detail +
                " (this process already runs under a seccomp filter, which may be what "
                "refused it)"};
  }
  return {State::kAbsent, std::move(detail)};
}

// A call's answer: present when it worked; absent when the kernel says it
// has no such call; otherwise as RefusedOrUnknown.
Finding FromCall(const std::string& what, const ChildOutcome& o) {
  if (!o.answered) return {State::kUnknown, what + ": " + HowItEnded(o)};
  if (o.answer.failed_step < 0) return {State::kPresent, what + " worked"};
  std::string detail = what + ": " + strerror(o.answer.err);
  // A filter can answer ENOSYS too (kiln's does, for calls newer than its
  // libseccomp), so only an unfiltered ENOSYS proves the call absent.
  if (o.answer.err == ENOSYS && Unfiltered()) {
    return {State::kAbsent, detail + " (not in this kernel)"};
  }
  return RefusedOrUnknown(detail);
}

// Writes text to a /proc file from a probing child; returns errno or 0.
int WriteProc(const char* path, const char* text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t len = static_cast<ssize_t>(std::strlen(text));
  int err = ::write(fd, text, static_cast<size_t>(len)) == len ? 0 : errno;
  ::close(fd);
  return err;
}

#if defined(__x86_64__)
long Int80Getpid() {
  long ret = 20;  // getpid on i386
  asm volatile("int $0x80" : "+a"(ret) : : "memory", "r8", "r9", "r10", "r11");
  return ret;
}
constexpr long kX32Bit = 0x40000000;
#endif

// The steps of the namespace probe, in order; names for messages.
enum Step { kDrop, kUnshare, kSetgroups, kUidMap, kGidMap, kPrivate, kTmpfs, kMkdir, kOverlay };
constexpr const char* kStepNames[] = {
    "dropping to the probed user",
    nullptr,  // unshare: named with its flags
    "writing /proc/self/setgroups",
    "writing /proc/self/uid_map",
    "writing /proc/self/gid_map",
    "mount('/', MS_REC|MS_PRIVATE)",
    "mount(tmpfs, '/tmp')",
    "mkdir on the tmpfs",
    nullptr,  // overlay: named with its options
};

struct NamespaceProbe {
  std::optional<uid_t> as_uid;
  bool user_ns = true;
  bool overlay = false;

  // In the child: each step in turn, up to the first that fails.
  Answer Run() const {
    Answer a;
    auto fail = [&](Step s, int err) {
      a.failed_step = s;
      a.err = err;
      return a;
    };
    if (as_uid) {
      if (::setgroups(0, nullptr) != 0 || ::setresgid(*as_uid, *as_uid, *as_uid) != 0 ||
          ::setresuid(*as_uid, *as_uid, *as_uid) != 0) {
        return fail(kDrop, errno);
      }
      // Changing ids made us undumpable, which leaves /proc/self's files to
      // root; a process started as that user (as kiln would be) is dumpable.
      if (::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) return fail(kDrop, errno);
    }
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWNS | (user_ns ? CLONE_NEWUSER : 0)) != 0) return fail(kUnshare, errno);
    if (user_ns) {
      char map[64];
      if (int err = WriteProc("/proc/self/setgroups", "deny"); err != 0 && err != ENOENT)
        return fail(kSetgroups, err);
      std::snprintf(map, sizeof map, "0 %u 1\n", uid);
      if (int err = WriteProc("/proc/self/uid_map", map); err != 0) return fail(kUidMap, err);
      std::snprintf(map, sizeof map, "0 %u 1\n", gid);
      if (int err = WriteProc("/proc/self/gid_map", map); err != 0) return fail(kGidMap, err);
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      return fail(kPrivate, errno);
    if (::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0700") != 0)
      return fail(kTmpfs, errno);
    if (!overlay) return a;
    for (const char* d : {"/tmp/l", "/tmp/u", "/tmp/w", "/tmp/m"}) {
      if (::mkdir(d, 0700) != 0) return fail(kMkdir, errno);
    }
    if (::mount("overlay", "/tmp/m", "overlay", MS_NOSUID | MS_NODEV, Options()) != 0)
      return fail(kOverlay, errno);
    return a;
  }

  const char* Options() const {
    return user_ns ? "lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w,userxattr"
                   : "lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w";
  }

  std::string StepName(int step) const {
    if (step == kUnshare) {
      return user_ns ? "unshare(CLONE_NEWUSER|CLONE_NEWNS)" : "unshare(CLONE_NEWNS)";
    }
    if (step == kOverlay) return std::string("mount(overlay, '") + Options() + "')";
    return kStepNames[step];
  }

  Finding Probe(const std::string& done) const {
    std::string who =
        as_uid ? "as uid " + std::to_string(*as_uid) : "as uid " + std::to_string(::getuid());
    ChildOutcome o = InChild([this] { return Run(); });
    if (!o.answered) return {State::kUnknown, who + ": " + HowItEnded(o)};
    if (o.answer.failed_step < 0) return {State::kPresent, who + ": " + done};
    std::string detail =
        who + ": " + StepName(o.answer.failed_step) + ": " + strerror(o.answer.err);
    if (o.answer.failed_step == kDrop) return {State::kUnknown, detail};
    return RefusedOrUnknown(detail);
  }
};

}  // namespace

const char* Name(State s) {
  switch (s) {
    case State::kPresent:
      return "present";
    case State::kAbsent:
      return "absent";
    case State::kUnknown:
      return "unknown";
  }
  return "unknown";
}

namespace {

#if defined(__x86_64__)
// getpid through each other ABI, in a child: its pid when the call ran.
ChildOutcome TryI386() {
  return InChild([] {
    Answer a;
    // The fault is the answer: no handler (a sanitizer's, say) may turn it
    // into something else.
    ::signal(SIGSEGV, SIG_DFL);
    a.value = Int80Getpid();
    if (a.value != ::getpid()) {
      a.failed_step = 0;
      a.err = a.value < 0 && a.value > -4096 ? static_cast<int>(-a.value) : 0;
    }
    return a;
  });
}

ChildOutcome TryX32() {
  return InChild([] {
    Answer a;
    a.value = ::syscall(kX32Bit | SYS_getpid);
    if (a.value != ::getpid()) {
      a.failed_step = 0;
      a.err = errno;
    }
    return a;
  });
}

bool Faulted(const ChildOutcome& o) {
  return !o.answered && WIFSIGNALED(o.wait_status) && WTERMSIG(o.wait_status) == SIGSEGV;
}
#endif

}  // namespace

Finding I386Abi() {
#if defined(__x86_64__)
  ChildOutcome o = TryI386();
  if (Faulted(o)) {
    return {State::kAbsent,
            "int 0x80 raised SIGSEGV: the kernel has no IA32 emulation (CONFIG_IA32_EMULATION is "
            "off, or ia32_emulation=0 is on its command line)"};
  }
  if (!o.answered) return {State::kUnknown, "int 0x80 getpid: " + HowItEnded(o)};
  if (o.answer.failed_step < 0) return {State::kPresent, "int 0x80 getpid returned the pid"};
  long ret = o.answer.value;
  std::string what = o.answer.err != 0 ? strerror(o.answer.err) : "no error";
  return {State::kUnknown, "int 0x80 getpid returned " + std::to_string(ret) + " (" + what +
                               "), neither the pid nor a fault"};
#else
  return {State::kAbsent, "not an x86_64 kernel"};
#endif
}

Finding X32Abi() {
#if defined(__x86_64__)
  ChildOutcome o = TryX32();
  if (o.answered && o.answer.failed_step >= 0 && o.answer.err == ENOSYS && Unfiltered()) {
    return {State::kAbsent,
            "x32 getpid failed with ENOSYS: the kernel has no x32 ABI (CONFIG_X86_X32_ABI is off, "
            "or the ABI is disabled)"};
  }
  return FromCall("x32 getpid", o);
#else
  return {State::kAbsent, "not an x86_64 kernel"};
#endif
}

std::string OtherAbiVerdict(Abi abi) {
#if defined(__x86_64__)
  ChildOutcome o = abi == Abi::kI386 ? TryI386() : TryX32();
  if (Faulted(o)) return "SIGSEGV";
  if (!o.answered) return "no answer";
  if (o.answer.failed_step < 0) return "ran";
  const char* name = ::strerrorname_np(o.answer.err);
  return name != nullptr ? name : "errno " + std::to_string(o.answer.err);
#else
  (void)abi;
  return "not x86_64";
#endif
}

Finding UserNamespace(std::optional<uid_t> as_uid) {
  NamespaceProbe p{as_uid, /*user_ns=*/true, /*overlay=*/false};
  return p.Probe("created a user and a mount namespace, mapped its ids and mounted a tmpfs inside");
}

Finding OverlayRoot(std::optional<uid_t> as_uid) {
  bool user_ns = as_uid.has_value() || ::geteuid() != 0;
  NamespaceProbe p{as_uid, user_ns, /*overlay=*/true};
  return p.Probe(std::string("mounted an overlay with its upper layer on tmpfs") +
                 (user_ns ? " in a user namespace (userxattr)" : ""));
}

std::optional<int> OwnSeccompMode() {
  auto status = ReadFile("/proc/self/status");
  if (!status) return std::nullopt;
  std::istringstream in(*status);
  for (std::string line; std::getline(in, line);) {
    if (!StartsWith(line, "Seccomp:")) continue;
    auto mode = ParseUint(Trim(line.substr(8)), "Seccomp");
    if (mode) return static_cast<int>(*mode);
  }
  return std::nullopt;
}

Finding SeccompFilter() {
  ChildOutcome o = InChild([] {
    Answer a;
    sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    sock_fprog prog{1, allow};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
      a.failed_step = 0;
      a.err = errno;
    }
    return a;
  });
  if (o.answered && o.answer.failed_step >= 0 && o.answer.err == EINVAL) {
    return {State::kAbsent,
            "seccomp(SECCOMP_SET_MODE_FILTER): Invalid argument (CONFIG_SECCOMP_FILTER is off)"};
  }
  return FromCall("installing a seccomp filter", o);
}

Finding SeccompNotify() {
  uint32_t action = SECCOMP_RET_USER_NOTIF;
  if (::syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0) {
    return {State::kPresent, "SECCOMP_GET_ACTION_AVAIL(SECCOMP_RET_USER_NOTIF) said yes"};
  }
  int err = errno;
  if (err == EOPNOTSUPP) {
    return {State::kAbsent, "the kernel has no SECCOMP_RET_USER_NOTIF (it came in Linux 5.0)"};
  }
  return RefusedOrUnknown(std::string("SECCOMP_GET_ACTION_AVAIL: ") + strerror(err));
}

Finding Landlock() {
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi > 0) return {State::kPresent, "ABI version " + std::to_string(abi)};
  int err = errno;
  if (err == EOPNOTSUPP) {
    return {State::kAbsent,
            "built into the kernel but not enabled at boot (add landlock to the lsm= list)"};
  }
  if (err == ENOSYS && Unfiltered()) {
    return {State::kAbsent, "not in this kernel (CONFIG_SECURITY_LANDLOCK)"};
  }
  return RefusedOrUnknown(std::string("landlock_create_ruleset: ") + strerror(err));
}

Finding IoUring() {
  ChildOutcome o = InChild([] {
    Answer a;
    char params[120] = {};  // struct io_uring_params, zeroed
    if (::syscall(SYS_io_uring_setup, 1, params) < 0) {
      a.failed_step = 0;
      a.err = errno;
    }
    return a;
  });
  Finding f = FromCall("io_uring_setup(1)", o);
  if (auto knob = Sysctl("kernel.io_uring_disabled"); knob && *knob != "0" && !f.present()) {
    f.detail += " (kernel.io_uring_disabled=" + *knob + ")";
  }
  return f;
}

Finding Userfaultfd() {
  ChildOutcome o = InChild([] {
    Answer a;
    constexpr int kUserModeOnly = 1;  // UFFD_USER_MODE_ONLY
    if (::syscall(SYS_userfaultfd, O_CLOEXEC | kUserModeOnly) < 0) {
      a.failed_step = 0;
      a.err = errno;
    }
    return a;
  });
  Finding f = FromCall("userfaultfd(UFFD_USER_MODE_ONLY)", o);
  if (auto knob = Sysctl("vm.unprivileged_userfaultfd"); knob && *knob == "0" && !f.present()) {
    f.detail += " (vm.unprivileged_userfaultfd=0)";
  }
  return f;
}

Finding Mseal() {
#if defined(__x86_64__) || defined(__aarch64__)
  constexpr long kMseal = 462;  // the same number on every architecture
  ChildOutcome o = InChild([] {
    Answer a;
    if (::syscall(kMseal, 0, 0, 0) != 0) {  // an empty range: a no-op
      a.failed_step = 0;
      a.err = errno;
    }
    return a;
  });
  return FromCall("mseal(0, 0, 0)", o);
#else
  return {State::kUnknown, "mseal's number is not known here"};
#endif
}

std::optional<std::string> Sysctl(const std::string& name) {
  std::string path = "/proc/sys/" + name;
  for (char& c : path) {
    if (c == '.') c = '/';
  }
  auto text = ReadFile(path);
  if (!text) return std::nullopt;
  return std::string(Trim(*text));
}

std::vector<std::string> Lsms() {
  auto text = ReadFile("/sys/kernel/security/lsm");
  if (!text) return {};
  std::vector<std::string> out;
  for (const std::string& s : Split(Trim(*text), ',')) {
    if (!s.empty()) out.push_back(s);
  }
  return out;
}

}  // namespace kiln::sandbox::probe
