// The `shell` tool: `bash -c COMMAND` in the workspace, stdout and stderr
// merged, stdin from /dev/null, in its own process group so that a timeout
// kills everything the command started. Output beyond the limit keeps its
// head and tail. Leftover processes of the group are killed when bash exits
// (a daemon must setsid to outlive its call). Confinement of what the command
// can touch is the sandbox's job, not this tool's.
#pragma once

#include <string>

#include "runtime/tools/tool.h"

namespace kiln::tool_shell {

struct Request {
  std::string command;
  std::string cwd;
  uint64_t timeout_ms = 120'000;
  size_t max_output_bytes = 32 * 1024;
};

// Runs the command. exit_status is bash's status or 128+signal; on timeout
// it is empty and the content says so.
tool::Output Run(const Request& req);

tool::Def Make(const std::string& workspace_root, const tool::Limits& limits);

}  // namespace kiln::tool_shell
