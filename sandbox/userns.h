// The sandbox's user namespace. Every sandbox has one, so that its processes
// are never host root, even when they are uid 0 inside:
// - as root, inside ids 0..65535 map to host ids kHostIdBase..+65535;
// - unprivileged, the one inside uid/gid maps to the caller's uid/gid
//   (the kernel allows nothing more without setuid helpers).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "base/result.h"

namespace kiln::sandbox::userns {

// First host uid/gid of a root-started sandbox's id range.
constexpr uint32_t kHostIdBase = 200000000;
constexpr uint32_t kIdCount = 65536;

struct Mapping {
  bool rootless = false;
  uint32_t inside_uid = 0;  // rootless: the one mapped uid
  uint32_t inside_gid = 0;
  uint32_t host_uid = 0;  // rootless: the caller's ids; root: kHostIdBase
  uint32_t host_gid = 0;
  uint32_t count = 1;
};

// The mapping for a sandbox whose command runs as uid/gid inside, started by
// the calling process.
Mapping ForCaller(uint32_t uid, uint32_t gid);

// Writes /proc/<pid>/{setgroups,uid_map,gid_map}. Called by the supervisor
// after clone and before the child goes on.
Status WriteMaps(pid_t pid, const Mapping& m);

// The uid the sandbox's init uses for setup: inside root when the whole range
// is mapped, the one mapped uid otherwise.
inline uint32_t SetupUid(const Mapping& m) { return m.rootless ? m.inside_uid : 0; }
inline uint32_t SetupGid(const Mapping& m) { return m.rootless ? m.inside_gid : 0; }

// Host uid that an inside uid maps to (for chown of workspaces by the caller).
inline uint32_t HostUid(const Mapping& m, uint32_t inside) {
  return m.rootless ? m.host_uid : m.host_uid + inside;
}

}  // namespace kiln::sandbox::userns
