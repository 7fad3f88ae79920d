// The seccomp policy file format: a line-based allowlist parsed into Rules.
// docs/seccomp.md is the reference for the syntax; this parser is the
// authority. Every error names "<source>:<line>:" so that a policy author can
// jump to the line, and everything that libseccomp would otherwise reject
// late, or accept with a surprising meaning, is rejected here.

#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>
#include <optional>
#include <span>
#include <utility>

#include "sandbox/seccomp.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace kiln::embedded {
std::string_view default_policy();  // generated from sandbox/seccomp/default.policy
}  // namespace kiln::embedded

namespace kiln::sandbox::seccomp {

namespace {

struct Named {
  std::string_view name;
  uint64_t value;
};

// clang-format off
#define KILN_NAMED(x) {#x, static_cast<uint64_t>(x)}
// clang-format on

// The symbolic values a policy may compare arguments with. Only what a policy
// plausibly needs: namespace and thread flags for clone, address families for
// socket, the terminal ioctls, and personalities.
constexpr Named kConstants[] = {
    KILN_NAMED(CLONE_VM),
    KILN_NAMED(CLONE_FS),
    KILN_NAMED(CLONE_FILES),
    KILN_NAMED(CLONE_SIGHAND),
    KILN_NAMED(CLONE_PIDFD),
    KILN_NAMED(CLONE_PTRACE),
    KILN_NAMED(CLONE_VFORK),
    KILN_NAMED(CLONE_PARENT),
    KILN_NAMED(CLONE_THREAD),
    KILN_NAMED(CLONE_NEWNS),
    KILN_NAMED(CLONE_SYSVSEM),
    KILN_NAMED(CLONE_SETTLS),
    KILN_NAMED(CLONE_PARENT_SETTID),
    KILN_NAMED(CLONE_CHILD_CLEARTID),
    KILN_NAMED(CLONE_UNTRACED),
    KILN_NAMED(CLONE_CHILD_SETTID),
    KILN_NAMED(CLONE_NEWCGROUP),
    KILN_NAMED(CLONE_NEWUTS),
    KILN_NAMED(CLONE_NEWIPC),
    KILN_NAMED(CLONE_NEWUSER),
    KILN_NAMED(CLONE_NEWPID),
    KILN_NAMED(CLONE_NEWNET),
    KILN_NAMED(CLONE_IO),
    KILN_NAMED(CLONE_NEWTIME),
    KILN_NAMED(AF_UNSPEC),
    KILN_NAMED(AF_UNIX),
    KILN_NAMED(AF_LOCAL),
    KILN_NAMED(AF_INET),
    KILN_NAMED(AF_INET6),
    KILN_NAMED(AF_NETLINK),
    KILN_NAMED(AF_PACKET),
    KILN_NAMED(AF_KEY),
    KILN_NAMED(AF_ALG),
    KILN_NAMED(SOCK_STREAM),
    KILN_NAMED(SOCK_DGRAM),
    KILN_NAMED(SOCK_RAW),
    KILN_NAMED(SOCK_SEQPACKET),
    KILN_NAMED(SOCK_PACKET),
    KILN_NAMED(AF_VSOCK),
    KILN_NAMED(AF_BLUETOOTH),
    KILN_NAMED(AF_CAN),
    KILN_NAMED(AF_XDP),
    KILN_NAMED(TIOCSTI),
    KILN_NAMED(TIOCLINUX),
    KILN_NAMED(PER_LINUX),
    KILN_NAMED(PER_LINUX32),
    KILN_NAMED(PER_BSD),
    KILN_NAMED(UNAME26),
    KILN_NAMED(ADDR_NO_RANDOMIZE),
    KILN_NAMED(READ_IMPLIES_EXEC),
    KILN_NAMED(ADDR_LIMIT_32BIT),
};

// The errno values an `errno` rule may name; a number 1..4095 works too.
constexpr Named kErrnos[] = {
    KILN_NAMED(EPERM),        KILN_NAMED(ENOENT),        KILN_NAMED(ESRCH),
    KILN_NAMED(EINTR),        KILN_NAMED(EIO),           KILN_NAMED(ENXIO),
    KILN_NAMED(E2BIG),        KILN_NAMED(EBADF),         KILN_NAMED(EAGAIN),
    KILN_NAMED(ENOMEM),       KILN_NAMED(EACCES),        KILN_NAMED(EFAULT),
    KILN_NAMED(EBUSY),        KILN_NAMED(EEXIST),        KILN_NAMED(ENODEV),
    KILN_NAMED(EINVAL),       KILN_NAMED(ENOTTY),        KILN_NAMED(ENOSPC),
    KILN_NAMED(EROFS),        KILN_NAMED(ENOSYS),        KILN_NAMED(EOPNOTSUPP),
    KILN_NAMED(ENOTSUP),      KILN_NAMED(EAFNOSUPPORT),  KILN_NAMED(EPROTONOSUPPORT),
    KILN_NAMED(ENOTSOCK),     KILN_NAMED(EADDRNOTAVAIL), KILN_NAMED(ENETUNREACH),
    KILN_NAMED(ECONNREFUSED),
};

#undef KILN_NAMED

constexpr int kMaxErrno = 4095;  // what SECCOMP_RET_DATA can carry as a negative return

std::optional<uint64_t> Lookup(std::span<const Named> table, std::string_view name) {
  for (const Named& n : table) {
    if (n.name == name) return n.value;
  }
  return std::nullopt;
}

std::string Hex(uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, 16);
  (void)ec;
  return "0x" + std::string(buf, end);
}

const char* OpText(ArgCheck::Op op) {
  switch (op) {
    case ArgCheck::Op::kEq:
    case ArgCheck::Op::kMaskedEq:
      return "==";
    case ArgCheck::Op::kNe:
      return "!=";
    case ArgCheck::Op::kLt:
      return "<";
    case ArgCheck::Op::kLe:
      return "<=";
    case ArgCheck::Op::kGt:
      return ">";
    case ArgCheck::Op::kGe:
      return ">=";
  }
  return "?";
}

std::optional<ArgCheck::Op> ParseOp(std::string_view t) {
  if (t == "==") return ArgCheck::Op::kEq;
  if (t == "!=") return ArgCheck::Op::kNe;
  if (t == "<") return ArgCheck::Op::kLt;
  if (t == "<=") return ArgCheck::Op::kLe;
  if (t == ">") return ArgCheck::Op::kGt;
  if (t == ">=") return ArgCheck::Op::kGe;
  return std::nullopt;
}

bool IsSyscallNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool SameChecks(const Rule& a, const Rule& b) {
  if (a.checks.size() != b.checks.size()) return false;
  for (size_t i = 0; i < a.checks.size(); ++i) {
    const ArgCheck& x = a.checks[i];
    const ArgCheck& y = b.checks[i];
    if (x.arg != y.arg || x.op != y.op || x.value != y.value || x.mask != y.mask) return false;
  }
  return true;
}

bool SameAction(const Rule& a, const Rule& b) {
  return a.action == b.action &&
         (a.action == Rule::Action::kAllow || a.errno_value == b.errno_value);
}

// Parses one line. Holds the line's position so that every error carries it.
class LineParser {
 public:
  LineParser(std::string_view source, int line, std::vector<std::string_view> tokens)
      : source_(source), line_(line), tokens_(std::move(tokens)) {}

  // Appends the line's rules (one per system call) to out.
  Status Parse(std::vector<Rule>& out) {
    Rule proto;
    proto.line = line_;
    std::string_view action = Next();
    if (action == "allow") {
      proto.action = Rule::Action::kAllow;
    } else if (action == "errno") {
      proto.action = Rule::Action::kErrno;
      std::string_view e = Next();
      if (e.empty()) return Fail("'errno' needs an error name such as EPERM or ENOSYS");
      KILN_ASSIGN_OR_RETURN(proto.errno_value, ParseErrno(e));
    } else {
      return Fail(Quote(action) + " is not an action (expected 'allow' or 'errno')");
    }

    std::vector<std::pair<std::string_view, bool>> names;  // name, optional
    while (!AtEnd() && !Peek().starts_with("arg")) {
      std::string_view t = Next();
      bool optional = t.ends_with('?');
      std::string_view name = optional ? t.substr(0, t.size() - 1) : t;
      if (name.empty() || !std::all_of(name.begin(), name.end(), IsSyscallNameChar)) {
        return Fail(Quote(t) + " is not a system call name (conditions start with arg0..arg5)");
      }
      names.emplace_back(name, optional);
    }
    if (names.empty()) return Fail(Quote(action) + " names no system call");

    while (!AtEnd()) {
      KILN_ASSIGN_OR_RETURN(ArgCheck check, ParseCheck());
      for (const ArgCheck& c : proto.checks) {
        if (c.arg == check.arg) {
          return Fail("arg" + std::to_string(check.arg) +
                      " is compared twice; libseccomp takes one comparison per argument "
                      "and line (write alternatives on separate lines)");
        }
      }
      proto.checks.push_back(check);
    }
    std::sort(proto.checks.begin(), proto.checks.end(),
              [](const ArgCheck& a, const ArgCheck& b) { return a.arg < b.arg; });

    const uint32_t arch = seccomp_arch_native();
    for (auto [name, optional] : names) {
      std::string n(name);
      int nr = seccomp_syscall_resolve_name_arch(arch, n.c_str());
      if (nr < 0) {
        if (optional) continue;
        if (nr == __NR_SCMP_ERROR) {
          return Fail("unknown system call " + Quote(name) +
                      " (libseccomp does not know it; add '?' if that is expected)");
        }
        return Fail("system call " + Quote(name) +
                    " does not exist on this architecture (add '?' to skip it here)");
      }
      Rule r = proto;
      r.syscall = std::move(n);
      out.push_back(std::move(r));
    }
    return Ok();
  }

  Error Fail(std::string_view what) const {
    return Error::Invalid(std::string(source_) + ":" + std::to_string(line_) + ": " +
                          std::string(what));
  }

 private:
  bool AtEnd() const { return pos_ >= tokens_.size(); }
  std::string_view Peek() const { return AtEnd() ? std::string_view() : tokens_[pos_]; }
  std::string_view Next() { return AtEnd() ? std::string_view() : tokens_[pos_++]; }

  Result<int> ParseErrno(std::string_view t) {
    if (auto v = Lookup(kErrnos, t)) return static_cast<int>(*v);
    if (!t.empty() && t[0] >= '0' && t[0] <= '9') {
      KILN_ASSIGN_OR_RETURN(uint64_t v, ParseNumber(t));
      if (v < 1 || v > kMaxErrno) {
        return Fail("errno " + std::string(t) + " is out of range (1.." +
                    std::to_string(kMaxErrno) + ")");
      }
      return static_cast<int>(v);
    }
    return Fail("unknown errno name " + Quote(t));
  }

  Result<uint64_t> ParseNumber(std::string_view t) {
    int base = 10;
    std::string_view digits = t;
    if (t.starts_with("0x") || t.starts_with("0X")) {
      base = 16;
      digits.remove_prefix(2);
    }
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
    if (digits.empty() || ptr != digits.data() + digits.size()) {
      return Fail("malformed number " + Quote(t));
    }
    if (ec == std::errc::result_out_of_range) {
      return Fail("number " + Quote(t) + " does not fit in 64 bits");
    }
    if (ec != std::errc()) return Fail("malformed number " + Quote(t));
    return v;
  }

  // A value: numbers and constants joined by '|', e.g. CLONE_NEWNS|CLONE_NEWUSER or 0x10.
  Result<uint64_t> ParseValue(std::string_view t) {
    if (t.empty()) return Fail("a condition is missing its value");
    uint64_t v = 0;
    size_t start = 0;
    for (;;) {
      size_t bar = t.find('|', start);
      std::string_view term = t.substr(start, bar == std::string_view::npos ? bar : bar - start);
      if (term.empty()) return Fail("malformed value " + Quote(t) + " (empty term around '|')");
      if ((term[0] >= '0' && term[0] <= '9') || term[0] == '-' || term[0] == '+') {
        KILN_ASSIGN_OR_RETURN(uint64_t n, ParseNumber(term));
        v |= n;
      } else if (auto c = Lookup(kConstants, term)) {
        v |= *c;
      } else {
        return Fail("unknown constant " + Quote(term));
      }
      if (bar == std::string_view::npos) break;
      start = bar + 1;
    }
    return v;
  }

  // argN OP VALUE, or argN &MASK == VALUE (the mask may also be a separate token).
  Result<ArgCheck> ParseCheck() {
    std::string_view a = Next();
    if (!a.starts_with("arg")) {
      return Fail("unexpected " + Quote(a) +
                  " after a condition (conditions start with arg0..arg5)");
    }
    std::string_view index = a.substr(3);
    if (index.empty() ||
        !std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Fail(Quote(a) + " is not an argument (expected arg0..arg5)");
    }
    if (index.size() > 1 || index[0] > '5') {
      return Fail("argument index " + std::string(index) +
                  " is out of range (system calls have arguments arg0..arg5)");
    }
    ArgCheck check;
    check.arg = static_cast<unsigned>(index[0] - '0');

    std::string_view t = Next();
    if (t.starts_with('&')) {
      std::string_view mask_text = t.substr(1);
      if (mask_text.empty()) mask_text = Next();
      if (mask_text.empty() || ParseOp(mask_text)) {
        return Fail("'&' after " + Quote(a) + " is missing its mask");
      }
      KILN_ASSIGN_OR_RETURN(check.mask, ParseValue(mask_text));
      std::string_view op = Next();
      if (op != "==") {
        return Fail("a masked comparison takes '==' only, found " +
                    (op.empty() ? std::string("nothing") : Quote(op)));
      }
      check.op = ArgCheck::Op::kMaskedEq;
      KILN_ASSIGN_OR_RETURN(check.value, ParseValue(Next()));
      if (check.mask == 0) {
        return Fail("a zero mask makes the comparison always true; drop the condition");
      }
      if ((check.value & ~check.mask) != 0) {
        return Fail("value " + Hex(check.value) + " has bits outside the mask " + Hex(check.mask) +
                    ", so the comparison can never hold");
      }
      return check;
    }
    auto op = ParseOp(t);
    if (!op) {
      return Fail("expected an operator (== != < <= > >= or &MASK ==) after " + Quote(a) +
                  (t.empty() ? std::string(", found nothing") : ", found " + Quote(t)));
    }
    check.op = *op;
    KILN_ASSIGN_OR_RETURN(check.value, ParseValue(Next()));
    return check;
  }

  std::string_view source_;
  int line_;
  std::vector<std::string_view> tokens_;
  size_t pos_ = 0;
};

std::vector<std::string_view> Tokenize(std::string_view line) {
  std::vector<std::string_view> tokens;
  size_t i = 0;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
  while (i < line.size()) {
    while (i < line.size() && space(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !space(line[i])) ++i;
    if (i > start) tokens.push_back(line.substr(start, i - start));
  }
  return tokens;
}

// Rejects rules that libseccomp would silently drop or that contradict each
// other: the filter would then not say what the file says.
Status CheckAgainst(const Rule& r, const Rule& earlier, const LineParser& at) {
  std::string other = "line " + std::to_string(earlier.line);
  if (SameChecks(r, earlier)) {
    if (SameAction(r, earlier)) {
      return at.Fail("repeats the rule for " + Quote(r.syscall) + " at " + other);
    }
    return at.Fail("contradicts " + other + ", which has the same conditions for " +
                   Quote(r.syscall) + " but another action");
  }
  bool r_all = r.checks.empty();
  bool e_all = earlier.checks.empty();
  if ((r_all && r.action == Rule::Action::kErrno) ||
      (e_all && earlier.action == Rule::Action::kErrno)) {
    return at.Fail("contradicts " + other + ": an unconditional errno rule for " +
                   Quote(r.syscall) + " leaves no room for other rules");
  }
  if (r.action == Rule::Action::kAllow && earlier.action == Rule::Action::kAllow &&
      (r_all || e_all)) {
    return at.Fail("is redundant with " + other + ": one of the two already allows every " +
                   Quote(r.syscall) + " call");
  }
  return Ok();
}

}  // namespace

std::string FormatRule(const Rule& rule) {
  std::string out = rule.action == Rule::Action::kAllow ? "allow" : "errno ";
  if (rule.action == Rule::Action::kErrno) {
    std::string name = std::to_string(rule.errno_value);
    for (const Named& n : kErrnos) {
      if (n.value == static_cast<uint64_t>(rule.errno_value)) {
        name = std::string(n.name);
        break;
      }
    }
    out += name;
  }
  out += " " + rule.syscall;
  for (const ArgCheck& c : rule.checks) {
    out += " arg" + std::to_string(c.arg);
    if (c.op == ArgCheck::Op::kMaskedEq) out += " &" + Hex(c.mask);
    out += std::string(" ") + OpText(c.op) + " " + Hex(c.value);
  }
  return out;
}

Result<Policy> ParsePolicy(std::string_view text, std::string_view source) {
  Policy policy;
  policy.source = std::string(source);
  std::map<std::string, std::vector<size_t>, std::less<>> by_syscall;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string_view> tokens = Tokenize(line);
    if (tokens.empty()) continue;

    LineParser parser(source, line_no, std::move(tokens));
    size_t first_new = policy.rules.size();
    KILN_TRY(parser.Parse(policy.rules));
    for (size_t i = first_new; i < policy.rules.size(); ++i) {
      const Rule& r = policy.rules[i];
      std::vector<size_t>& same = by_syscall[r.syscall];
      for (size_t j : same) KILN_TRY(CheckAgainst(r, policy.rules[j], parser));
      same.push_back(i);
    }
  }
  return policy;
}

Result<Policy> LoadPolicyFile(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.error().Wrap("loading seccomp policy");
  return ParsePolicy(*text, path);
}

Result<Policy> DefaultPolicy() {
  auto policy = ParsePolicy(embedded::default_policy(), "default.policy");
  if (!policy.ok()) return policy.error().Wrap("built-in seccomp policy");
  return policy;
}

}  // namespace kiln::sandbox::seccomp
