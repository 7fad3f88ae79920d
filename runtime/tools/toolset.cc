#include "runtime/tools/toolset.h"

#include <algorithm>

#include "runtime/tools/edit.h"
#include "runtime/tools/json_schema.h"
#include "runtime/tools/read.h"
#include "runtime/tools/search.h"
#include "runtime/tools/shell.h"
#include "runtime/tools/submit.h"
#include "runtime/tools/write.h"

namespace kiln::tools {

Result<std::unique_ptr<ToolSet>> ToolSet::Make(const workspace_path::Workspace& ws,
                                               const tool::Limits& limits,
                                               const std::vector<std::string>& allowed,
                                               const nlohmann::json& result_schema) {
  KILN_TRY(json_schema::CheckSchema(result_schema));
  auto set = std::unique_ptr<ToolSet>(new ToolSet());
  auto want = [&](const std::string& n) {
    return n == "submit" || std::find(allowed.begin(), allowed.end(), n) != allowed.end();
  };
  for (const auto& n : allowed) {
    if (std::find(AllNames().begin(), AllNames().end(), n) == AllNames().end()) {
      return Error::Invalid("tools.allowed: unknown tool " + Quote(n));
    }
  }
  if (want("shell")) set->defs_.push_back(tool_shell::Make(ws.root(), limits));
  if (want("read")) set->defs_.push_back(tool_read::Make(ws, limits));
  if (want("write")) set->defs_.push_back(tool_write::Make(ws));
  if (want("edit")) set->defs_.push_back(tool_edit::Make(ws, limits));
  if (want("search")) set->defs_.push_back(tool_search::Make(ws, limits));
  set->defs_.push_back(tool_submit::Make(result_schema));
  return set;
}

tool::Output ToolSet::Call(const std::string& name, const nlohmann::json& input) const {
  auto it = std::find_if(defs_.begin(), defs_.end(), [&](const auto& d) { return d.name == name; });
  if (it == defs_.end()) {
    std::string names;
    for (const auto& d : defs_) names += (names.empty() ? "" : ", ") + d.name;
    return tool::Output::Err("unknown tool " + Quote(name) + "; the tools are: " + names);
  }
  // submit reports its own schema errors in the role's terms.
  if (name != "submit") {
    auto errors = json_schema::Validate(it->input_schema, input);
    if (!errors.empty()) {
      std::string msg = "invalid arguments for " + name + ":";
      for (const auto& e : errors) msg += "\n- " + e;
      return tool::Output::Err(msg);
    }
  }
  try {
    return it->run(input);
  } catch (const std::exception& e) {
    // A tool must never take the loop down; report what broke instead.
    return tool::Output::Err(name + " failed: " + e.what());
  }
}

}  // namespace kiln::tools
