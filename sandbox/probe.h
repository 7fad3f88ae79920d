// Host probes: what the running kernel, its configuration and its security
// modules give kiln. A probe establishes a feature by trying it, in a child
// process so that the caller is left as it was, and says how it knows:
// present and absent are what the kernel did ("int 0x80 raised SIGSEGV");
// unknown is what a probe says when something else stood in its way (a
// seccomp filter the caller already runs under, missing privileges).
//
// The test suites decide from these whether a kernel-dependent test can run
// on this host, and skip with the probe's own words when it cannot;
// `kiln sandbox check` reports them to whoever installs a runner host.
// Thread-safe: nothing is cached, and the children share nothing with the
// caller but a pipe.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace kiln::sandbox::probe {

// The unprivileged user probed for rootless kiln (and the suites' nobody).
constexpr uid_t kNobody = 65534;

enum class State { kPresent, kAbsent, kUnknown };
const char* Name(State s);  // "present", "absent", "unknown"

struct Finding {
  State state = State::kUnknown;
  std::string detail;  // what was tried and what the kernel answered
  bool present() const { return state == State::kPresent; }
  bool absent() const { return state == State::kAbsent; }
};

// --- system call ABIs besides the native one (absent on non-x86_64 hosts).
// The i386 entry point, `int 0x80`: absent when the kernel has no IA32
// emulation (the instruction then raises SIGSEGV).
Finding I386Abi();
// The x32 ABI: x86_64 entry with bit 30 of the number set (ENOSYS without it).
Finding X32Abi();
// What getpid through another ABI gets from here, raw: "ran", an errno name
// ("EPERM": a filter refused it; "ENOSYS"), or "SIGSEGV" (no such entry).
// Inside a sandbox it is the sandbox's filter that answers.
enum class Abi { kI386, kX32 };
std::string OtherAbiVerdict(Abi abi);

// --- namespaces and the root kiln builds.
// A user namespace its creator can use: created together with a mount
// namespace, ids mapped, a tmpfs mounted inside. `as_uid` (root only)
// probes as that unprivileged user; nullopt probes as the caller.
Finding UserNamespace(std::optional<uid_t> as_uid = std::nullopt);
// kiln's root filesystem: an overlay whose upper layer is on tmpfs, mounted
// in a fresh mount namespace; inside a user namespace (with userxattr) when
// probing as an unprivileged user, as kiln then does.
Finding OverlayRoot(std::optional<uid_t> as_uid = std::nullopt);

// --- seccomp and other kernel interfaces.
// The caller's own seccomp mode (/proc/self/status): 0 none, 1 strict,
// 2 filter; nullopt when the kernel does not say.
std::optional<int> OwnSeccompMode();
Finding SeccompFilter();  // a filter can be installed (tried in a child)
Finding SeccompNotify();  // SECCOMP_RET_USER_NOTIF is available
Finding Landlock();       // detail names the ABI version
Finding IoUring();        // io_uring_setup works for the caller
Finding Userfaultfd();    // userfaultfd(2) works for the caller
Finding Mseal();          // mseal(2) exists (Linux 6.10)

// --- what is read rather than tried.
// A sysctl by its dotted name ("user.max_user_namespaces"): the value without
// its newline, nullopt when this kernel has no such knob.
std::optional<std::string> Sysctl(const std::string& name);
// The active Linux security modules (/sys/kernel/security/lsm), in order.
std::vector<std::string> Lsms();

}  // namespace kiln::sandbox::probe
