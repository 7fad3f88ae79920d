// Escape suite, defence in depth: attacks that seccomp stops are run again
// under the default policy plus an "allow" for the very calls they use, to
// show the layer beneath (capabilities, the pid namespace, the mount
// namespace's owner, a non-dumpable init) still stops them. The report's
// denied_syscalls shows that the filter really let those calls through.
#include <unistd.h>

#include <sstream>

#include "tests/escape/escape_support.h"

namespace kiln::testing::escape {
namespace {

struct DepthCase {
  const char* attack;
  const char* allow;  // system calls added to the policy
  std::vector<std::string> fragments;
  bool needs_host_pid = false;
};

std::ostream& operator<<(std::ostream& os, const DepthCase& c) { return os << c.attack; }

class EscapeDepth : public EscapeTest, public ::testing::WithParamInterface<DepthCase> {};

TEST_P(EscapeDepth, LayerBeneathSeccompHolds) {
  const DepthCase& c = GetParam();
  TempDir dir;
  std::string policy = dir.path() + "/policy";
  // The default policy, minus its conditional rules for these calls (the
  // parser refuses an unconditional rule beside them), plus an allow.
  std::istringstream in(ReadAll(KILN_DEFAULT_POLICY));
  std::string text;
  for (std::string line; std::getline(in, line);) {
    std::istringstream names(c.allow);
    bool conditional = false;
    for (std::string name; names >> name;)
      conditional |= line.rfind("allow " + name + " arg", 0) == 0;
    if (!conditional) text += line + "\n";
  }
  WriteAll(policy, text + "# escape suite: let these through to test the next layer\nallow " +
                       c.allow + "\n");
  std::string report = dir.path() + "/report.json";
  HostProcess target;
  std::vector<std::string> args;
  std::vector<std::string> fragments = c.fragments;
  if (c.needs_host_pid) {
    args.push_back(std::to_string(target.pid()));
    for (auto& f : fragments) {
      if (auto at = f.find("HOSTPID"); at != std::string::npos) f.replace(at, 7, args[0]);
    }
  }
  auto o = Attack(c.attack, args, {"--seccomp-policy", policy, "--report", report});
  EXPECT_TRUE(Blocked(o, fragments));
  auto denied = ReadReport(report).value("denied_syscalls", nlohmann::json::object());
  std::istringstream allowed(c.allow);
  for (std::string name; allowed >> name;) {
    EXPECT_FALSE(denied.contains(name))
        << name << " was still denied by seccomp: " << denied.dump();
  }
  EXPECT_TRUE(target.Alive());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EscapeDepth,
    ::testing::Values(
        DepthCase{"mount",
                  "mount umount2 fsopen fsconfig fsmount fspick open_tree move_mount mount_setattr",
                  {"mount(tmpfs, /tmp): Operation not permitted",
                   "mount(/usr, MS_REMOUNT|MS_BIND) read-write: Operation not permitted",
                   "fsopen(tmpfs): Operation not permitted",
                   "open_tree(/usr, OPEN_TREE_CLONE): Operation not permitted",
                   "mount_setattr(/usr, clear MOUNT_ATTR_RDONLY): Operation not permitted"}},
        DepthCase{"umount", "umount2", {"umount2(/proc/sys, MNT_DETACH): Operation not permitted"}},
        DepthCase{
            "chroot", "chroot pivot_root", {"chroot(/tmp/kiln-jail): Operation not permitted"}},
        DepthCase{"unshare",
                  "unshare clone",
                  {"unshare(CLONE_NEWNS): Operation not permitted",
                   "clone(CLONE_NEWNET): Operation not permitted"}},
        DepthCase{"setns",
                  "setns",
                  {"setns(/proc/self/ns/mnt): Operation not permitted",
                   "open(/proc/1/ns/user): Permission denied"}},
        DepthCase{"ptrace",
                  "ptrace process_vm_readv process_vm_writev",
                  {"ptrace(PTRACE_ATTACH, host pid HOSTPID): No such process",
                   "ptrace(PTRACE_ATTACH, init): Operation not permitted",
                   "process_vm_readv(init): Operation not permitted"},
                  true},
        DepthCase{"shocker",
                  "open_by_handle_at",
                  {"open_by_handle_at(/attack, inode 2): Operation not permitted"}},
        DepthCase{"leaked-fd", "pidfd_getfd", {"pidfd_getfd(init, 0): Operation not permitted"}},
        DepthCase{"cgroup", "mount", {"mount(cgroup, memory): Operation not permitted"}},
        // Modules and kexec are left out: a kernel built without them
        // answers ENOSYS, which says nothing about the layer beneath.
        DepthCase{
            "reboot", "reboot", {"reboot(LINUX_REBOOT_CMD_CAD_OFF): Operation not permitted"}},
        DepthCase{"hostname",
                  "sethostname setdomainname",
                  {"sethostname(kiln-escaped): Operation not permitted"}},
        DepthCase{"clock",
                  "clock_settime settimeofday clock_adjtime adjtimex",
                  {"clock_settime(CLOCK_REALTIME, now): Operation not permitted"}},
        DepthCase{"raw-socket",
                  "socket",
                  {"socket(AF_PACKET, SOCK_RAW): Operation not permitted",
                   "socket(AF_INET, SOCK_RAW, IPPROTO_RAW): Operation not permitted"}}),
    [](const ::testing::TestParamInfo<DepthCase>& info) {
      std::string name = info.param.attack;
      for (char& ch : name) {
        if (ch == '-') ch = '_';
      }
      return name;
    });

}  // namespace
}  // namespace kiln::testing::escape
