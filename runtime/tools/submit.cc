#include "runtime/tools/submit.h"

#include "runtime/tools/json_schema.h"

namespace kiln::tool_submit {
namespace {

bool IsObjectSchema(const nlohmann::json& s) {
  return s.is_object() && s.value("type", nlohmann::json()) == "object";
}

}  // namespace

nlohmann::json InputSchema(const nlohmann::json& result_schema) {
  if (IsObjectSchema(result_schema)) return result_schema;
  return {{"type", "object"},
          {"properties", {{"result", result_schema}}},
          {"required", {"result"}},
          {"additionalProperties", false}};
}

tool::Output Run(const nlohmann::json& result_schema, const nlohmann::json& input) {
  nlohmann::json result =
      IsObjectSchema(result_schema) ? input : input.value("result", nlohmann::json());
  auto errors = json_schema::Validate(result_schema, result);
  if (!errors.empty()) {
    std::string msg = "the result does not match the role's result schema; fix and submit again:";
    for (const auto& e : errors) msg += "\n- " + e;
    return tool::Output::Err(msg);
  }
  tool::Output o = tool::Output::Text("result accepted; the run ends here");
  o.submitted = std::move(result);
  return o;
}

tool::Def Make(const nlohmann::json& result_schema) {
  tool::Def d;
  d.name = "submit";
  d.description =
      "Submit the final result of your task. This ends the run; call it once the work is done. "
      "The input must match the result schema.";
  d.input_schema = InputSchema(result_schema);
  d.run = [result_schema](const nlohmann::json& input) { return Run(result_schema, input); };
  return d;
}

}  // namespace kiln::tool_submit
