// Seccomp for the sandbox: a readable policy file (sandbox/seccomp/default.policy
// is the built-in one) parsed into rules, compiled by libseccomp into a BPF
// program in the supervisor before the sandbox is cloned, and installed by the
// sandboxed process as the very last step before execve.
//
// Verdicts: a system call the policy allows runs; a call libseccomp knows that
// the policy does not allow fails with EPERM (a "denial"); a call libseccomp
// does not know (a future one) fails with ENOSYS; a call from another ABI
// (i386, x32) fails with EPERM. Denials can be routed to the supervisor through
// a user-notification listener so that they are counted and, with
// --seccomp-log, printed; the supervisor always answers EPERM.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace kiln::sandbox::seccomp {

// One comparison on a system call argument. Value and mask are 64-bit.
struct ArgCheck {
  enum class Op { kEq, kNe, kLt, kLe, kGt, kGe, kMaskedEq };
  unsigned arg = 0;  // 0..5
  Op op = Op::kEq;
  uint64_t value = 0;
  uint64_t mask = 0;  // only for kMaskedEq: (arg & mask) == value
};

// One line of a policy: an action for a system call, optionally only when all
// argument checks hold. Several rules for one call are alternatives.
struct Rule {
  enum class Action { kAllow, kErrno };
  Action action = Action::kAllow;
  int errno_value = 0;  // for kErrno
  std::string syscall;  // name as libseccomp knows it
  std::vector<ArgCheck> checks;
  int line = 0;  // line in the policy file, for messages
};

struct Policy {
  std::string source;  // file name, for messages
  std::vector<Rule> rules;
};

// Parses policy text (format: docs/seccomp.md). Errors read
// "<source>:<line>: <what is wrong>". System call names are resolved for the
// native architecture; a name suffixed with '?' is skipped where it does not
// exist instead of being an error.
Result<Policy> ParsePolicy(std::string_view text, std::string_view source);
Result<Policy> LoadPolicyFile(const std::string& path);
// The built-in policy (sandbox/seccomp/default.policy, compiled in).
Result<Policy> DefaultPolicy();
// One rule in policy syntax, with numbers in hex: "allow clone arg0 &0x7e020080 == 0x0".
std::string FormatRule(const Rule& rule);

struct CompileOptions {
  // Route denials (calls answered EPERM, including calls from another ABI)
  // through a user-notification listener instead of failing them in the
  // kernel. The listener must then stay open and be answered (AnswerDenial)
  // for as long as the sandbox runs: with no listener left, the kernel fails
  // those calls with ENOSYS instead of EPERM.
  bool notify_denials = false;
};

// A compiled filter: a classic BPF program ready for seccomp(2).
struct Program {
  std::vector<sock_filter> filter;
  bool has_listener = false;
};

Result<Program> Compile(const Policy& policy, const CompileOptions& options);

// Installs the program on the calling thread with SECCOMP_SET_MODE_FILTER.
// no_new_privs must already be set. Returns the listener fd (close-on-exec)
// when the program routes denials, an invalid fd otherwise. Safe between fork
// and exec: it allocates nothing unless it fails (to build the message).
Result<UniqueFd> Install(const Program& program);
// The same for a child that cannot afford even that: returns 0 and sets
// *listener_fd (-1 without a listener), or returns the errno. Async-signal-safe.
int InstallRaw(const Program& program, int* listener_fd) noexcept;

// One denied call, as the supervisor saw it.
struct Denial {
  int pid = 0;          // in the supervisor's pid namespace
  std::string syscall;  // name, or "syscall_<nr>" when unknown
  uint64_t args[6] = {};
  std::string abi;  // "" for the native ABI, else the one the call came through: "i386", "x32"
};

// Receives one notification from the listener, answers it with EPERM and
// returns what was denied. Blocks until a notification arrives (the kernel
// ignores O_NONBLOCK here): poll the fd for POLLIN first; POLLHUP means no
// task uses the filter any more. ENOENT from the kernel (the caller died
// first) is reported as an error with that errno; the caller just continues.
// EINTR is returned as well, for the caller to retry or stop.
Result<Denial> AnswerDenial(int listener_fd);

}  // namespace kiln::sandbox::seccomp
