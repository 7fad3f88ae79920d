// cgroup v1: one directory per controller hierarchy, each at
// <root>/<controller>/<parent>/<name>; hierarchies mounted together
// (cpu,cpuacct) share one directory. Only the hierarchies a sandbox needs are
// joined (memory and pids always, cpu for a quota): every v1 migration takes
// the kernel's thread-group lock, so each extra hierarchy costs start-up time.
// CPU time comes from the reaped processes' rusage, and killing the sandbox's
// pid 1 ends its whole pid namespace, so cpuacct and freezer are not needed.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include "base/fd.h"
#include "sandbox/cgroup.h"

namespace kiln::sandbox::cgroup {

namespace {

class CgroupV1 final : public Cgroup {
 public:
  // dirs_: controller -> directory (several controllers may share one).
  explicit CgroupV1(std::map<std::string, std::string> dirs) : dirs_(std::move(dirs)) {}
  ~CgroupV1() override { (void)Destroy(); }

  Version version() const override { return Version::kV1; }

  std::vector<std::string> paths() const override {
    std::vector<std::string> out;
    for (const auto& [ctrl, dir] : dirs_) {
      if (std::find(out.begin(), out.end(), dir) == out.end()) out.push_back(dir);
    }
    return out;
  }

  Status AddProcess(pid_t pid) override {
    for (const std::string& dir : paths()) {
      if (auto s = WriteFile(dir + "/cgroup.procs", std::to_string(pid)); !s) {
        return s.error().Wrap("adding pid " + std::to_string(pid) + " to the cgroup");
      }
    }
    return Ok();
  }

  Result<Stats> ReadStats() const override {
    Stats st;
    if (auto d = Dir("memory")) {
      st.memory_peak_bytes = ReadNumber(*d + "/memory.max_usage_in_bytes");
      st.oom_kills = ReadKeyed(*d + "/memory.oom_control", "oom_kill").value_or(0);
    }
    if (auto d = Dir("pids")) st.pids_peak = ReadNumber(*d + "/pids.peak");
    return st;
  }

  Status KillAll() override {
    // The pids limit keeps a fork bomb finite, so a kill loop catches up.
    for (const std::string& dir : paths()) KILN_TRY(KillProcs(dir));
    return Ok();
  }

 private:
  std::optional<std::string> Dir(const std::string& ctrl) const {
    auto it = dirs_.find(ctrl);
    if (it == dirs_.end()) return std::nullopt;
    return it->second;
  }

  std::map<std::string, std::string> dirs_;
};

Status ApplyLimits(const std::map<std::string, std::string>& dirs, const Limits& limits) {
  auto need = [&](const char* ctrl) -> Result<std::string> {
    auto it = dirs.find(ctrl);
    if (it == dirs.end()) {
      return Error::Unsupported(std::string("cgroup v1 controller '") + ctrl +
                                "' is not mounted, so its limit cannot be applied");
    }
    return it->second;
  };
  if (limits.memory_bytes) {
    KILN_ASSIGN_OR_RETURN(std::string dir, need("memory"));
    std::string v = std::to_string(*limits.memory_bytes);
    KILN_TRY(WriteFile(dir + "/memory.limit_in_bytes", v));
    // Swap off: memory+swap may not exceed memory alone. The file exists only
    // when the kernel accounts swap; without it, swappiness 0 keeps the
    // sandbox's pages out of swap.
    if (auto s = WriteFile(dir + "/memory.memsw.limit_in_bytes", v); !s) {
      if (s.error().sys_errno() != ENOENT) return s;
      (void)WriteFile(dir + "/memory.swappiness", "0");
    }
  }
  if (limits.pids) {
    KILN_ASSIGN_OR_RETURN(std::string dir, need("pids"));
    KILN_TRY(WriteFile(dir + "/pids.max", std::to_string(*limits.pids)));
  }
  if (limits.cpus) {
    KILN_ASSIGN_OR_RETURN(std::string dir, need("cpu"));
    constexpr uint64_t kPeriod = 100000;
    auto quota = static_cast<uint64_t>(*limits.cpus * kPeriod);
    KILN_TRY(WriteFile(dir + "/cpu.cfs_period_us", std::to_string(kPeriod)));
    KILN_TRY(WriteFile(dir + "/cpu.cfs_quota_us", std::to_string(std::max<uint64_t>(quota, 1000))));
  }
  return Ok();
}

}  // namespace

Result<std::unique_ptr<Cgroup>> CreateV1(const std::string& name, const Limits& limits,
                                         const Options& options) {
  std::map<std::string, std::string> dirs;  // controller -> our directory
  // Hierarchies mounted together (cpu -> cpu,cpuacct) are one directory: the
  // same (device, inode) -> our directory.
  std::map<std::pair<dev_t, ino_t>, std::string> by_hierarchy;
  std::vector<const char*> controllers = {"memory", "pids"};
  if (limits.cpus) controllers.push_back("cpu");
  for (const char* ctrl : controllers) {
    std::string mount = options.root + "/" + ctrl;
    struct stat st {};
    if (::stat(mount.c_str(), &st) != 0) continue;  // controller not mounted
    auto it = by_hierarchy.find({st.st_dev, st.st_ino});
    if (it != by_hierarchy.end()) {
      dirs[ctrl] = it->second;
      continue;
    }
    std::string parent = mount + "/" + options.parent;
    std::string dir = parent + "/" + name;
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    Status made =
        ec ? Error(Error::Code::kIO, "mkdir(" + Quote(parent) + "): " + ec.message()) : Ok();
    if (made && ::mkdir(dir.c_str(), 0755) != 0)
      made = Error::Sys("mkdir(" + Quote(dir) + ", 0755)", errno);
    if (!made) {
      // Undo what was created so far; the caller sees one clean failure.
      for (const auto& [h, d] : by_hierarchy) (void)RemoveDir(d);
      return made.error().Wrap("creating cgroup");
    }
    by_hierarchy[{st.st_dev, st.st_ino}] = dir;
    dirs[ctrl] = dir;
  }
  if (dirs.empty())
    return Error::Unsupported("no cgroup v1 controller is mounted under " + Quote(options.root));
  auto cg = std::make_unique<CgroupV1>(dirs);
  if (auto s = ApplyLimits(dirs, limits); !s) {
    return s.error().Wrap("applying cgroup limits");  // cg's destructor removes the directories
  }
  return std::unique_ptr<Cgroup>(std::move(cg));
}

}  // namespace kiln::sandbox::cgroup
