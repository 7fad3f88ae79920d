// cgroup v2: one directory at <root>/<parent>/<name> in the unified
// hierarchy. The controllers a limit needs are enabled in the
// cgroup.subtree_control of every ancestor from the root down; the parent
// holds no processes itself (the "no internal processes" rule).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <sstream>
#include <thread>

#include "base/fd.h"
#include "base/strings.h"
#include "sandbox/cgroup.h"

namespace kiln::sandbox::cgroup {

namespace {

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

class CgroupV2 final : public Cgroup {
 public:
  explicit CgroupV2(std::string dir) : dir_(std::move(dir)) {}
  ~CgroupV2() override { (void)Destroy(); }

  Version version() const override { return Version::kV2; }
  std::vector<std::string> paths() const override { return {dir_}; }

  Status AddProcess(pid_t pid) override {
    if (auto s = WriteFile(dir_ + "/cgroup.procs", std::to_string(pid)); !s) {
      return s.error().Wrap("adding pid " + std::to_string(pid) + " to the cgroup");
    }
    return Ok();
  }

  Result<Stats> ReadStats() const override {
    Stats st;
    st.memory_peak_bytes = ReadNumber(dir_ + "/memory.peak");
    st.oom_kills = ReadKeyed(dir_ + "/memory.events", "oom_kill").value_or(0);
    st.cpu_usec = ReadKeyed(dir_ + "/cpu.stat", "usage_usec");
    st.pids_peak = ReadNumber(dir_ + "/pids.peak");
    return st;
  }

  Status KillAll() override {
    // cgroup.kill (Linux 5.14) kills atomically, fork bombs included; older
    // kernels fall back to freezing and killing in a loop.
    if (Exists(dir_ + "/cgroup.kill")) {
      KILN_TRY(WriteFile(dir_ + "/cgroup.kill", "1"));
    } else if (Exists(dir_ + "/cgroup.freeze")) {
      (void)WriteFile(dir_ + "/cgroup.freeze", "1");
      if (auto procs = ReadProcs(dir_)) {
        for (pid_t pid : *procs) ::kill(pid, SIGKILL);
      }
      (void)WriteFile(dir_ + "/cgroup.freeze", "0");
    }
    return KillProcs(dir_);
  }

 private:
  std::string dir_;
};

// Enables the controllers in `dir`'s cgroup.subtree_control, after checking
// that `dir` offers them.
Status EnableControllers(const std::string& dir, const std::vector<std::string>& controllers) {
  KILN_ASSIGN_OR_RETURN(std::string available, ReadFile(dir + "/cgroup.controllers"));
  std::istringstream in(available);
  std::vector<std::string> have;
  for (std::string c; in >> c;) have.push_back(c);
  for (const std::string& c : controllers) {
    if (std::find(have.begin(), have.end(), c) == have.end()) {
      return Error::Unsupported("cgroup v2 controller " + Quote(c) + " is not available in " +
                                Quote(dir + "/cgroup.controllers") +
                                ", so its limit cannot be applied");
    }
    auto enabled = ReadFile(dir + "/cgroup.subtree_control");
    if (enabled && enabled->find(c) != std::string::npos) continue;
    KILN_TRY(WriteFile(dir + "/cgroup.subtree_control", "+" + c));
  }
  return Ok();
}

Status ApplyLimits(const std::string& dir, const Limits& limits) {
  if (limits.memory_bytes) {
    KILN_TRY(WriteFile(dir + "/memory.max", std::to_string(*limits.memory_bytes)));
    if (Exists(dir + "/memory.swap.max")) KILN_TRY(WriteFile(dir + "/memory.swap.max", "0"));
  }
  if (limits.pids) KILN_TRY(WriteFile(dir + "/pids.max", std::to_string(*limits.pids)));
  if (limits.cpus) {
    constexpr uint64_t kPeriod = 100000;
    auto quota = std::max<uint64_t>(static_cast<uint64_t>(*limits.cpus * kPeriod), 1000);
    KILN_TRY(WriteFile(dir + "/cpu.max", std::to_string(quota) + " " + std::to_string(kPeriod)));
  }
  return Ok();
}

}  // namespace

Result<std::unique_ptr<Cgroup>> CreateV2(const std::string& name, const Limits& limits,
                                         const Options& options) {
  std::vector<std::string> controllers;
  if (limits.memory_bytes) controllers.push_back("memory");
  if (limits.pids) controllers.push_back("pids");
  if (limits.cpus) controllers.push_back("cpu");

  // Walk from the root down to the parent, creating and enabling as we go.
  std::string dir = options.root;
  for (const std::string& part : Split(options.parent, '/')) {
    if (part.empty()) continue;
    if (auto s = EnableControllers(dir, controllers); !s) {
      return s.error().Wrap("preparing cgroup parent");
    }
    dir += "/" + part;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return Error::Sys("mkdir(" + Quote(dir) + ", 0755)", errno).Wrap("creating cgroup parent");
    }
  }
  if (auto s = EnableControllers(dir, controllers); !s)
    return s.error().Wrap("preparing cgroup parent");
  std::string mine = dir + "/" + name;
  if (::mkdir(mine.c_str(), 0755) != 0) {
    return Error::Sys("mkdir(" + Quote(mine) + ", 0755)", errno).Wrap("creating cgroup");
  }
  auto cg = std::make_unique<CgroupV2>(mine);
  if (auto s = ApplyLimits(mine, limits); !s) return s.error().Wrap("applying cgroup limits");
  return std::unique_ptr<Cgroup>(std::move(cg));
}

}  // namespace kiln::sandbox::cgroup
