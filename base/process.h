// Running a helper program (mmdebstrap, ldd) to its end: its stdout and
// stderr read together, line by line, as it runs.
#pragma once

#include <functional>
#include <string>
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

}  // namespace kiln
