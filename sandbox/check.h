// `kiln sandbox check`: what this host gives kiln's isolation, for whoever
// installs a runner host. Gather() probes the host (sandbox/probe.h) and
// starts one real sandbox whose command, this binary again (InsideReport),
// reports what it sees of itself (its namespaces, seccomp mode,
// capabilities, root filesystem, what calls through the other ABIs get);
// Assess()
// turns those facts into one line per isolation layer, in force or not, and
// one per host feature, each with the fix when something is missing.
// Assess() is pure, so that hosts this one is not can be tested.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/probe.h"

namespace kiln::sandbox::check {

struct Options {
  std::string state_dir;  // empty: the default state directory
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string cgroup_parent = "kiln";
};

// The trial sandbox: started with cgroup limits where kiln would use them,
// again without when that failed.
struct Trial {
  bool ran = false;          // the command ran and exited 0
  bool with_cgroup = false;  // ... inside a cgroup with kiln's default limits
  std::string error;         // why no sandbox could run
  std::string cgroup_error;  // why the attempt with a cgroup failed
  // What the command saw: "ns/pid" -> "pid:[4026531836]", "Seccomp" -> "2",
  // "CapEff" -> "0000000000000000", "uid_map" -> "0 200000000 65536",
  // "root" -> "overlayfs", "net" -> "lo", "x32" -> "EPERM", "i386" -> "SIGSEGV".
  std::map<std::string, std::string> inside;
};

struct Facts {
  bool root = false;  // kiln runs as root (otherwise rootless)
  std::string kernel, machine;
  std::string kiln_path;  // the kiln binary, as an AppArmor profile would name it
  probe::Finding userns, userns_unprivileged;    // as the caller; as nobody (root only)
  probe::Finding overlay, overlay_unprivileged;  // kiln's root as the caller; as nobody
  probe::Finding seccomp_filter, seccomp_notify, i386, x32, landlock, io_uring, userfaultfd, mseal;
  std::optional<int> own_seccomp;              // the caller's Seccomp: mode
  std::map<std::string, std::string> sysctls;  // the knobs this kernel has, by dotted name
  std::vector<std::string> lsms;
  std::optional<std::string> selinux_enforce;  // /sys/fs/selinux/enforce
  std::string cgroups;                         // the layout, in words
  bool cgroups_found = false;
  std::map<std::string, std::string> own_ns;  // the caller's namespaces, "ns/pid" -> ...
  Trial trial;
};

struct Line {
  std::string id;     // stable key for --json: "user_namespace", "i386_abi", ...
  std::string name;   // for people
  std::string state;  // layers: "in force" or "missing"; host: a probe state or "info"
  std::string detail;
  std::string fix;  // empty when there is nothing to do
};

struct Assessment {
  std::vector<Line> layers, host;
  bool can_isolate = false;  // a sandbox ran with every layer but cgroup limits in force
};

Facts Gather(const Options& options);
// What the calling process sees of its own isolation, one "key value" line
// each (the keys of Trial::inside): run by the trial's command.
std::string InsideReport();
Assessment Assess(const Facts& facts);
std::string Text(const Facts& facts, const Assessment& a);
std::string Json(const Facts& facts, const Assessment& a);

}  // namespace kiln::sandbox::check
