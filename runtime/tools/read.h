// The `read` tool: a text file of the workspace with numbered lines, a line
// range at a time; binary files are refused with their size.
#pragma once

#include <string>

#include "base/result.h"
#include "runtime/tools/tool.h"
#include "runtime/tools/workspace_path.h"

namespace kiln::tool_read {

// The whole content of a regular file beneath the workspace, refusing files
// larger than max_bytes. Shared with `edit`.
Result<std::string> ReadWhole(const workspace_path::Workspace& ws, const std::string& path,
                              size_t max_bytes);

// input: {"path": str, "offset": first line (1-based), "limit": line count}.
tool::Output Run(const workspace_path::Workspace& ws, const tool::Limits& limits,
                 const nlohmann::json& input);

tool::Def Make(const workspace_path::Workspace& ws, const tool::Limits& limits);

}  // namespace kiln::tool_read
