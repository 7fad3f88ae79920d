// The `search` tool: a POSIX extended regular expression over the lines of
// the workspace's text files, like `grep -rnE`, honouring .gitignore files,
// skipping .git, binary files, symlinks and files over the size limit.
// POSIX regex rather than std::regex: libstdc++'s recursive matcher can
// overflow the stack on long lines, and the model controls both inputs.
#pragma once

#include "runtime/tools/tool.h"
#include "runtime/tools/workspace_path.h"

namespace kiln::tool_search {

// input: {"pattern": regex, "path": directory or file (default "."),
//         "glob": file-name filter such as "*.cc", "ignore_case": bool,
//         "max_results": int}.
tool::Output Run(const workspace_path::Workspace& ws, const tool::Limits& limits,
                 const nlohmann::json& input);

tool::Def Make(const workspace_path::Workspace& ws, const tool::Limits& limits);

}  // namespace kiln::tool_search
