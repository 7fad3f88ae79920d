// The tool set of a run: the six tools, filtered by the run spec's allowed
// list, and the dispatcher that turns every bad call (an unknown tool,
// arguments that do not match the tool's schema) into a tool error for the
// model instead of a crash.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/tools/tool.h"
#include "runtime/tools/workspace_path.h"

namespace kiln::tools {

inline const std::vector<std::string>& AllNames() {
  static const std::vector<std::string> k = {"shell", "read", "write", "edit", "search", "submit"};
  return k;
}

class ToolSet {
 public:
  // `allowed` lists tool names; `submit` is always present because it is the
  // only way a run succeeds. The workspace must outlive the set.
  static Result<std::unique_ptr<ToolSet>> Make(const workspace_path::Workspace& ws,
                                               const tool::Limits& limits,
                                               const std::vector<std::string>& allowed,
                                               const nlohmann::json& result_schema);

  const std::vector<tool::Def>& defs() const { return defs_; }
  tool::Output Call(const std::string& name, const nlohmann::json& input) const;

 private:
  std::vector<tool::Def> defs_;
};

}  // namespace kiln::tools
