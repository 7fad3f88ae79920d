// On-disk state of running sandboxes, so that `kiln sandbox gc` can clean up
// after a supervisor that was SIGKILLed.
//
// Each sandbox has one record, <state>/run/<id>.json, created before anything
// else (renamed into place without replacing, which also claims the id): who
// supervises the sandbox and where its cgroup lives. Mounts live only in the
// sandbox's mount namespace and vanish with it; the rootfs tmpfs of every
// sandbox is mounted on the one directory <state>/mnt, each in its own
// namespace.
//
// A removed record is not unlinked but moved to <state>/run/.spare/, and the
// next record reuses its inode: on ext4, allocating an inode and freeing it
// again cost about 1 ms per sandbox when sandboxes start back to back, a
// fifth of a sandbox's start-to-exit (docs/BENCHMARKS.md). The spares number
// at most the most sandboxes that ran at once.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.h"

namespace kiln::sandbox::state {

// /var/lib/kiln as root; $XDG_STATE_HOME/kiln or ~/.local/state/kiln otherwise.
std::string DefaultDir();

// Creates dir, <dir>/run, <dir>/run/.spare and <dir>/mnt if needed.
Status Prepare(const std::string& dir);

// The (always empty on the host) mount point of every sandbox's rootfs tmpfs.
std::string MountPoint(const std::string& state_dir);

struct Record {
  std::string id;
  pid_t supervisor_pid = 0;
  uint64_t supervisor_start = 0;  // /proc/<pid>/stat starttime, against pid reuse
  std::string cgroup_root;        // empty: no cgroup
  std::string cgroup_parent;
};

std::string RecordPath(const std::string& state_dir, const std::string& id);
// Creates the record; fails with kInvalidArgument if the id is in use.
Status Create(const std::string& state_dir, const Record& record);
Result<Record> Read(const std::string& state_dir, const std::string& id);
Status Remove(const std::string& state_dir, const std::string& id);

// Start time of a process (clock ticks since boot), 0 if it does not exist
// or has exited (a zombie).
uint64_t ProcessStartTime(pid_t pid);

struct GcResult {
  std::vector<std::string> removed;  // sandbox ids cleaned up
  std::vector<std::string> alive;    // sandboxes whose supervisor still runs
  std::vector<std::string> errors;
};

// Cleans up every sandbox whose supervisor is gone: kills what is left in its
// cgroup, removes the cgroup and the record. Then removes cgroups under
// <cgroup_root>/.../<cgroup_parent> (and the parents records name) that
// belong to no running sandbox: created by a supervisor that died.
GcResult Gc(const std::string& state_dir, const std::string& cgroup_root,
            const std::string& cgroup_parent);

}  // namespace kiln::sandbox::state
