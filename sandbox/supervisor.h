// The supervisor: everything a sandbox needs from outside. It prepares the
// image, the cgroup and the seccomp program, clones the sandbox's init into
// fresh namespaces, maps ids, waits (timeout, signals, seccomp denials), and
// tears everything down on every ending. This is the library entry point
// behind `kiln sandbox run`.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "base/result.h"
#include "sandbox/spec.h"

namespace kiln::sandbox {

// What happened, for the caller and for --report.
struct Report {
  std::string id;
  int status = 0;                // kiln's exit status: the command's, 128+signal, or 125-127
  std::optional<int> exit_code;  // the command exited with this code
  std::optional<int> signal;     // the command was killed by this signal
  std::string error;             // why the command never ran (status 125-127)
  double wall_seconds = 0;
  double cpu_seconds = 0;  // user + system of every process in the sandbox
  std::optional<uint64_t> memory_peak_bytes;
  bool oom_killed = false;
  bool timed_out = false;
  std::optional<uint64_t> pids_peak;
  uint64_t seccomp_denials = 0;
  std::map<std::string, uint64_t> denied_syscalls;  // name -> count; at most 1024 names, the rest
                                                    // counted under "other"
};

std::string ReportJson(const Report& report);

// Runs spec to completion. An Error means nothing was started (bad input, a
// missing feature); once the sandbox started, failures are in the Report.
Result<Report> Run(const Spec& spec);

}  // namespace kiln::sandbox
