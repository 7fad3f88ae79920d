// A validator for the subset of JSON Schema that role results and tool
// arguments use. Supported keywords: type (a name or a list of names),
// properties, required, additionalProperties (bool or schema), enum, const,
// items, minItems/maxItems, minLength/maxLength (in code points),
// minimum/maximum, and description/title/default/$schema (ignored). Any other
// keyword is rejected when the schema is checked, so a role's schema never
// silently validates less than its author meant.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::json_schema {

// Checks that schema uses only the supported subset. The error names the
// JSON pointer of the offending keyword.
Status CheckSchema(const nlohmann::json& schema);

// Every violation of value against schema, each as "<json pointer>: <why>",
// e.g. "/files/0: expected string, got number". Empty when value validates.
std::vector<std::string> Validate(const nlohmann::json& schema, const nlohmann::json& value);

}  // namespace kiln::json_schema
