#include "runtime/tools/edit.h"

#include <algorithm>
#include <vector>

#include "runtime/tools/read.h"
#include "runtime/tools/write.h"

namespace kiln::tool_edit {

tool::Output Run(const workspace_path::Workspace& ws, const tool::Limits& limits,
                 const nlohmann::json& input) {
  std::string path = tool::StringArg(input, "path");
  std::string old_s = tool::StringArg(input, "old_string");
  std::string new_s = tool::StringArg(input, "new_string");
  bool all = input.value("replace_all", false);
  if (old_s.empty()) return tool::Output::Err("old_string is empty; use write to create a file");
  if (old_s == new_s) return tool::Output::Err("old_string and new_string are identical");
  auto data = tool_read::ReadWhole(ws, path, limits.read_max_file_bytes);
  if (!data.ok()) return tool::Output::Err(data.error().message());
  if (tool::LooksBinary(*data)) {
    return tool::Output::Err("binary file " + Quote(path) + " cannot be edited");
  }
  std::vector<size_t> at;
  for (size_t p = data->find(old_s); p != std::string::npos;
       p = data->find(old_s, p + old_s.size())) {
    at.push_back(p);
  }
  if (at.empty()) return tool::Output::Err("old_string was not found in " + Quote(path));
  if (at.size() > 1 && !all) {
    std::string lines;
    for (size_t i = 0; i < at.size() && i < 10; ++i) {
      size_t line = 1 + static_cast<size_t>(std::count(data->begin(), data->begin() + at[i], '\n'));
      lines += (i ? ", " : "") + std::to_string(line);
    }
    if (at.size() > 10) lines += ", ...";
    return tool::Output::Err("old_string occurs " + std::to_string(at.size()) + " times in " +
                             Quote(path) + " (lines " + lines +
                             "); include more surrounding text to make it unique, or set "
                             "replace_all");
  }
  std::string out;
  out.reserve(data->size() + at.size() * new_s.size());
  size_t prev = 0;
  for (size_t p : at) {
    out.append(*data, prev, p - prev);
    out += new_s;
    prev = p + old_s.size();
  }
  out.append(*data, prev, std::string::npos);
  Status s = tool_write::WriteAtomic(ws, path, out);
  if (!s.ok()) return tool::Output::Err(s.error().message());
  return tool::Output::Text("replaced " + std::to_string(at.size()) + " occurrence" +
                            (at.size() == 1 ? "" : "s") + " in " + path);
}

tool::Def Make(const workspace_path::Workspace& ws, const tool::Limits& limits) {
  tool::Def d;
  d.name = "edit";
  d.description =
      "Replace an exact string in a workspace file. old_string must occur exactly once (include "
      "surrounding lines to make it unique) unless replace_all is true.";
  d.input_schema = {{"type", "object"},
                    {"properties",
                     {{"path", {{"type", "string"}, {"minLength", 1}}},
                      {"old_string", {{"type", "string"}, {"minLength", 1}}},
                      {"new_string", {{"type", "string"}}},
                      {"replace_all", {{"type", "boolean"}}}}},
                    {"required", {"path", "old_string", "new_string"}},
                    {"additionalProperties", false}};
  d.run = [&ws, limits](const nlohmann::json& input) { return Run(ws, limits, input); };
  return d;
}

}  // namespace kiln::tool_edit
