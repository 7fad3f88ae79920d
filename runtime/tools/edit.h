// The `edit` tool: replaces an exact string in a workspace file. The string
// must occur exactly once unless replace_all is set, so that an edit never
// lands on a place the model did not mean.
#pragma once

#include "runtime/tools/tool.h"
#include "runtime/tools/workspace_path.h"

namespace kiln::tool_edit {

// input: {"path", "old_string", "new_string", "replace_all": bool}.
tool::Output Run(const workspace_path::Workspace& ws, const tool::Limits& limits,
                 const nlohmann::json& input);

tool::Def Make(const workspace_path::Workspace& ws, const tool::Limits& limits);

}  // namespace kiln::tool_edit
