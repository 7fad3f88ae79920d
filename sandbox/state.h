// On-disk state of running sandboxes, so that `kiln sandbox gc` can clean up
// after a supervisor that was SIGKILLed. Each sandbox has a directory
// <state>/run/<id>/ holding record.json (who supervises it, which cgroup
// directories it owns) and the mount point of its rootfs tmpfs. Mounts
// themselves live only in the sandbox's mount namespace and vanish with it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.h"

namespace kiln::sandbox::state {

// /var/lib/kiln as root; $XDG_STATE_HOME/kiln or ~/.local/state/kiln otherwise.
std::string DefaultDir();

// Creates dir (and <dir>/run) if needed.
Status Prepare(const std::string& dir);

struct Record {
  std::string id;
  pid_t supervisor_pid = 0;
  uint64_t supervisor_start = 0;  // /proc/<pid>/stat starttime, against pid reuse
  std::vector<std::string> cgroup_paths;
};

std::string RunDir(const std::string& state_dir, const std::string& id);
Status Write(const std::string& state_dir, const Record& record);
Result<Record> Read(const std::string& state_dir, const std::string& id);
// Removes the sandbox's directory. Its mount point is empty on the host.
Status Remove(const std::string& state_dir, const std::string& id);

// Start time of a process (clock ticks since boot), 0 if it does not exist.
uint64_t ProcessStartTime(pid_t pid);

struct GcResult {
  std::vector<std::string> removed;  // sandbox ids cleaned up
  std::vector<std::string> alive;    // sandboxes whose supervisor still runs
  std::vector<std::string> errors;
};

// Cleans up every sandbox whose supervisor is gone: kills its cgroup's
// processes, removes its cgroup directories and state directory. Also removes
// cgroups under `cgroup_parents` that belong to no known sandbox.
GcResult Gc(const std::string& state_dir, const std::vector<std::string>& cgroup_parents);

}  // namespace kiln::sandbox::state
