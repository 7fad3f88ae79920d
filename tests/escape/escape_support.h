// Support for the escape suite: the fixture every attack test uses, the host
// state it compares before and after each attack (beyond Snapshot(): host
// files, global kernel knobs, cgroup release agents, keyrings), and small
// host-side helpers (a host process to attack, digests, kiln's report).
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/kiln_runner.h"

namespace kiln::testing::escape {

// The attacker, as seen on the host and inside (bound at /attack).
std::string AttackBinary();
constexpr const char* kAttackInside = "/attack/kiln-attack";
// Host id the sandbox's inside uid 0 maps to when kiln runs as root.
constexpr uid_t kInsideRootOnHost = 200000000;

// Hex SHA-256 of a file's content; empty if it cannot be read.
std::string Sha256(const std::string& path);
// Content digest plus mtime, size, mode and owner: what an overwrite changes.
std::string FileStamp(const std::string& path);

// Host state that no attack may change. Knobs (/proc/sys, /sys, cgroup
// release agents) that did change are written back by Restore(), so that an
// escape fails its test without breaking the host for the others.
class HostWatch {
 public:
  static HostWatch Capture(const std::vector<std::string>& extra_files = {});
  // One line per difference; empty when equal.
  std::string DiffTo(const HostWatch& after) const;
  void Restore(const HostWatch& after) const;

 private:
  std::map<std::string, std::string> files_, knobs_, other_;
};

// A process on the host that attacks aim at (kill, ptrace, setns). It runs
// `sleep` with a marker in its command line, optionally as another uid.
class HostProcess {
 public:
  explicit HostProcess(std::optional<uid_t> as_uid = std::nullopt);
  ~HostProcess();
  HostProcess(const HostProcess&) = delete;
  HostProcess& operator=(const HostProcess&) = delete;
  pid_t pid() const { return pid_; }
  bool Alive() const;
  // /proc/<pid>/status's TracerPid: "0" unless something attached.
  std::string TracerPid() const;

 private:
  pid_t pid_ = -1;
};

// Seconds to fork, exec and reap /bin/true on the host: its responsiveness.
double HostSpawnSeconds();
// MemAvailable of /proc/meminfo, in bytes.
uint64_t HostMemAvailable();
// kiln's --report file.
nlohmann::json ReadReport(const std::string& path);

// The single line an attack printed, without its newline ("" if not one line).
std::string VerdictLine(const Outcome& o);

// Passes when the attack printed one "BLOCKED ..." line containing every
// fragment and kiln exited with `status`.
::testing::AssertionResult Blocked(const Outcome& o, const std::vector<std::string>& fragments = {},
                                   int status = 0);

// Every attack test: records the host before, checks it after (mounts,
// cgroups, state directories, watched files and knobs, no process left with
// the test's marker).
class EscapeTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Runs `kiln-attack name args...` in a sandbox with the attacker bound at
  // /attack, plus sandbox_args; a 60 s timeout unless sandbox_args sets one.
  Outcome Attack(const std::string& name, const std::vector<std::string>& args = {},
                 const std::vector<std::string>& sandbox_args = {}, const RunOptions& options = {});
  // The kiln command line Attack() runs (for tests that start kiln themselves).
  std::vector<std::string> AttackArgv(const std::string& kiln, const std::string& name,
                                      const std::vector<std::string>& args,
                                      const std::vector<std::string>& sandbox_args,
                                      const std::optional<uid_t>& as_uid = std::nullopt);
  // More host files whose content and mtime must not change.
  void WatchFile(const std::string& path) { extra_files_.push_back(path); }
  // Call after WatchFile() to take the "before" picture again.
  void Recapture() { watch_ = HostWatch::Capture(extra_files_); }

  const std::string& marker() const { return marker_; }

 private:
  HostState before_;
  HostWatch watch_;
  std::vector<std::string> extra_files_;
  std::string marker_;
};

}  // namespace kiln::testing::escape
