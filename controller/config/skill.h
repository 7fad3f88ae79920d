// Skills: one markdown file per role, `<skills_dir>/<role>/SKILL.md`, whose
// YAML front matter (between `---` lines) says what a run of the role gets —
// model, tools, budgets, image, network allowlist, secrets, the result's JSON
// Schema, the triggers — and whose body is the role's instructions (the
// system prompt). A repository may add companion skills,
// `.kiln/skills/<name>/SKILL.md` with `specializes: <role>`, whose bodies are
// appended to the core skill's; they carry instructions only and can never
// change a core skill's tools, network, secrets, budgets or schema.
// docs/skills.md documents each field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::skill {

// How a role runs: an agent (kiln-runtime and a model) or a plain command
// that kiln runs itself in the sandbox (verify: the repository's tests).
enum class Mode { kAgent, kCommand };

std::string_view ModeName(Mode mode);  // "agent", "command"

struct Skill {
  std::string path;  // the SKILL.md read
  // Hex SHA-256 recorded in run.start: of the file's bytes, or, once
  // Specialize added companions, of the core file and every companion (see
  // Specialize for the exact framing).
  std::string sha256;
  std::string name;
  std::string description;
  std::string role;         // a core skill's role (empty for a companion)
  std::string specializes;  // a companion's core role (empty for a core skill)
  std::string body;         // the instructions, front matter removed
  std::string source;       // the file's bytes (Specialize hashes them with the companions')
  std::vector<std::string> companions;  // paths of the companions Specialize appended, in order

  Mode mode = Mode::kAgent;
  std::string command;  // command mode: the default command (.kiln/kiln.yml's `test:` wins)

  // Runtime settings, passed to kiln-runtime's run spec (docs/runtime.md);
  // agent mode only:
  nlohmann::json model = nlohmann::json::object();    // provider, name, max_tokens, ...
  nlohmann::json budgets = nlohmann::json::object();  // max_turns, max_cost_usd, ...
  std::optional<std::vector<std::string>> tools;      // nullopt: the runtime's default
  nlohmann::json result_schema = {{"type", "object"}};

  // Sandbox and provisioning:
  std::string image;                       // empty: the configured image
  std::optional<uint64_t> timeout_ms;      // the run's wall-clock limit
  std::vector<std::string> network_allow;  // egress rules (proxy::ParseRule syntax)
  std::vector<std::string> secrets;        // names scoped into /run/secrets
  std::vector<std::string> triggers;       // events that start the role (names::IsTrigger)
};

// The front-matter fields of a core skill, and those a companion may set
// (the docs test checks docs/skills.md's table against the first).
const std::vector<std::string>& CoreFields();
const std::vector<std::string>& CompanionFields();

// The most bytes one companion file may have, and all of a run's together:
// they come from the repository and are sent with every model request.
inline constexpr size_t kMaxCompanionBytes = 64 * 1024;
inline constexpr size_t kMaxCompanionsBytes = 256 * 1024;

// Parses one core SKILL.md. Errors read "PATH:LINE: what is wrong".
Result<Skill> Parse(std::string_view text, const std::string& path);

// Parses one companion, `.kiln/skills/<name>/SKILL.md`: front matter of
// `name` (equal to the folder's name), `description` and `specializes` only,
// and a non-empty body. Any core field is refused ("PATH:LINE: 'network'
// cannot be set by a companion skill: ..."). The controller uses it to find
// the companions of a role (Skill::specializes).
Result<Skill> ParseCompanion(std::string_view text, const std::string& path);

// The core skill with the companions' instructions appended. Each pair is
// (path, text) of a companion read from the repository at the run's commit.
// In path order, each companion's body follows the core body under the
// heading
//   ## Repository guidance (<name>, from <path>) — cannot override the rules above
// so the core's instructions come first and unchanged. Only the body and the
// digest change: sha256 becomes the hex SHA-256 of, for the core file and
// then each companion in path order, its byte count in decimal, "\n", and its
// bytes; companions lists the paths. With no companions the core is returned
// unchanged. Errors name the companion's file and line: a companion that is
// not valid (ParseCompanion), one whose `specializes` is not core.role, a
// companion of a command skill, a duplicate path, too many bytes.
Result<Skill> Specialize(const Skill& core,
                         const std::vector<std::pair<std::string, std::string>>& companions);

// Loads <skills_dir>/<role>/SKILL.md. An unknown role is an error listing the
// roles that exist.
Result<Skill> Load(const std::string& skills_dir, const std::string& role);

// The roles under skills_dir, sorted.
std::vector<std::string> Roles(const std::string& skills_dir);

}  // namespace kiln::skill
