#include "controller/skill.h"

#include <algorithm>
#include <filesystem>

#include "base/fd.h"
#include "controller/names.h"
#include "controller/sessionlog/digest.h"
#include "controller/yaml_fields.h"
#include "runtime/spec.h"

namespace kiln::skill {
namespace {

using yaml::Fields;

struct FrontMatter {
  std::string yaml;
  std::string body;
  int first_line = 2;  // the file line of the YAML's first line
};

Result<FrontMatter> Split(std::string_view text, const std::string& path) {
  if (text.rfind("---\n", 0) != 0) {
    return Error::Invalid(path + ":1: a skill starts with '---' and YAML front matter");
  }
  size_t pos = 4;
  int line = 2;
  while (pos <= text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view l = text.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    if (l == "---") {
      FrontMatter fm;
      fm.yaml = std::string(text.substr(4, pos - 4));
      fm.body = eol == std::string_view::npos ? "" : std::string(text.substr(eol + 1));
      return fm;
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
    ++line;
  }
  return Error::Invalid(path + ":" + std::to_string(line) +
                        ": the front matter has no closing '---' line");
}

// The runtime parses the settings the skill passes through; checking them
// here, with the runtime's own parser, turns a bad budget into an error at
// the skill's line rather than a failed run.
Status CheckRuntimeSettings(const Skill& s, Fields& f) {
  nlohmann::json spec = {{"role", s.role}, {"task", "-"}, {"model", s.model}};
  if (!spec["model"].contains("name")) spec["model"]["name"] = "-";
  spec["budgets"] = s.budgets;
  spec["result_schema"] = s.result_schema;
  if (s.tools) spec["tools"] = {{"allowed", *s.tools}};
  auto parsed = spec::Parse(spec);
  if (parsed) return Ok();
  const std::string& msg = parsed.error().message();
  for (const char* key : {"model", "budgets", "result_schema", "tools"}) {
    if (msg.find(std::string("'") + key) != std::string::npos) {
      return f.Fail(key, "is not valid: " + msg);
    }
  }
  return f.Fail("", msg);
}

Status ReadNames(Fields& f, const std::string& key, bool (*valid)(std::string_view),
                 std::vector<std::string>* out, std::string_view what) {
  KILN_ASSIGN_OR_RETURN(auto v, f.Strings(key));
  if (!v) return Ok();
  for (const std::string& name : *v) {
    if (!valid(name)) {
      return f.Fail(key, "has " + Quote(name) + ", which is not " + std::string(what));
    }
  }
  *out = std::move(*v);
  return Ok();
}

}  // namespace

Result<Skill> Parse(std::string_view text, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(FrontMatter fm, Split(text, path));
  KILN_ASSIGN_OR_RETURN(YAML::Node root, yaml::Load(fm.yaml, path, fm.first_line));
  if (!root.IsMap()) return Error::Invalid(path + ":2: the front matter must be a YAML mapping");
  Skill s;
  s.path = path;
  s.sha256 = sessionlog::Hex(sessionlog::Sha256Of(text));
  s.body = fm.body;
  Fields f(root, path, "", fm.first_line);
  KILN_ASSIGN_OR_RETURN(auto name, f.String("name"));
  if (!name || !names::IsRole(*name)) {
    return f.Fail("name", "must be given: lower-case letters, digits and '-', at most 64");
  }
  s.name = *name;
  KILN_ASSIGN_OR_RETURN(auto description, f.String("description"));
  if (!description || description->empty()) return f.Fail("description", "must be given");
  s.description = *description;
  KILN_ASSIGN_OR_RETURN(auto role, f.String("role"));
  s.role = role.value_or(s.name);
  if (!names::IsRole(s.role)) return f.Fail("role", "is not a role name");

  KILN_ASSIGN_OR_RETURN(auto model, f.Json("model"));
  if (model) s.model = *model;
  if (!s.model.is_object()) return f.Fail("model", "must be a mapping");
  KILN_ASSIGN_OR_RETURN(auto budgets, f.Json("budgets"));
  if (budgets) s.budgets = *budgets;
  if (!s.budgets.is_object()) return f.Fail("budgets", "must be a mapping");
  KILN_ASSIGN_OR_RETURN(auto schema, f.Json("result_schema"));
  if (schema) s.result_schema = *schema;
  KILN_ASSIGN_OR_RETURN(s.tools, f.Strings("tools"));

  KILN_ASSIGN_OR_RETURN(auto image, f.String("image"));
  s.image = image.value_or("");
  KILN_ASSIGN_OR_RETURN(s.timeout_ms, f.Duration("timeout"));
  if (auto net = f.Map("network"); !net) {
    return std::move(net).error();
  } else if (*net) {
    KILN_ASSIGN_OR_RETURN(auto allow, (*net)->Strings("allow"));
    s.network_allow = allow.value_or(std::vector<std::string>{});
    KILN_TRY((*net)->Finish());
  }
  KILN_TRY(ReadNames(f, "secrets", names::IsSecret, &s.secrets,
                     "a secret name ([A-Za-z_][A-Za-z0-9_]*)"));
  KILN_TRY(ReadNames(f, "triggers", names::IsTrigger, &s.triggers, "a trigger"));
  KILN_TRY(f.Finish());
  KILN_TRY(CheckRuntimeSettings(s, f));
  return s;
}

Result<Skill> Load(const std::string& skills_dir, const std::string& role) {
  std::vector<std::string> roles = Roles(skills_dir);
  if (!names::IsRole(role) || std::find(roles.begin(), roles.end(), role) == roles.end()) {
    std::string known;
    for (const auto& r : roles) known += (known.empty() ? "" : ", ") + r;
    return Error::NotFound("unknown role " + Quote(role) + ": no " +
                           Quote(skills_dir + "/" + role + "/SKILL.md") +
                           " (roles: " + (known.empty() ? "none" : known) + ")");
  }
  std::string path = skills_dir + "/" + role + "/SKILL.md";
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  KILN_ASSIGN_OR_RETURN(Skill s, Parse(text, path));
  if (s.role != role) {
    return Error::Invalid(path + ": declares role " + Quote(s.role) + " but lives under " +
                          Quote(role));
  }
  return s;
}

std::vector<std::string> Roles(const std::string& skills_dir) {
  std::vector<std::string> roles;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(skills_dir, ec)) {
    if (std::filesystem::is_regular_file(e.path() / "SKILL.md", ec)) {
      roles.push_back(e.path().filename().string());
    }
  }
  std::sort(roles.begin(), roles.end());
  return roles;
}

}  // namespace kiln::skill
