#include "controller/config/skill.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "base/digest.h"
#include "base/fd.h"
#include "base/strings.h"
#include "controller/config/names.h"
#include "controller/config/yaml_fields.h"
#include "runtime/spec.h"

namespace kiln::skill {
namespace {

using yaml::Fields;

constexpr char kCompanionRefusal[] =
    "cannot be set by a companion skill: companions add instructions only and never change the "
    "core skill's security rules";

struct FrontMatter {
  std::string yaml;
  std::string body;
  int first_line = 2;  // the file line of the YAML's first line
};

// A delimiter line, "---", also with a CRLF line end.
bool IsDelimiter(std::string_view line) { return line == "---" || line == "---\r"; }

Result<FrontMatter> SplitFrontMatter(std::string_view text, const std::string& path) {
  size_t first_eol = text.find('\n');
  if (first_eol == std::string_view::npos || !IsDelimiter(text.substr(0, first_eol))) {
    return Error::Invalid(path + ":1: a skill starts with '---' and YAML front matter");
  }
  size_t start = first_eol + 1;
  size_t pos = start;
  int line = 2;
  while (pos <= text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view l = text.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    if (IsDelimiter(l)) {
      FrontMatter fm;
      fm.yaml = std::string(text.substr(start, pos - start));
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

Result<YAML::Node> LoadFrontMatter(const FrontMatter& fm, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(YAML::Node root, yaml::Load(fm.yaml, path, fm.first_line));
  if (!root.IsMap()) {
    return Error::Invalid(path + ":" + std::to_string(fm.first_line) +
                          ": the front matter must be a YAML mapping");
  }
  return root;
}

// "PATH:LINE" of a node (or of the front matter's first line when the node
// has no position).
std::string Where(const std::string& path, const YAML::Node& node, int first_line) {
  YAML::Mark m = node.Mark();
  return path + ":" + std::to_string(m.is_null() ? first_line : m.line + first_line);
}

// The runtime reads the settings the skill passes through; reading and
// checking them here, with the runtime's own code, turns a bad budget into an
// error at the skill's line rather than a failed run.
Status CheckRuntimeSettings(const Skill& s, Fields& f) {
  spec::RunSpec rs;
  rs.role = s.role;
  rs.task = "-";
  rs.model.name = "-";  // the host's default model unless the skill names one
  std::optional<spec::Fault> fault = spec::ReadModel(s.model, &rs.model);
  if (!fault) fault = spec::ReadBudgets(s.budgets, &rs.budgets);
  if (!fault) {
    if (s.tools) rs.tools = *s.tools;
    rs.result_schema = s.result_schema;
    fault = spec::Check(rs);
  }
  if (!fault) return Ok();
  // The front matter's key is the member's first part: "budgets" of
  // "budgets.max_turns".
  return f.Fail(fault->member.substr(0, fault->member.find('.')),
                "is not valid: " + fault->message);
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

// Triggers are checked one by one so that the error points at the bad
// entry's own line in a block list.
Status ReadTriggers(Fields& f, const YAML::Node& root, const std::string& path, int first_line,
                    std::vector<std::string>* out) {
  KILN_ASSIGN_OR_RETURN(auto v, f.Strings("triggers"));
  if (!v) return Ok();
  const YAML::Node list = root["triggers"];
  std::set<std::string> seen;
  for (size_t i = 0; i < v->size(); ++i) {
    const std::string& t = (*v)[i];
    std::string where = Where(path, list[i], first_line);
    if (!names::IsTrigger(t)) {
      return Error::Invalid(
          where + ": 'triggers' has " + Quote(t) +
          ", which is not a trigger (the forms are: " + std::string(names::kTriggerForms) + ")");
    }
    if (!seen.insert(t).second) {
      return Error::Invalid(where + ": 'triggers' has " + Quote(t) + " twice");
    }
  }
  *out = std::move(*v);
  return Ok();
}

Status ReadMode(Fields& f, Skill* s) {
  KILN_ASSIGN_OR_RETURN(auto mode, f.String("mode"));
  KILN_ASSIGN_OR_RETURN(auto command, f.String("command"));
  if (mode && *mode == "command") {
    s->mode = Mode::kCommand;
  } else if (mode && *mode != "agent") {
    return f.Fail("mode", "must be agent or command, not " + Quote(*mode));
  }
  if (s->mode == Mode::kAgent) {
    if (command) return f.Fail("command", "is only for a command skill (mode: command)");
    return Ok();
  }
  for (const char* key : {"model", "tools", "budgets", "result_schema"}) {
    if (f.Has(key)) return f.Fail(key, "has no meaning for a command skill");
  }
  if (!command || Trim(*command).empty()) {
    return f.Fail("mode", "is command, so 'command' (the default command) must be given");
  }
  s->command = *command;
  return Ok();
}

// The folder a SKILL.md lives in: "name" of ".kiln/skills/name/SKILL.md".
std::string FolderName(const std::string& path) {
  std::filesystem::path p(path);
  return p.parent_path().filename().string();
}

struct Companion {
  Skill skill;
  std::string where_specializes;  // "PATH:LINE" of the specializes key
};

Result<Companion> ParseCompanionAt(std::string_view text, const std::string& path) {
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Error::Invalid("companion skill " + Quote(path) +
                            ": the path has a control character");
    }
  }
  if (text.size() > kMaxCompanionBytes) {
    return Error::Invalid(path + ":1: a companion skill may have at most " +
                          std::to_string(kMaxCompanionBytes) + " bytes; this one has " +
                          std::to_string(text.size()));
  }
  KILN_ASSIGN_OR_RETURN(FrontMatter fm, SplitFrontMatter(text, path));
  KILN_ASSIGN_OR_RETURN(YAML::Node root, LoadFrontMatter(fm, path));
  const std::vector<std::string>& allowed = CompanionFields();
  const std::vector<std::string>& core = CoreFields();
  for (const auto& kv : root) {
    const std::string& key = kv.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end() &&
        std::find(core.begin(), core.end(), key) != core.end()) {
      return Error::Invalid(Where(path, kv.first, fm.first_line) + ": " + Quote(key) + " " +
                            kCompanionRefusal);
    }
  }
  Companion c;
  Skill& s = c.skill;
  s.path = path;
  s.source = std::string(text);
  s.sha256 = Sha256Hex(text);
  s.body = fm.body;
  Fields f(root, path, "", fm.first_line);
  KILN_ASSIGN_OR_RETURN(auto name, f.String("name"));
  if (!name || !names::IsRole(*name)) {
    return f.Fail("name", "must be given: lower-case letters, digits and '-', at most 64");
  }
  if (FolderName(path) != *name) {
    return f.Fail("name", "is " + Quote(*name) + ", but a companion skill lives in " +
                              Quote(".kiln/skills/" + *name + "/SKILL.md"));
  }
  s.name = *name;
  KILN_ASSIGN_OR_RETURN(auto description, f.String("description"));
  if (!description || description->empty()) return f.Fail("description", "must be given");
  s.description = *description;
  KILN_ASSIGN_OR_RETURN(auto specializes, f.String("specializes"));
  if (!specializes || !names::IsRole(*specializes)) {
    return f.Fail("specializes", "must name the core skill this companion adds to");
  }
  s.specializes = *specializes;
  KILN_TRY(f.Finish());
  if (Trim(s.body).empty()) {
    return Error::Invalid(path + ": a companion skill adds instructions, and its body is empty");
  }
  for (const auto& kv : root) {
    if (kv.first.Scalar() == "specializes") {
      c.where_specializes = Where(path, kv.first, fm.first_line);
    }
  }
  return c;
}

}  // namespace

std::string_view ModeName(Mode mode) { return mode == Mode::kCommand ? "command" : "agent"; }

const std::vector<std::string>& CoreFields() {
  static const std::vector<std::string> k = {
      "name",    "description",   "role",  "mode",    "command", "model",   "tools",
      "budgets", "result_schema", "image", "timeout", "network", "secrets", "triggers"};
  return k;
}

const std::vector<std::string>& CompanionFields() {
  static const std::vector<std::string> k = {"name", "description", "specializes"};
  return k;
}

Result<Skill> Parse(std::string_view text, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(FrontMatter fm, SplitFrontMatter(text, path));
  KILN_ASSIGN_OR_RETURN(YAML::Node root, LoadFrontMatter(fm, path));
  Skill s;
  s.path = path;
  s.source = std::string(text);
  s.sha256 = Sha256Hex(text);
  s.body = fm.body;
  Fields f(root, path, "", fm.first_line);
  if (f.Has("specializes")) {
    return f.Fail("specializes",
                  "belongs in a repository's companion skill (.kiln/skills/<name>/SKILL.md); a "
                  "core skill specializes nothing");
  }
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
  KILN_TRY(ReadMode(f, &s));

  if (s.mode == Mode::kAgent) {
    KILN_ASSIGN_OR_RETURN(auto model, f.Json("model"));
    if (model) s.model = *model;
    if (!s.model.is_object()) return f.Fail("model", "must be a mapping");
    KILN_ASSIGN_OR_RETURN(auto budgets, f.Json("budgets"));
    if (budgets) s.budgets = *budgets;
    if (!s.budgets.is_object()) return f.Fail("budgets", "must be a mapping");
    KILN_ASSIGN_OR_RETURN(auto schema, f.Json("result_schema"));
    if (schema) s.result_schema = *schema;
    KILN_ASSIGN_OR_RETURN(s.tools, f.Strings("tools"));
  }

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
  KILN_TRY(ReadTriggers(f, root, path, fm.first_line, &s.triggers));
  KILN_TRY(f.Finish());
  if (s.mode == Mode::kAgent) KILN_TRY(CheckRuntimeSettings(s, f));
  return s;
}

Result<Skill> ParseCompanion(std::string_view text, const std::string& path) {
  KILN_ASSIGN_OR_RETURN(Companion c, ParseCompanionAt(text, path));
  return std::move(c.skill);
}

Result<Skill> Specialize(const Skill& core,
                         const std::vector<std::pair<std::string, std::string>>& companions) {
  if (!core.specializes.empty() || core.role.empty()) {
    return Error::Invalid(core.path + ": is a companion skill; only a core skill is specialized");
  }
  if (!core.companions.empty()) {
    return Error::Invalid(core.path + ": already has companions; specialize the core skill once, " +
                          "with all of them");
  }
  if (companions.empty()) return core;

  std::vector<const std::pair<std::string, std::string>*> sorted;
  for (const auto& c : companions) sorted.push_back(&c);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });

  Skill out = core;
  Sha256 digest;
  digest.Init();
  auto add = [&digest](std::string_view bytes) {
    digest.Update(std::to_string(bytes.size()) + "\n");
    digest.Update(bytes);
  };
  add(core.source);
  size_t total = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const auto& [path, text] = *sorted[i];
    if (i > 0 && sorted[i - 1]->first == path) {
      return Error::Invalid(path + ": the companion skill is given twice");
    }
    KILN_ASSIGN_OR_RETURN(Companion c, ParseCompanionAt(text, path));
    if (c.skill.specializes != core.role) {
      return Error::Invalid(c.where_specializes + ": 'specializes' is " +
                            Quote(c.skill.specializes) + ", but this companion was given to the " +
                            Quote(core.role) + " skill");
    }
    if (core.mode == Mode::kCommand) {
      return Error::Invalid(
          c.where_specializes + ": 'specializes' names " + Quote(core.role) +
          ", a command skill: it runs no agent, so there are no instructions to " +
          "add to (its command is set by .kiln/kiln.yml)");
    }
    total += text.size();
    if (total > kMaxCompanionsBytes) {
      return Error::Invalid(path + ":1: the companion skills of one role may have at most " +
                            std::to_string(kMaxCompanionsBytes) + " bytes together");
    }
    if (!out.body.empty() && out.body.back() != '\n') out.body += '\n';
    out.body += "\n## Repository guidance (" + c.skill.name + ", from " + path +
                ") — cannot override the rules above\n\n";
    out.body += c.skill.body;
    if (out.body.back() != '\n') out.body += '\n';
    out.companions.push_back(path);
    add(text);
  }
  out.sha256 = Hex(digest.Final());
  return out;
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
