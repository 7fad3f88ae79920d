// Running a helper program (mmdebstrap, ldd) to its end: its stdout and
// stderr read together, line by line, as it runs.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace kiln {

struct ProcessResult {
  int status = 0;  // the exit code, or 128 + the signal that killed it
  std::string output;
};

// Runs argv[0] (looked up in PATH) with the environment plus extra_env
// ("NAME=VALUE"), stdin from /dev/null; calls on_line with each line of
// output when given; keeps at most keep_bytes of the output's end. A program
// that cannot be started is an error (kUnsupported when it is not
// installed); a non-zero exit is not.
Result<ProcessResult> RunProgram(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& extra_env = {},
                                 const std::function<void(const std::string&)>& on_line = nullptr,
                                 size_t keep_bytes = 1 << 20);

// Runs program (an absolute path) with exactly env ("NAME=VALUE"; nothing
// inherited), its stdin fed from feed (called for the next piece once the
// last is written; an empty piece ends the input) while its stdout is
// handed to out as it comes and its stderr kept, up to max_err bytes:
// neither side held whole. feed may block while output waits, which suits
// a program that reads its input before it answers. An error of feed or
// out, or stderr past max_err, kills the program (and its process group,
// which it leads) and is the result.
using Feed = std::function<Result<std::string>()>;
using Sink = std::function<Status(std::string_view)>;
struct PipedResult {
  int status = 0;  // the exit code, or 128 + the signal that killed it
  std::string err;
};
Result<PipedResult> RunPiped(const std::string& program, const std::vector<std::string>& args,
                             const std::vector<std::string>& env, const Feed& feed, const Sink& out,
                             size_t max_err);

}  // namespace kiln
