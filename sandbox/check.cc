#include "sandbox/check.h"

#include <fcntl.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/fd.h"
#include "base/strings.h"
#include "sandbox/cgroup.h"
#include "sandbox/supervisor.h"

namespace kiln::sandbox::check {

namespace {

constexpr const char* kNamespaces[] = {"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"};
constexpr const char* kKnobs[] = {"user.max_user_namespaces", "kernel.unprivileged_userns_clone",
                                  "kernel.apparmor_restrict_unprivileged_userns",
                                  "kernel.io_uring_disabled", "vm.unprivileged_userfaultfd"};

// Where the trial's command (this very binary, bound read-only) is inside.
constexpr const char* kInsideBinary = "/run/kiln-check";
constexpr long kOverlayfsMagic = 0x794c7630;

// One attempt at the trial: the sandbox's command output, or why it failed.
Result<std::map<std::string, std::string>> Attempt(Spec spec) {
  KILN_ASSIGN_OR_RETURN(Pipe pipe, MakePipe());
  spec.pass_fds = {pipe.write.get()};
  spec.argv = {kInsideBinary, "sandbox", "check", "--inside-fd", std::to_string(pipe.write.get())};
  auto report = Run(spec);
  pipe.write.reset();
  if (!report) return report.error();
  if (report->status != 0) {
    return Error::Internal("the trial sandbox exited " + std::to_string(report->status) +
                           (report->error.empty() ? "" : ": " + report->error));
  }
  KILN_ASSIGN_OR_RETURN(std::string out, ReadAll(pipe.read.get(), "the trial's output"));
  std::map<std::string, std::string> seen;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    size_t sp = line.find(' ');
    if (sp != std::string::npos) seen[line.substr(0, sp)] = std::string(Trim(line.substr(sp + 1)));
  }
  return seen;
}

Trial RunTrial(const Options& o, bool root) {
  Trial t;
  Spec spec;
  std::error_code ec;
  std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) {
    t.error = "readlink('/proc/self/exe'): " + ec.message();
    return t;
  }
  spec.binds.push_back({self, kInsideBinary, true});
  spec.state_dir = o.state_dir;
  spec.cgroup_root = o.cgroup_root;
  spec.cgroup_parent = o.cgroup_parent;
  spec.limits.timeout_ms = 30000;
  if (root) {
    auto with = Attempt(spec);
    if (with) {
      t.ran = t.with_cgroup = true;
      t.inside = *with;
      return t;
    }
    t.cgroup_error = with.error().message();
  }
  spec.use_cgroup = false;
  spec.limits.memory_bytes.reset();
  auto without = Attempt(spec);
  if (without) {
    t.ran = true;
    t.inside = *without;
  } else {
    t.error = without.error().message();
    if (t.cgroup_error == t.error) t.cgroup_error.clear();
  }
  return t;
}

std::string Get(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

std::string Knob(const Facts& f, const std::string& name) { return Get(f.sysctls, name); }

// Why a user namespace cannot be made, and what to change, from the knobs
// that govern it.
std::string UserNsFix(const Facts& f, bool unprivileged) {
  std::vector<std::string> fixes;
  if (Knob(f, "user.max_user_namespaces") == "0") {
    fixes.push_back(
        "user.max_user_namespaces is 0: sysctl -w user.max_user_namespaces=15000, and the same "
        "line in /etc/sysctl.d/90-kiln.conf");
  }
  if (unprivileged && Knob(f, "kernel.unprivileged_userns_clone") == "0") {
    fixes.push_back(
        "kernel.unprivileged_userns_clone is 0: sysctl -w kernel.unprivileged_userns_clone=1, or "
        "run kiln as root");
  }
  if (unprivileged && Knob(f, "kernel.apparmor_restrict_unprivileged_userns") == "1") {
    fixes.push_back(
        "AppArmor restricts unprivileged user namespaces "
        "(kernel.apparmor_restrict_unprivileged_userns=1): give kiln a profile that allows them, "
        "/etc/apparmor.d/kiln containing `abi <abi/4.0>, include <tunables/global> profile kiln " +
        f.kiln_path +
        " flags=(unconfined) { userns, }`, load it with apparmor_parser -r "
        "/etc/apparmor.d/kiln; or run kiln as root");
  }
  if (f.selinux_enforce == "1") {
    fixes.push_back(
        "SELinux is enforcing: its policy may deny user_namespace { create } to kiln's domain; "
        "look for the denial with ausearch -m avc and allow it");
  }
  if (f.own_seccomp.value_or(0) != 0) {
    fixes.push_back(
        "kiln already runs under a seccomp filter (a container's profile?) that may refuse "
        "unshare and mount: run kiln on the host, or in a container allowed to create "
        "namespaces");
  }
  if (fixes.empty()) {
    fixes.push_back("the kernel must be built with user namespaces (CONFIG_USER_NS)");
  }
  return Join(fixes, "; ");
}

std::string OverlayFix(const Facts& f, bool unprivileged) {
  if (unprivileged) {
    return "overlayfs in a user namespace needs Linux 5.11 or later, and tmpfs with user "
           "extended attributes (6.6) for its upper layer; or run kiln as root";
  }
  if (f.own_seccomp.value_or(0) != 0) return UserNsFix(f, false);
  return "load overlayfs: modprobe overlay, and add it to /etc/modules-load.d/kiln.conf";
}

std::string CgroupFix(const Facts& f) {
  if (!f.root) {
    return "run kiln as root, or give it a delegated cgroup (a systemd unit with Delegate=yes) "
           "and pass --cgroup-parent with --memory/--pids/--cpus";
  }
  if (!f.cgroups_found) {
    return "mount the cgroup hierarchy (cgroup2 at /sys/fs/cgroup, as systemd does at boot)";
  }
  return "kiln could not create its cgroup (" + f.trial.cgroup_error +
         "); on cgroup v2, enable the controllers for kiln's parent: echo '+memory +pids +cpu' > "
         "/sys/fs/cgroup/cgroup.subtree_control, or run kiln in a systemd unit with "
         "Delegate=yes";
}

Line Layer(std::string id, std::string name, bool in_force, std::string detail, std::string fix) {
  return {std::move(id), std::move(name), in_force ? "in force" : "missing", std::move(detail),
          in_force ? "" : std::move(fix)};
}

Line Host(std::string id, std::string name, const probe::Finding& finding, std::string note = "",
          std::string fix = "") {
  std::string detail = finding.detail + (note.empty() ? "" : "; " + note);
  return {std::move(id), std::move(name), probe::Name(finding.state), std::move(detail),
          finding.present() ? "" : std::move(fix)};
}

// Why no sandbox could start, as the fix for every layer: the first probe
// that explains it.
std::string TrialFix(const Facts& f) {
  if (!f.userns.present()) return UserNsFix(f, !f.root);
  if (!f.overlay.present()) return OverlayFix(f, !f.root);
  if (!f.seccomp_filter.present()) return "the kernel must have CONFIG_SECCOMP_FILTER";
  if (!f.seccomp_notify.present()) return "kiln needs Linux 5.0 or later (seccomp notification)";
  return "see the error above: " + f.trial.error;
}

}  // namespace

std::string InsideReport() {
  std::string out;
  auto line = [&](const std::string& key, const std::string& value) {
    out += key + " " + value + "\n";
  };
  std::error_code ec;
  for (const char* ns : kNamespaces) {
    std::string key = std::string("ns/") + ns;
    line(key, std::filesystem::read_symlink("/proc/self/" + key, ec).string());
  }
  if (auto status = ReadFile("/proc/self/status")) {
    std::istringstream in(*status);
    for (std::string l; std::getline(in, l);) {
      size_t colon = l.find(':');
      if (colon == std::string::npos) continue;
      std::string key = l.substr(0, colon);
      if (key == "Seccomp" || key == "NoNewPrivs" || key == "CapEff" || key == "CapPrm" ||
          key == "CapBnd") {
        line(key, std::string(Trim(l.substr(colon + 1))));
      }
    }
  }
  if (auto map = ReadFile("/proc/self/uid_map")) {
    std::istringstream in(*map);
    std::string words, w;
    while (in >> w) words += (words.empty() ? "" : " ") + w;
    line("uid_map", words);
  }
  struct statfs st {};
  if (::statfs("/", &st) == 0) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "0x%lx", static_cast<long>(st.f_type));
    line("root", st.f_type == kOverlayfsMagic ? "overlayfs" : hex);
  }
  std::vector<std::string> interfaces;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/net", ec)) {
    interfaces.push_back(e.path().filename().string());
  }
  std::sort(interfaces.begin(), interfaces.end());
  line("net", Join(interfaces, " "));
  line("x32", probe::OtherAbiVerdict(probe::Abi::kX32));
  line("i386", probe::OtherAbiVerdict(probe::Abi::kI386));
  return out;
}

Facts Gather(const Options& options) {
  Facts f;
  f.root = ::geteuid() == 0;
  utsname u{};
  if (::uname(&u) == 0) {
    f.kernel = u.release;
    f.machine = u.machine;
  }
  std::error_code ec;
  f.kiln_path =
      (std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "kiln").string();
  f.userns = probe::UserNamespace();
  f.overlay = probe::OverlayRoot();
  if (f.root) {
    f.userns_unprivileged = probe::UserNamespace(probe::kNobody);
    f.overlay_unprivileged = probe::OverlayRoot(probe::kNobody);
  }
  f.seccomp_filter = probe::SeccompFilter();
  f.seccomp_notify = probe::SeccompNotify();
  f.i386 = probe::I386Abi();
  f.x32 = probe::X32Abi();
  f.landlock = probe::Landlock();
  f.io_uring = probe::IoUring();
  f.userfaultfd = probe::Userfaultfd();
  f.mseal = probe::Mseal();
  f.own_seccomp = probe::OwnSeccompMode();
  for (const char* knob : kKnobs) {
    if (auto v = probe::Sysctl(knob)) f.sysctls[knob] = *v;
  }
  f.lsms = probe::Lsms();
  if (auto enforce = ReadFile("/sys/fs/selinux/enforce")) f.selinux_enforce = Trim(*enforce);
  if (auto v = cgroup::Detect(options.cgroup_root); !v) {
    f.cgroups = v.error().message();
  } else if (*v == cgroup::Version::kV2) {
    f.cgroups_found = true;
    auto ctl = ReadFile(options.cgroup_root + "/cgroup.controllers");
    f.cgroups = "v2 at " + options.cgroup_root +
                ", controllers: " + (ctl ? std::string(Trim(*ctl)) : "unreadable");
  } else {
    f.cgroups_found = true;
    f.cgroups = "v1 (memory, pids and cpu hierarchies under " + options.cgroup_root + ")";
    if (auto ctl = ReadFile(options.cgroup_root + "/unified/cgroup.controllers")) {
      f.cgroups += ", with a cgroup2 at unified/ (hybrid) holding: " +
                   (Trim(*ctl).empty() ? std::string("no controller") : std::string(Trim(*ctl)));
    }
  }
  for (const char* ns : kNamespaces) {
    std::string key = std::string("ns/") + ns;
    f.own_ns[key] = std::filesystem::read_symlink("/proc/self/" + key, ec).string();
  }
  f.trial = RunTrial(options, f.root);
  return f;
}

Assessment Assess(const Facts& f) {
  Assessment a;
  const auto& in = f.trial.inside;
  auto fresh = [&](const char* ns) {
    std::string key = std::string("ns/") + ns;
    std::string mine = Get(in, key);
    return !mine.empty() && mine != Get(f.own_ns, key);
  };
  const std::string why_not = f.trial.ran ? "" : "no sandbox could start: " + f.trial.error;
  auto or_why = [&](const std::string& detail) { return f.trial.ran ? detail : why_not; };
  const std::string fix = f.trial.ran ? "" : TrialFix(f);

  bool userns = fresh("user") && !Get(in, "uid_map").empty();
  a.layers.push_back(Layer("user_namespace", "user namespace", userns,
                           or_why("the command's ids map to host ids " + Get(in, "uid_map")),
                           f.trial.ran ? UserNsFix(f, !f.root) : fix));
  bool overlay = fresh("mnt") && Get(in, "root") == "overlayfs";
  a.layers.push_back(Layer("mount", "mount namespace, overlay root", overlay,
                           or_why("its own mount namespace; / is " + Get(in, "root")),
                           f.trial.ran ? OverlayFix(f, !f.root) : fix));
  std::vector<std::string> own, shared;
  for (const char* ns : {"pid", "net", "ipc", "uts", "cgroup"})
    (fresh(ns) ? own : shared).push_back(ns);
  a.layers.push_back(Layer(
      "namespaces", "pid, network, ipc, uts, cgroup namespaces",
      shared.empty() && Get(in, "net") == "lo",
      or_why(shared.empty() ? "all fresh; network interfaces: " + Get(in, "net")
                            : "shared with the host: " + Join(shared, ", ")),
      fix.empty() ? "the kernel must have pid, network, ipc, uts and cgroup namespaces" : fix));
  a.layers.push_back(Layer("cgroup", "cgroup limits (memory, pids, cpu)", f.trial.with_cgroup,
                           f.trial.with_cgroup ? f.cgroups
                           : f.root            ? f.trial.cgroup_error
                                               : "unprivileged: no delegated cgroup",
                           CgroupFix(f)));
  bool filtered = Get(in, "Seccomp") == "2";
  a.layers.push_back(
      Layer("seccomp", "seccomp filter (default deny)", filtered,
            or_why("Seccomp: " + Get(in, "Seccomp") + "; denials " +
                   (f.seccomp_notify.present() ? "reported to the supervisor" : "not reported")),
            fix.empty() ? "the kernel must have CONFIG_SECCOMP_FILTER" : fix));
  // Tried from inside: x32 refused by the filter, i386 refused or (without
  // IA32 emulation) not there at all.
  const std::string x32 = Get(in, "x32"), i386 = Get(in, "i386");
  bool abis = x32 == "EPERM" && (i386 == "EPERM" || i386 == "SIGSEGV");
  a.layers.push_back(Layer(
      "other_abis", "other system call ABIs refused", abis,
      or_why("x32 getpid inside: " + x32 + "; int 0x80 getpid inside: " + i386 +
             (i386 == "SIGSEGV" ? " (no IA32 emulation in this kernel)" : "")),
      fix.empty() ? "the seccomp filter must refuse them: is kiln's default policy in use?" : fix));
  bool unprivileged = Get(in, "NoNewPrivs") == "1" && Get(in, "CapEff") == "0000000000000000" &&
                      Get(in, "CapPrm") == "0000000000000000" &&
                      Get(in, "CapBnd") == "0000000000000000";
  a.layers.push_back(
      Layer("privileges", "no capabilities, no_new_privs", unprivileged,
            or_why("CapEff " + Get(in, "CapEff") + ", CapBnd " + Get(in, "CapBnd") +
                   ", NoNewPrivs " + Get(in, "NoNewPrivs")),
            fix.empty() ? "kiln drops every capability; something in this host kept one" : fix));
  a.can_isolate = f.trial.ran;
  for (const Line& l : a.layers) {
    if (l.id != "cgroup" && l.state != "in force") a.can_isolate = false;
  }

  std::string knobs;
  for (const auto& [k, v] : f.sysctls) {
    if (k.find("userns") != std::string::npos || k == "user.max_user_namespaces")
      knobs += (knobs.empty() ? "" : ", ") + k + "=" + v;
  }
  a.host.push_back(
      Host("user_namespaces", "user namespaces", f.userns, knobs, UserNsFix(f, !f.root)));
  if (f.root) {
    a.host.push_back(Host("unprivileged_user_namespaces",
                          "unprivileged user namespaces (rootless kiln)", f.userns_unprivileged,
                          "needed only to run kiln without root", UserNsFix(f, true)));
  }
  a.host.push_back(Host("overlay", "overlayfs root", f.overlay, "", OverlayFix(f, !f.root)));
  if (f.root) {
    a.host.push_back(Host("unprivileged_overlay", "overlayfs in a user namespace (rootless kiln)",
                          f.overlay_unprivileged, "needed only to run kiln without root",
                          OverlayFix(f, true)));
  }
  a.host.push_back({"cgroups", "cgroups", f.cgroups_found ? "present" : "absent", f.cgroups,
                    f.cgroups_found ? "" : CgroupFix(f)});
  std::string lsm = f.lsms.empty() ? "none listed" : Join(f.lsms, ", ");
  if (f.selinux_enforce) lsm += "; SELinux enforce=" + *f.selinux_enforce;
  a.host.push_back({"lsm", "security modules", "info", lsm, ""});
  a.host.push_back({"own_seccomp", "kiln's own seccomp mode", "info",
                    f.own_seccomp ? "Seccomp: " + std::to_string(*f.own_seccomp) +
                                        (*f.own_seccomp == 2 ? " (kiln itself runs filtered)" : "")
                                  : "not reported by the kernel",
                    ""});
  a.host.push_back(Host("seccomp_filter", "seccomp filters", f.seccomp_filter, "",
                        "the kernel must have CONFIG_SECCOMP_FILTER"));
  a.host.push_back(Host("seccomp_notify", "seccomp user notification", f.seccomp_notify,
                        "how denials reach the supervisor", "Linux 5.0 or later"));
  const std::string refused = "kiln's filter refuses calls through it whatever the kernel has";
  a.host.push_back(Host("i386_abi", "i386 ABI (int 0x80)", f.i386, refused));
  a.host.push_back(Host("x32_abi", "x32 ABI", f.x32, refused));
  a.host.push_back(Host("landlock", "Landlock", f.landlock,
                        "kiln does not use it: mount namespaces build the sandbox's view"));
  a.host.push_back(Host("io_uring", "io_uring", f.io_uring, "refused by kiln's filter"));
  a.host.push_back(Host("userfaultfd", "userfaultfd", f.userfaultfd, "refused by kiln's filter"));
  a.host.push_back(Host("mseal", "mseal", f.mseal,
                        "calls newer than kiln's libseccomp fail with ENOSYS inside"));
  for (Line& l : a.host) {
    if (l.state == "present" || l.state == "info") l.fix.clear();
  }
  return a;
}

std::string Text(const Facts& f, const Assessment& a) {
  std::ostringstream out;
  out << "kiln sandbox check: Linux " << f.kernel << " " << f.machine << ", kiln as "
      << (f.root ? "root" : "uid " + std::to_string(::geteuid()) + " (rootless)") << "\n\n";
  auto section = [&](const char* title, const std::vector<Line>& lines) {
    out << title << "\n";
    for (const Line& l : lines) {
      char state[16];
      std::snprintf(state, sizeof state, "%-9s", l.state.c_str());
      out << "  " << state << " " << l.name << ": " << l.detail << "\n";
      if (!l.fix.empty()) out << "            fix: " << l.fix << "\n";
    }
    out << "\n";
  };
  section("isolation layers", a.layers);
  section("host", a.host);
  if (!a.can_isolate) {
    out << "kiln cannot isolate on this host: fix the missing layers above.\n";
  } else if (!f.trial.with_cgroup) {
    out << "kiln can isolate on this host, without cgroup limits (memory is not capped).\n";
  } else {
    out << "kiln can isolate on this host: every layer is in force.\n";
  }
  return out.str();
}

std::string Json(const Facts& f, const Assessment& a) {
  auto lines = [](const std::vector<Line>& ls) {
    nlohmann::json arr = nlohmann::json::array();
    for (const Line& l : ls) {
      arr.push_back({{"id", l.id},
                     {"name", l.name},
                     {"state", l.state},
                     {"detail", l.detail},
                     {"fix", l.fix}});
    }
    return arr;
  };
  nlohmann::json j = {
      {"kernel", f.kernel},
      {"machine", f.machine},
      {"root", f.root},
      {"can_isolate", a.can_isolate},
      {"cgroup_limits", f.trial.with_cgroup},
      {"trial", {{"ran", f.trial.ran}, {"error", f.trial.error}, {"inside", f.trial.inside}}},
      {"layers", lines(a.layers)},
      {"host", lines(a.host)}};
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace kiln::sandbox::check
