// Skills: one markdown file per role, `<skills_dir>/<role>/SKILL.md`, whose
// YAML front matter (between `---` lines) says what a run of the role gets —
// model, tools, budgets, image, network allowlist, secrets, the result's JSON
// Schema — and whose body is the role's instructions (the system prompt).
// docs/skills.md documents each field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::skill {

struct Skill {
  std::string path;    // the SKILL.md read
  std::string sha256;  // hex digest of the file's bytes (recorded in run.start)
  std::string name;
  std::string description;
  std::string role;
  std::string body;  // the instructions, front matter removed

  // Runtime settings, passed to kiln-runtime's run spec (docs/runtime.md):
  nlohmann::json model = nlohmann::json::object();    // provider, name, max_tokens, ...
  nlohmann::json budgets = nlohmann::json::object();  // max_turns, max_cost_usd, ...
  std::optional<std::vector<std::string>> tools;      // nullopt: the runtime's default
  nlohmann::json result_schema = {{"type", "object"}};

  // Sandbox and provisioning:
  std::string image;                       // empty: the configured image
  std::optional<uint64_t> timeout_ms;      // the run's wall-clock limit
  std::vector<std::string> network_allow;  // egress rules (proxy::ParseRule syntax)
  std::vector<std::string> secrets;        // names scoped into /run/secrets
  std::vector<std::string> triggers;       // events that start the role (the pipeline's)
};

// Parses one SKILL.md. Errors read "PATH:LINE: what is wrong".
Result<Skill> Parse(std::string_view text, const std::string& path);

// Loads <skills_dir>/<role>/SKILL.md. An unknown role is an error listing the
// roles that exist.
Result<Skill> Load(const std::string& skills_dir, const std::string& role);

// The roles under skills_dir, sorted.
std::vector<std::string> Roles(const std::string& skills_dir);

}  // namespace kiln::skill
