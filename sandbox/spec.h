// What a sandbox is asked to be: the command, its filesystem view, its
// identity and its limits. Filled from `kiln sandbox run` options or by the
// controller; validated by Validate() before anything is created.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace kiln::sandbox {

struct BindMount {
  std::string source;  // host path; must exist
  std::string dest;    // absolute path inside the sandbox
  bool read_only = false;
  friend bool operator==(const BindMount&, const BindMount&) = default;
};

struct TmpfsMount {
  std::string dest;                   // absolute path inside the sandbox
  uint64_t size_bytes = 64ull << 20;  // default 64 MiB
  friend bool operator==(const TmpfsMount&, const TmpfsMount&) = default;
};

struct Limits {
  std::optional<uint64_t> memory_bytes = 2ull
                                         << 30;  // cgroup memory limit, swap off; nullopt = none
  std::optional<uint64_t> pids =
      1024;                            // cgroup pids.max (RLIMIT_NPROC without one); nullopt = none
  std::optional<double> cpus;          // CPU quota in cores (1.5 = 150%); nullopt = none
  uint64_t nofile = 1024;              // RLIMIT_NOFILE soft and hard
  uint64_t fsize_bytes = 1ull << 30;   // RLIMIT_FSIZE, largest file the command may write
  uint64_t timeout_ms = 0;             // wall clock; 0 = none
  uint64_t grace_ms = 2000;            // SIGTERM -> SIGKILL delay after timeout
  uint64_t rootfs_bytes = 1ull << 30;  // size of the tmpfs holding the overlay upper
  friend bool operator==(const Limits&, const Limits&) = default;
};

struct Spec {
  std::vector<std::string> argv;  // the command; argv[0] is looked up in PATH inside
  std::string image = "host";     // "host", or a directory holding a root filesystem
  // Instead of image: an image's layer directories, bottom first, stacked as
  // the overlay's lower layers (kiln's image store; docs/images.md).
  std::vector<std::string> layers;
  std::vector<BindMount> binds;
  std::vector<TmpfsMount> tmpfs;
  std::optional<std::string> workspace;  // host directory mounted read-write at /workspace
  std::vector<std::string> env;          // "NAME=VALUE"; the environment is otherwise minimal
  std::string workdir;                   // empty: /workspace if a workspace is given, else /
  std::string hostname = "kiln";
  uint32_t uid = 1000;  // uid and gid of the command inside the sandbox
  uint32_t gid = 1000;
  Limits limits;
  bool use_cgroup = true;      // false: rlimits and namespaces only (rootless without delegation)
  std::string seccomp_policy;  // path to a policy file; empty = built-in default policy
  bool seccomp_log = false;    // print every denied system call as it happens
  std::vector<int> pass_fds;   // host fds handed to the command at the same numbers
  std::string state_dir;       // empty: /var/lib/kiln as root, $XDG_STATE_HOME/kiln otherwise
  std::string cgroup_root = "/sys/fs/cgroup";  // where the cgroup hierarchies are mounted
  std::string cgroup_parent = "kiln";          // relative to each hierarchy's root
  std::string id;                              // empty: generated
  friend bool operator==(const Spec&, const Spec&) = default;
};

// Checks what can be checked without touching the system: absolute
// destinations, no duplicate or reserved mount points, a non-empty argv.
Status Validate(const Spec& spec);

// "SRC:DST[:ro|:rw]" -> BindMount.
Result<BindMount> ParseBind(std::string_view text);
// "DST[:SIZE]" -> TmpfsMount.
Result<TmpfsMount> ParseTmpfs(std::string_view text);
// "NAME=VALUE" or "NAME" (value taken from the caller's environment).
Result<std::string> ParseEnv(std::string_view text);

}  // namespace kiln::sandbox
