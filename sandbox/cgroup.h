// Resource limits through cgroups: one interface, a cgroup v1 backend
// (cgroup_v1.cc: one directory per controller hierarchy) and a v2 backend
// (cgroup_v2.cc: one directory in the unified hierarchy), chosen by Detect().
// A Cgroup belongs to one sandbox; the supervisor creates it before the
// sandbox starts and destroys it after the last process is gone.
// Not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "sandbox/spec.h"

namespace kiln::sandbox::cgroup {

enum class Version { kV1, kV2 };

struct Stats {
  std::optional<uint64_t> memory_peak_bytes;
  std::optional<uint64_t> cpu_usec;
  std::optional<uint64_t> pids_peak;
  uint64_t oom_kills = 0;
};

class Cgroup {
 public:
  virtual ~Cgroup() = default;
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;

  virtual Version version() const = 0;
  // Every directory of this cgroup (one per v1 hierarchy, one for v2).
  virtual std::vector<std::string> paths() const = 0;
  virtual Status AddProcess(pid_t pid) = 0;
  virtual Result<Stats> ReadStats() const = 0;
  // SIGKILLs every process in the cgroup and waits (bounded) until it is empty.
  virtual Status KillAll() = 0;
  // Removes the directories, killing what is left first. A sandbox's cgroup
  // is normally empty by then, since reaping its pid 1 ends every process of
  // its pid namespace: it is read and killed only when a directory is busy.
  // Idempotent; the backends' destructors call it.
  Status Destroy();

 protected:
  Cgroup() = default;

 private:
  bool destroyed_ = false;
};

struct Options {
  std::string root = "/sys/fs/cgroup";  // where the hierarchies are mounted
  std::string parent = "kiln";          // relative to each hierarchy's root
};

// Which layout the host uses: v2 when `root` itself is cgroup2; v1 when the
// memory, pids and cpu controllers are bound to v1 hierarchies (hybrid hosts
// such as this one keep an empty cgroup2 at root/unified).
Result<Version> Detect(const std::string& root = "/sys/fs/cgroup");

// Creates the cgroup `name` under options.parent with the limits applied.
Result<std::unique_ptr<Cgroup>> Create(Version version, const std::string& name,
                                       const Limits& limits, const Options& options = {});

// Backends, for tests that want one explicitly.
Result<std::unique_ptr<Cgroup>> CreateV1(const std::string& name, const Limits& limits,
                                         const Options& options);
Result<std::unique_ptr<Cgroup>> CreateV2(const std::string& name, const Limits& limits,
                                         const Options& options);

// Removes a cgroup left behind by a supervisor that died: kills what is in
// each directory, then removes it. Missing directories are fine.
Status RemoveLeftover(const std::vector<std::string>& paths);

// --- shared by the backends ---------------------------------------------

// Pids listed in dir/cgroup.procs.
Result<std::vector<pid_t>> ReadProcs(const std::string& dir);
// SIGKILL everything in dir until cgroup.procs stays empty (bounded wait).
Status KillProcs(const std::string& dir);
// rmdir, retrying while the kernel still reports the cgroup busy.
Status RemoveDir(const std::string& dir);
// Reads "key value" lines (memory.events, cpu.stat, memory.oom_control).
std::optional<uint64_t> ReadKeyed(const std::string& file, const std::string& key);
// Reads a file holding one number; nullopt when absent or "max".
std::optional<uint64_t> ReadNumber(const std::string& file);

}  // namespace kiln::sandbox::cgroup
