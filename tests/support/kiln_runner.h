// Test support for the suites that drive the real `kiln` binary: running it
// with captured output, and snapshots of the host state a sandbox must leave
// as it found it (mounts, cgroups, state directories, processes).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace kiln::testing {

struct Outcome {
  int status = -1;  // exit code, or 128+signal
  std::string out, err;
};

struct RunOptions {
  std::optional<uid_t> as_uid;  // drop to this uid/gid before exec (rootless tests)
  std::optional<gid_t> as_gid;
  std::string stdin_data;
  int timeout_seconds = 120;
  std::vector<int> keep_fds;  // inherited by kiln at the same numbers
};

// Path of the kiln binary under test (set by CMake).
std::string KilnBinary();
// Directory holding the test helper binaries (set by CMake).
std::string HelperDir();

Outcome Run(const std::vector<std::string>& argv, const RunOptions& options = {});

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// `kiln serve --config config` as a child process, its output appended to
// log; SIGTERM (and a wait) on destruction.
class Daemon {
 public:
  Daemon(const std::string& config, const std::string& log, const std::string& log_format = "text");
  ~Daemon() { Stop(SIGTERM); }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  pid_t pid() const { return pid_; }
  // Sends sig and reaps; returns the wait status.
  int Stop(int sig);

 private:
  pid_t pid_ = -1;
};
// Runs `kiln sandbox run <sandbox_args> -- <command>` with a per-test state
// directory and cgroup parent, so parallel tests do not see each other.
Outcome Sandbox(const std::vector<std::string>& sandbox_args,
                const std::vector<std::string>& command, const RunOptions& options = {});

// The per-process state directory and cgroup parent Sandbox() uses.
const std::string& TestStateDir();
const std::string& TestCgroupParent();

struct HostState {
  std::set<std::string> mounts;    // "mountpoint fstype" of the test process's namespace,
                                   // except other test processes' under /tmp/kiln-*
  std::set<std::string> cgroups;   // directories below the test cgroup parent, every hierarchy
  std::set<std::string> run_dirs;  // sandboxes in the test state directory
  bool operator==(const HostState&) const = default;
};
HostState Snapshot();
// Human-readable difference, empty when equal.
std::string Diff(const HostState& before, const HostState& after);

// Pids of processes whose command line contains `marker`.
std::vector<pid_t> ProcessesMatching(const std::string& marker);

std::string ReadAll(const std::string& path);
void WriteAll(const std::string& path, const std::string& data, int mode = 0644);

}  // namespace kiln::testing
