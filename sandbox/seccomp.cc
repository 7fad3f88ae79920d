// Compiles a Policy into one classic BPF program, installs it, and answers
// denials routed to a user-notification listener.
//
// libseccomp has no notion of a per-system-call fallback: when none of the
// conditional rules of a call match, the filter's default action applies, and
// an unconditional rule silently replaces every conditional rule of the same
// call whatever their actions (both checked against 2.5.4). Neither fits a
// policy whose unmatched calls must fail with EPERM while unknown calls fail
// with ENOSYS, or one that allows ioctl but denies two of its commands. So the
// program is three filters run one after the other:
//
//   1. deny:    the policy's errno rules; anything else goes on to 2.
//   2. allow:   the policy's allow rules; anything else goes on to 3.
//   3. verdict: EPERM (or NOTIFY) for every call libseccomp knows on this
//               architecture, ENOSYS for the rest (VerdictFilter: ranges of
//               call numbers, which libseccomp has no rule for).
//
// 1 and 2 are libseccomp's. "Goes on" is a default action no policy uses
// (SCMP_ACT_TRACE with a marker), whose return instructions are rewritten
// into forward jumps to the next filter. Each filter starts by loading what it tests from
// seccomp_data, so none depends on the state another leaves behind. Within one filter every rule
// has the same kind of action, so libseccomp's ordering of overlapping rules cannot change a
// verdict.

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "sandbox/seccomp.h"

namespace kiln::sandbox::seccomp {

namespace {

// The "go on to the next filter" markers. A sandbox has no tracer, so no
// policy has a use for SCMP_ACT_TRACE and the markers cannot collide.
constexpr uint32_t kToAllowFilter = SCMP_ACT_TRACE(0x6b01);
constexpr uint32_t kToVerdictFilter = SCMP_ACT_TRACE(0x6b02);

// Highest system call number probed for the verdict filter. x86_64 stops near
// 460; MIPS numbers its ABIs from 4000, 5000 and 6000.
constexpr int kSyscallProbeLimit = 8192;

// The x32 ABI marks its calls with this bit on an x86_64 filter.
constexpr uint32_t kX32SyscallBit = 0x40000000;

constexpr int kMaxErrno = 4095;

struct ReleaseFilter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using FilterCtx = std::unique_ptr<void, ReleaseFilter>;

std::string LineOf(const Policy& policy, const Rule& rule) {
  return policy.source + ":" + std::to_string(rule.line) + ": ";
}

Result<FilterCtx> NewFilter(uint32_t default_action, uint32_t badarch_action,
                            std::string_view which) {
  FilterCtx ctx(seccomp_init(default_action));
  if (!ctx) return Error::Internal("seccomp_init(" + std::string(which) + " filter) failed");
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, badarch_action); rc < 0) {
    return Error::Sys("seccomp_attr_set(SCMP_FLTATR_ACT_BADARCH)", -rc);
  }
  // A binary search over system call numbers rather than a linear scan: the
  // allow filter runs on every call the sandbox makes.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2); rc < 0) {
    return Error::Sys("seccomp_attr_set(SCMP_FLTATR_CTL_OPTIMIZE, 2)", -rc);
  }
  return ctx;
}

scmp_compare ToScmp(ArgCheck::Op op) {
  switch (op) {
    case ArgCheck::Op::kEq:
      return SCMP_CMP_EQ;
    case ArgCheck::Op::kNe:
      return SCMP_CMP_NE;
    case ArgCheck::Op::kLt:
      return SCMP_CMP_LT;
    case ArgCheck::Op::kLe:
      return SCMP_CMP_LE;
    case ArgCheck::Op::kGt:
      return SCMP_CMP_GT;
    case ArgCheck::Op::kGe:
      return SCMP_CMP_GE;
    case ArgCheck::Op::kMaskedEq:
      return SCMP_CMP_MASKED_EQ;
  }
  return _SCMP_CMP_MIN;
}

Status AddRule(scmp_filter_ctx ctx, const Policy& policy, const Rule& rule, uint32_t action) {
  int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, rule.syscall.c_str());
  if (nr < 0) {
    return Error::Invalid(LineOf(policy, rule) + "unknown system call " + Quote(rule.syscall) +
                          " on this architecture");
  }
  std::vector<scmp_arg_cmp> cmps;
  for (const ArgCheck& c : rule.checks) {
    if (c.arg > 5) {
      return Error::Invalid(LineOf(policy, rule) + "argument index " + std::to_string(c.arg) +
                            " is out of range (arg0..arg5)");
    }
    scmp_arg_cmp cmp{};
    cmp.arg = c.arg;
    cmp.op = ToScmp(c.op);
    if (c.op == ArgCheck::Op::kMaskedEq) {
      cmp.datum_a = c.mask;
      cmp.datum_b = c.value;
    } else {
      cmp.datum_a = c.value;
    }
    cmps.push_back(cmp);
  }
  int rc = seccomp_rule_add_exact_array(ctx, action, nr, static_cast<unsigned>(cmps.size()),
                                        cmps.data());
  if (rc < 0) {
    return Error::Sys(LineOf(policy, rule) + "seccomp_rule_add(" + Quote(FormatRule(rule)) + ")",
                      -rc);
  }
  return Ok();
}

Result<std::vector<sock_filter>> Export(scmp_filter_ctx ctx, std::string_view which) {
  UniqueFd fd(memfd_create("kiln-seccomp-bpf", MFD_CLOEXEC));
  if (!fd.valid()) return Error::Sys("memfd_create('kiln-seccomp-bpf')", errno);
  if (int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0) {
    return Error::Sys("seccomp_export_bpf(" + std::string(which) + " filter)", -rc);
  }
  off_t size = lseek(fd.get(), 0, SEEK_CUR);
  if (size < 0) return Error::Sys("lseek(memfd)", errno);
  if (size == 0 || size % sizeof(sock_filter) != 0) {
    return Error::Internal("seccomp_export_bpf(" + std::string(which) + " filter) wrote " +
                           std::to_string(size) + " bytes, not a whole number of instructions");
  }
  std::vector<sock_filter> out(static_cast<size_t>(size) / sizeof(sock_filter));
  char* p = reinterpret_cast<char*>(out.data());
  size_t done = 0;
  while (done < static_cast<size_t>(size)) {
    ssize_t n =
        pread(fd.get(), p + done, static_cast<size_t>(size) - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Sys("pread(memfd)", errno);
    if (n == 0) return Error::Internal("memfd shrank while reading the exported filter");
    done += static_cast<size_t>(n);
  }
  return out;
}

bool IsReturnOf(const sock_filter& insn, uint32_t action) {
  return insn.code == (BPF_RET | BPF_K) && insn.k == action;
}

// Rewrites every "return marker" of a filter into a jump to the instruction
// just past its end, where the next filter will be appended.
Status JumpToEnd(std::vector<sock_filter>& filter, uint32_t marker, std::string_view which) {
  size_t rewritten = 0;
  for (size_t i = 0; i < filter.size(); ++i) {
    if (!IsReturnOf(filter[i], marker)) continue;
    filter[i] = BPF_STMT(BPF_JMP | BPF_JA, static_cast<uint32_t>(filter.size() - i - 1));
    ++rewritten;
  }
  if (rewritten == 0) {
    return Error::Internal("the " + std::string(which) +
                           " filter never falls through to the next one");
  }
  return Ok();
}

// For messages about calls of another ABI; "" for the native one.
std::string AbiName(uint32_t arch, uint32_t nr) {
  if (arch == SCMP_ARCH_X86_64 && (nr & kX32SyscallBit) != 0) return "x32";
  if (arch == seccomp_arch_native()) return "";
  switch (arch) {
    case SCMP_ARCH_X86:
      return "i386";
    case SCMP_ARCH_X32:
      return "x32";
    case SCMP_ARCH_ARM:
      return "arm";
    case SCMP_ARCH_AARCH64:
      return "aarch64";
    case SCMP_ARCH_X86_64:
      return "x86_64";
    default: {
      char buf[24];
      std::snprintf(buf, sizeof buf, "arch_0x%08x", arch);
      return buf;
    }
  }
}

std::string SyscallName(uint32_t arch, int nr) {
  uint32_t token = arch;
  if (arch == SCMP_ARCH_X86_64 && (static_cast<uint32_t>(nr) & kX32SyscallBit) != 0) {
    token = SCMP_ARCH_X32;
  }
  std::unique_ptr<char, decltype(&std::free)> name(seccomp_syscall_resolve_num_arch(token, nr),
                                                   &std::free);
  if (name) return name.get();
  return "syscall_" + std::to_string(nr);
}

// The verdict filter, written out as ranges of system call numbers: the
// calls libseccomp knows on this architecture are denied, every other number
// (newer calls, numbers no call has) fails with ENOSYS. libseccomp has no
// rule on the number itself, and a rule per known call made this filter
// half of the program (~470 instructions, checked and compiled by the kernel
// at every sandbox's start); the ranges take a few dozen. Calls of other ABIs
// never get here: the allow filter before this one sends another AUDIT_ARCH
// and x32 numbers to `deny` (libseccomp's architecture check); this filter
// checks the architecture again but not the x32 bit.
Result<std::vector<sock_filter>> VerdictFilter(uint32_t deny) {
  std::vector<std::pair<uint32_t, uint32_t>> known;  // inclusive ranges, ascending
  for (int nr = 0; nr < kSyscallProbeLimit; ++nr) {
    std::unique_ptr<char, decltype(&std::free)> name(
        seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr), &std::free);
    if (!name) continue;
    auto n = static_cast<uint32_t>(nr);
    if (!known.empty() && known.back().second + 1 == n) {
      known.back().second = n;
    } else {
      known.emplace_back(n, n);
    }
  }
  // Two tests per range, then the two returns: every jump must reach them
  // within the 8-bit offset of a conditional jump.
  const size_t tests = 2 * known.size();
  if (known.empty()) return Error::Internal("libseccomp names no system call on this architecture");
  if (tests + 4 > 255) {
    return Error::Internal("the verdict filter needs " + std::to_string(known.size()) +
                           " ranges of system call numbers; it has room for at most 125");
  }
  std::vector<sock_filter> f;
  const size_t enosys = 3 + tests;  // index of `return ENOSYS`; `return deny` follows it
  auto to = [&](size_t target) { return static_cast<uint8_t>(target - f.size() - 1); };
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, seccomp_arch_native(), 0, to(enosys + 1)));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  for (auto [lo, hi] : known) {
    // Below this range (and above the previous one): no such call.
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, lo, 0, to(enosys)));
    // Within it: a known call. Above it: on to the next range.
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, hi, 0, to(enosys + 1)));
  }
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SCMP_ACT_ERRNO(ENOSYS)));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, deny));
  return f;
}

struct NotifSizes {
  size_t request = 0;
  size_t response = 0;
  int error = 0;
};

// The kernel's notification structs may be larger than the ones in our
// headers; it says how large, once.
const NotifSizes& GetNotifSizes() {
  static const NotifSizes sizes = [] {
    NotifSizes s;
    seccomp_notif_sizes k{};
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &k) != 0) {
      s.error = errno;
      return s;
    }
    s.request = std::max<size_t>(sizeof(seccomp_notif), k.seccomp_notif);
    s.response = std::max<size_t>(sizeof(seccomp_notif_resp), k.seccomp_notif_resp);
    return s;
  }();
  return sizes;
}

}  // namespace

Result<Program> Compile(const Policy& policy, const CompileOptions& options) {
  const uint32_t deny = options.notify_denials ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO(EPERM);
  auto wrap = [&](const Error& e) {
    return e.Wrap("compiling seccomp policy " + Quote(policy.source));
  };

  bool has_errno_rules = false;
  for (const Rule& r : policy.rules) {
    if (r.action != Rule::Action::kErrno) continue;
    if (r.errno_value < 1 || r.errno_value > kMaxErrno) {
      return wrap(Error::Invalid(LineOf(policy, r) + "errno " + std::to_string(r.errno_value) +
                                 " is out of range (1.." + std::to_string(kMaxErrno) + ")"));
    }
    has_errno_rules = true;
  }

  std::vector<sock_filter> program;
  if (has_errno_rules) {
    auto ctx = NewFilter(kToAllowFilter, deny, "deny");
    if (!ctx.ok()) return wrap(ctx.error());
    for (const Rule& r : policy.rules) {
      if (r.action != Rule::Action::kErrno) continue;
      // Every EPERM is a denial, so it is routed like one.
      uint32_t action = r.errno_value == EPERM ? deny : SCMP_ACT_ERRNO(r.errno_value);
      if (auto s = AddRule(ctx->get(), policy, r, action); !s) return wrap(s.error());
    }
    auto filter = Export(ctx->get(), "deny");
    if (!filter.ok()) return wrap(filter.error());
    if (auto s = JumpToEnd(*filter, kToAllowFilter, "deny"); !s) return wrap(s.error());
    program = std::move(*filter);
  }

  {
    auto ctx = NewFilter(kToVerdictFilter, deny, "allow");
    if (!ctx.ok()) return wrap(ctx.error());
    for (const Rule& r : policy.rules) {
      if (r.action != Rule::Action::kAllow) continue;
      if (auto s = AddRule(ctx->get(), policy, r, SCMP_ACT_ALLOW); !s) return wrap(s.error());
    }
    auto filter = Export(ctx->get(), "allow");
    if (!filter.ok()) return wrap(filter.error());
    if (auto s = JumpToEnd(*filter, kToVerdictFilter, "allow"); !s) return wrap(s.error());
    program.insert(program.end(), filter->begin(), filter->end());
  }

  {
    auto verdict = VerdictFilter(deny);
    if (!verdict.ok()) return wrap(verdict.error());
    program.insert(program.end(), verdict->begin(), verdict->end());
  }

  for (const sock_filter& insn : program) {
    if (IsReturnOf(insn, kToAllowFilter) || IsReturnOf(insn, kToVerdictFilter)) {
      return wrap(Error::Internal("a fall-through marker survived in the compiled program"));
    }
  }
  if (program.size() > BPF_MAXINSNS) {
    return wrap(Error::Invalid("the compiled filter has " + std::to_string(program.size()) +
                               " instructions; the kernel accepts at most " +
                               std::to_string(BPF_MAXINSNS)));
  }
  return Program{std::move(program), options.notify_denials};
}

int InstallRaw(const Program& program, int* listener_fd) noexcept {
  *listener_fd = -1;
  if (program.filter.empty() || program.filter.size() > BPF_MAXINSNS) return EINVAL;
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.filter.size());
  prog.filter = const_cast<sock_filter*>(program.filter.data());
  unsigned flags = program.has_listener ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
  long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (rc < 0) return errno;
  if (program.has_listener) *listener_fd = static_cast<int>(rc);
  return 0;
}

Result<UniqueFd> Install(const Program& program) {
  int fd = -1;
  int err = InstallRaw(program, &fd);
  if (err == 0) return UniqueFd(fd);
  std::string what = "seccomp(SECCOMP_SET_MODE_FILTER, " +
                     std::string(program.has_listener ? "SECCOMP_FILTER_FLAG_NEW_LISTENER" : "0") +
                     ", " + std::to_string(program.filter.size()) + " instructions)";
  if (err == EACCES) what += " without no_new_privs";
  if (err == EBUSY) what += " over a filter that already has a listener";
  return Error::Sys(what, err);
}

Result<Denial> AnswerDenial(int listener_fd) {
  const NotifSizes& sizes = GetNotifSizes();
  if (sizes.error != 0) return Error::Sys("seccomp(SECCOMP_GET_NOTIF_SIZES)", sizes.error);

  // Zeroed, as SECCOMP_IOCTL_NOTIF_RECV demands.
  std::vector<uint64_t> req_buf((sizes.request + 7) / 8, 0);
  auto* req = reinterpret_cast<seccomp_notif*>(req_buf.data());
  if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) {
    return Error::Sys("ioctl(" + std::to_string(listener_fd) + ", SECCOMP_IOCTL_NOTIF_RECV)",
                      errno);
  }

  Denial d;
  d.pid = static_cast<int>(req->pid);
  d.syscall = SyscallName(req->data.arch, req->data.nr);
  d.abi = AbiName(req->data.arch, static_cast<uint32_t>(req->data.nr));
  std::copy(std::begin(req->data.args), std::end(req->data.args), std::begin(d.args));

  std::vector<uint64_t> resp_buf((sizes.response + 7) / 8, 0);
  auto* resp = reinterpret_cast<seccomp_notif_resp*>(resp_buf.data());
  resp->id = req->id;
  resp->error = -EPERM;
  if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SEND, resp) != 0) {
    return Error::Sys("answering the denial of " + Quote(d.syscall) + " by pid " +
                          std::to_string(d.pid) + ": ioctl(SECCOMP_IOCTL_NOTIF_SEND)",
                      errno);
  }
  return d;
}

}  // namespace kiln::sandbox::seccomp
