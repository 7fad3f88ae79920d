// Tests of the seccomp policy parser: what a policy author writes and the
// exact message they get back when it is wrong.

#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "sandbox/seccomp.h"

namespace kiln::embedded {
std::string_view default_policy();
}  // namespace kiln::embedded

namespace kiln::sandbox::seccomp {
namespace {

std::string ErrorOf(std::string_view text) {
  auto p = ParsePolicy(text, "test.policy");
  if (p.ok()) return "(parsed without error)";
  return p.error().message();
}

TEST(SeccompPolicyTest, ParsesNamesCommentsAndBlankLines) {
  auto p = ParsePolicy(
      "# leading comment\n"
      "\n"
      "allow read write\t close   # trailing comment\r\n"
      "   \n"
      "errno ENOSYS clone3\n",
      "test.policy");
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->source, "test.policy");
  ASSERT_EQ(p->rules.size(), 4u);
  EXPECT_EQ(p->rules[0].syscall, "read");
  EXPECT_EQ(p->rules[1].syscall, "write");
  EXPECT_EQ(p->rules[2].syscall, "close");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(p->rules[i].action, Rule::Action::kAllow);
    EXPECT_EQ(p->rules[i].line, 3);
    EXPECT_TRUE(p->rules[i].checks.empty());
  }
  EXPECT_EQ(p->rules[3].action, Rule::Action::kErrno);
  EXPECT_EQ(p->rules[3].errno_value, ENOSYS);
  EXPECT_EQ(p->rules[3].syscall, "clone3");
  EXPECT_EQ(p->rules[3].line, 5);
}

TEST(SeccompPolicyTest, ParsesConditionsConstantsAndNumbers) {
  auto p = ParsePolicy(
      "allow clone arg0 &CLONE_NEWNS|CLONE_NEWUSER == 0\n"
      "errno EPERM ioctl arg1 & 0xffffffff == TIOCSTI\n"
      "allow socket arg0 == AF_INET arg2 != 17\n"
      "errno 13 getpriority arg1 < 10 arg0 >= 0x2\n"
      "allow setpriority arg2 <= 19 arg0 > 0\n",
      "test.policy");
  ASSERT_TRUE(p.ok()) << p.error().message();
  ASSERT_EQ(p->rules.size(), 5u);

  const Rule& clone = p->rules[0];
  ASSERT_EQ(clone.checks.size(), 1u);
  EXPECT_EQ(clone.checks[0].arg, 0u);
  EXPECT_EQ(clone.checks[0].op, ArgCheck::Op::kMaskedEq);
  EXPECT_EQ(clone.checks[0].mask, static_cast<uint64_t>(CLONE_NEWNS | CLONE_NEWUSER));
  EXPECT_EQ(clone.checks[0].value, 0u);

  const Rule& ioctl = p->rules[1];
  EXPECT_EQ(ioctl.action, Rule::Action::kErrno);
  EXPECT_EQ(ioctl.errno_value, EPERM);
  ASSERT_EQ(ioctl.checks.size(), 1u);
  EXPECT_EQ(ioctl.checks[0].arg, 1u);
  EXPECT_EQ(ioctl.checks[0].mask, 0xffffffffu);
  EXPECT_EQ(ioctl.checks[0].value, static_cast<uint64_t>(TIOCSTI));

  const Rule& socket = p->rules[2];
  ASSERT_EQ(socket.checks.size(), 2u);
  EXPECT_EQ(socket.checks[0].op, ArgCheck::Op::kEq);
  EXPECT_EQ(socket.checks[0].value, static_cast<uint64_t>(AF_INET));
  EXPECT_EQ(socket.checks[1].arg, 2u);
  EXPECT_EQ(socket.checks[1].op, ArgCheck::Op::kNe);
  EXPECT_EQ(socket.checks[1].value, 17u);

  // Checks come out ordered by argument whatever the order in the file.
  const Rule& prio = p->rules[3];
  EXPECT_EQ(prio.errno_value, 13);
  ASSERT_EQ(prio.checks.size(), 2u);
  EXPECT_EQ(prio.checks[0].arg, 0u);
  EXPECT_EQ(prio.checks[0].op, ArgCheck::Op::kGe);
  EXPECT_EQ(prio.checks[0].value, 2u);
  EXPECT_EQ(prio.checks[1].arg, 1u);
  EXPECT_EQ(prio.checks[1].op, ArgCheck::Op::kLt);

  const Rule& setprio = p->rules[4];
  ASSERT_EQ(setprio.checks.size(), 2u);
  EXPECT_EQ(setprio.checks[0].op, ArgCheck::Op::kGt);
  EXPECT_EQ(setprio.checks[1].op, ArgCheck::Op::kLe);
  EXPECT_EQ(setprio.checks[1].value, 19u);
}

TEST(SeccompPolicyTest, SixtyFourBitValues) {
  auto p = ParsePolicy("allow read arg0 == 0xffffffffffffffff arg1 == 18446744073709551615\n",
                       "test.policy");
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->rules[0].checks[0].value, ~0ull);
  EXPECT_EQ(p->rules[0].checks[1].value, ~0ull);
}

TEST(SeccompPolicyTest, OptionalNamesAreSkippedWhereMissing) {
  auto p = ParsePolicy("allow nosuchcall_kiln? socketcall? read?\n", "test.policy");
  ASSERT_TRUE(p.ok()) << p.error().message();
  ASSERT_EQ(p->rules.size(), 1u);
  EXPECT_EQ(p->rules[0].syscall, "read");
}

TEST(SeccompPolicyTest, FormatRuleRoundTrips) {
  const char* text =
      "allow clone arg0 &CLONE_NEWUSER|CLONE_NEWNET == 0\n"
      "errno EPERM ioctl arg1 &0xffffffff == TIOCSTI\n"
      "errno 77 getpriority arg0 != 1 arg2 < 3\n"
      "allow read\n";
  auto p = ParsePolicy(text, "test.policy");
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(FormatRule(p->rules[0]), "allow clone arg0 &0x50000000 == 0x0");
  EXPECT_EQ(FormatRule(p->rules[1]), "errno EPERM ioctl arg1 &0xffffffff == 0x5412");
  EXPECT_EQ(FormatRule(p->rules[3]), "allow read");
  std::string again;
  for (const Rule& r : p->rules) again += FormatRule(r) + "\n";
  auto q = ParsePolicy(again, "again.policy");
  ASSERT_TRUE(q.ok()) << q.error().message();
  ASSERT_EQ(q->rules.size(), p->rules.size());
  for (size_t i = 0; i < p->rules.size(); ++i)
    EXPECT_EQ(FormatRule(q->rules[i]), FormatRule(p->rules[i]));
}

// Every kind of mistake, with the exact "<source>:<line>:" prefix.
struct BadCase {
  const char* text;
  const char* message;
};

TEST(SeccompPolicyTest, ReportsEveryErrorWithSourceAndLine) {
  const BadCase cases[] = {
      {"deny read", "test.policy:1: 'deny' is not an action (expected 'allow' or 'errno')"},
      {"ALLOW read", "test.policy:1: 'ALLOW' is not an action (expected 'allow' or 'errno')"},
      {"errno", "test.policy:1: 'errno' needs an error name such as EPERM or ENOSYS"},
      {"errno EFOO read", "test.policy:1: unknown errno name 'EFOO'"},
      {"errno 0 read", "test.policy:1: errno 0 is out of range (1..4095)"},
      {"errno 4096 read", "test.policy:1: errno 4096 is out of range (1..4095)"},
      {"allow", "test.policy:1: 'allow' names no system call"},
      {"errno EPERM", "test.policy:1: 'errno' names no system call"},
      {"allow arg0 == 1", "test.policy:1: 'allow' names no system call"},
      {"allow Read",
       "test.policy:1: 'Read' is not a system call name (conditions start with arg0..arg5)"},
      {"allow read ==",
       "test.policy:1: '==' is not a system call name (conditions start with arg0..arg5)"},
      {"allow ?",
       "test.policy:1: '?' is not a system call name (conditions start with arg0..arg5)"},
      {"allow nosuchcall_kiln",
       "test.policy:1: unknown system call 'nosuchcall_kiln' (libseccomp does not know it; add "
       "'?' if that is expected)"},
      {"allow socketcall",
       "test.policy:1: system call 'socketcall' does not exist on this architecture (add '?' to "
       "skip it here)"},
      {"allow read arg6 == 1",
       "test.policy:1: argument index 6 is out of range (system calls have arguments arg0..arg5)"},
      {"allow read arg10 == 1",
       "test.policy:1: argument index 10 is out of range (system calls have arguments "
       "arg0..arg5)"},
      {"allow read argx == 1", "test.policy:1: 'argx' is not an argument (expected arg0..arg5)"},
      {"allow read arg == 1", "test.policy:1: 'arg' is not an argument (expected arg0..arg5)"},
      {"allow read arg0",
       "test.policy:1: expected an operator (== != < <= > >= or &MASK ==) after 'arg0', found "
       "nothing"},
      {"allow read arg0 =< 1",
       "test.policy:1: expected an operator (== != < <= > >= or &MASK ==) after 'arg0', found "
       "'=<'"},
      {"allow read arg0 == ", "test.policy:1: a condition is missing its value"},
      {"allow read arg0 &0xff != 1",
       "test.policy:1: a masked comparison takes '==' only, found '!='"},
      {"allow read arg0 &0xff",
       "test.policy:1: a masked comparison takes '==' only, found nothing"},
      {"allow read arg0 & == 1", "test.policy:1: '&' after 'arg0' is missing its mask"},
      {"allow read arg0 &0 == 0",
       "test.policy:1: a zero mask makes the comparison always true; drop the condition"},
      {"allow read arg0 &0xff == 0x100",
       "test.policy:1: value 0x100 has bits outside the mask 0xff, so the comparison can never "
       "hold"},
      {"allow read arg0 == 12ab", "test.policy:1: malformed number '12ab'"},
      {"allow read arg0 == 0x", "test.policy:1: malformed number '0x'"},
      {"allow read arg0 == 0xfg", "test.policy:1: malformed number '0xfg'"},
      {"allow read arg0 == -1", "test.policy:1: malformed number '-1'"},
      {"allow read arg0 == 0x10000000000000000",
       "test.policy:1: number '0x10000000000000000' does not fit in 64 bits"},
      {"allow read arg0 == 18446744073709551616",
       "test.policy:1: number '18446744073709551616' does not fit in 64 bits"},
      {"allow read arg0 == CLONE_NEWFOO", "test.policy:1: unknown constant 'CLONE_NEWFOO'"},
      {"allow read arg0 == AF_UNIX|",
       "test.policy:1: malformed value 'AF_UNIX|' (empty term around '|')"},
      {"allow read arg0 == 1 arg0 == 2",
       "test.policy:1: arg0 is compared twice; libseccomp takes one comparison per argument and "
       "line (write alternatives on separate lines)"},
      {"allow read arg0 == 1 extra",
       "test.policy:1: unexpected 'extra' after a condition (conditions start with arg0..arg5)"},
  };
  for (const BadCase& c : cases) {
    EXPECT_EQ(ErrorOf(c.text), c.message) << "policy: " << c.text;
  }
}

TEST(SeccompPolicyTest, ReportsTheLineOfTheMistake) {
  EXPECT_EQ(ErrorOf("# comment\n\nallow read\n  allow nosuchcall_kiln  # here\nallow write\n"),
            "test.policy:4: unknown system call 'nosuchcall_kiln' (libseccomp does not know it; "
            "add '?' if that is expected)");
  auto p = ParsePolicy("allow read\n\n\nallow bogus_kiln\n", "/etc/kiln/custom.policy");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), Error::Code::kInvalidArgument);
  EXPECT_TRUE(p.error().message().starts_with("/etc/kiln/custom.policy:4: "))
      << p.error().message();
}

TEST(SeccompPolicyTest, RejectsDuplicateAndContradictoryRules) {
  const BadCase cases[] = {
      {"allow read\nallow read", "test.policy:2: repeats the rule for 'read' at line 1"},
      {"allow read write read", "test.policy:1: repeats the rule for 'read' at line 1"},
      {"errno EPERM ioctl arg1 == 1\nerrno EPERM ioctl arg1 == 1",
       "test.policy:2: repeats the rule for 'ioctl' at line 1"},
      {"allow read\nerrno EPERM read",
       "test.policy:2: contradicts line 1, which has the same conditions for 'read' but another "
       "action"},
      {"errno EPERM read arg0 == 1\nerrno EACCES read arg0 == 1",
       "test.policy:2: contradicts line 1, which has the same conditions for 'read' but another "
       "action"},
      {"allow read arg0 == 1\nerrno EPERM read arg0 == 1",
       "test.policy:2: contradicts line 1, which has the same conditions for 'read' but another "
       "action"},
      {"errno ENOSYS clone3\nallow clone3 arg1 == 0",
       "test.policy:2: contradicts line 1: an unconditional errno rule for 'clone3' leaves no "
       "room for other rules"},
      {"allow clone3 arg1 == 0\nerrno ENOSYS clone3",
       "test.policy:2: contradicts line 1: an unconditional errno rule for 'clone3' leaves no "
       "room for other rules"},
      {"allow read\nallow read arg0 == 1",
       "test.policy:2: is redundant with line 1: one of the two already allows every 'read' call"},
      {"allow read arg0 == 1\nallow read",
       "test.policy:2: is redundant with line 1: one of the two already allows every 'read' call"},
  };
  for (const BadCase& c : cases) {
    EXPECT_EQ(ErrorOf(c.text), c.message) << "policy: " << c.text;
  }
  // Not contradictions: an allowed call with denied special cases, and
  // alternatives that differ in their conditions.
  EXPECT_TRUE(
      ParsePolicy("allow ioctl\nerrno EPERM ioctl arg1 &0xffffffff == TIOCSTI\n", "t").ok());
  EXPECT_TRUE(ParsePolicy("allow socket arg0 == 1\nallow socket arg0 == 2\n", "t").ok());
}

TEST(SeccompPolicyTest, LoadPolicyFileNamesTheFileInErrors) {
  auto missing = LoadPolicyFile("/nonexistent/kiln.policy");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(),
            "loading seccomp policy: open('/nonexistent/kiln.policy'): No such file or directory");

  std::string path = ::testing::TempDir() + "kiln_seccomp_policy_test.policy";
  {
    std::ofstream f(path);
    f << "allow read\nallow write arg7 == 0\n";
  }
  auto bad = LoadPolicyFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(),
            path + ":2: argument index 7 is out of range (system calls have arguments arg0..arg5)");
  {
    std::ofstream f(path);
    f << "allow read write\n";
  }
  auto good = LoadPolicyFile(path);
  ASSERT_TRUE(good.ok()) << good.error().message();
  EXPECT_EQ(good->source, path);
  EXPECT_EQ(good->rules.size(), 2u);
  std::remove(path.c_str());
}

// --- The built-in policy.

TEST(SeccompPolicyTest, DefaultPolicyParses) {
  auto p = DefaultPolicy();
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->source, "default.policy");
  EXPECT_GT(p->rules.size(), 200u);
}

// A typo in an optional name would silently drop a call; on x86_64 every
// optional name of the default policy exists, so each must resolve there.
TEST(SeccompPolicyTest, DefaultPolicyOptionalNamesExistOnX86_64) {
  if (seccomp_arch_native() != SCMP_ARCH_X86_64) GTEST_SKIP() << "x86_64 only";
  std::string_view text = embedded::default_policy();
  size_t optional = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find_first_of(" \t\n", pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view tok = text.substr(pos, end - pos);
    if (tok.starts_with('#')) {
      end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
    } else if (tok.size() > 1 && tok.ends_with('?')) {
      std::string name(tok.substr(0, tok.size() - 1));
      EXPECT_GE(seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name.c_str()), 0) << name;
      ++optional;
    }
    pos = end + 1;
  }
  EXPECT_GT(optional, 20u);
}

// The calls the issue names as blocked are in no allow rule of the default
// policy (the behaviour tests in seccomp_test.cc run most of them for real).
TEST(SeccompPolicyTest, DefaultPolicyAllowsNoneOfTheBlockedCalls) {
  auto p = DefaultPolicy();
  ASSERT_TRUE(p.ok()) << p.error().message();
  const std::set<std::string> blocked = {
      "mount",
      "umount2",
      "pivot_root",
      "open_tree",
      "move_mount",
      "fsopen",
      "fsmount",
      "fsconfig",
      "fspick",
      "mount_setattr",
      "unshare",
      "setns",
      "keyctl",
      "add_key",
      "request_key",
      "bpf",
      "perf_event_open",
      "ptrace",
      "process_vm_readv",
      "process_vm_writev",
      "kexec_load",
      "kexec_file_load",
      "init_module",
      "finit_module",
      "delete_module",
      "open_by_handle_at",
      "userfaultfd",
      "io_uring_setup",
      "io_uring_enter",
      "io_uring_register",
      "chroot",
      "reboot",
      "swapon",
      "swapoff",
      "syslog",
      "iopl",
      "ioperm",
      "modify_ldt",
      "pidfd_getfd",
      "kcmp",
  };
  std::set<std::string> seen;
  for (const Rule& r : p->rules) {
    seen.insert(r.syscall);
    if (r.action == Rule::Action::kAllow) {
      EXPECT_EQ(blocked.count(r.syscall), 0u) << r.syscall;
    }
  }
  // The conditional and special cases are there.
  for (const char* name : {"clone", "clone3", "ioctl", "personality", "socket", "socketpair"}) {
    EXPECT_EQ(seen.count(name), 1u) << name;
  }
}

}  // namespace
}  // namespace kiln::sandbox::seccomp
