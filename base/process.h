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

struct FilterResult {
  int status = 0;  // the exit code, or 128 + the signal that killed it
  std::string out, err;
};

// Runs program (an absolute path) with exactly env ("NAME=VALUE"; nothing
// inherited), input written to its stdin while its stdout and stderr are
// read (no deadlock however large either side). Output past max_out bytes
// kills the program and is an error naming the limit.
Result<FilterResult> RunFilter(const std::string& program, const std::vector<std::string>& args,
                               const std::vector<std::string>& env, std::string_view input,
                               size_t max_out);

}  // namespace kiln
