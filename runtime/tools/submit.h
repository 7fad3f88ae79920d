// The `submit` tool: ends the run with the role's result. The tool's input is
// the result itself when the role's schema describes an object (what both
// model APIs require of tool input); any other schema is wrapped as
// {"result": ...}. A result that does not validate goes back to the model as
// a tool error listing every violation, and the run continues.
#pragma once

#include "runtime/tools/tool.h"

namespace kiln::tool_submit {

// The tool's input schema for a role's result schema.
nlohmann::json InputSchema(const nlohmann::json& result_schema);

tool::Output Run(const nlohmann::json& result_schema, const nlohmann::json& input);

tool::Def Make(const nlohmann::json& result_schema);

}  // namespace kiln::tool_submit
