// The `write` tool: creates or replaces a workspace file atomically (a
// temporary file in the same directory, then rename), creating missing
// directories. Replacing a symlink replaces the link, never its target.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "runtime/tools/tool.h"
#include "runtime/tools/workspace_path.h"

namespace kiln::tool_write {

// Writes data to path atomically; keeps the mode of a regular file it replaces.
Status WriteAtomic(const workspace_path::Workspace& ws, const std::string& path,
                   std::string_view data);

// input: {"path": str, "content": str}.
tool::Output Run(const workspace_path::Workspace& ws, const nlohmann::json& input);

tool::Def Make(const workspace_path::Workspace& ws);

}  // namespace kiln::tool_write
