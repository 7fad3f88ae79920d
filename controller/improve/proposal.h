// What the controller makes of an improve run's result (docs/improver.md):
// the run may change one file, the companion skill of the role it improves
// (`<skills_dir>/<role>/SKILL.md` in the target repository); the new text
// must be a valid companion of that role (so it cannot touch the core
// skill's tools, network, secrets or budgets); and a change is proposed only
// when it cites at least two independent signals of those it was given.
// Everything else is refused or recorded as nothing to propose, and nothing
// is pushed.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/config/skill.h"
#include "controller/git/git.h"

namespace kiln::improve {

// Independent signals a change must cite.
inline constexpr size_t kMinSignals = 2;

// The companion skill an improve run of role may change.
std::string CompanionPath(const std::string& skills_dir, const std::string& role);

struct ProposalInput {
  const skill::Skill* core = nullptr;  // the role's core skill, as kiln has it
  std::string skills_dir = ".kiln/skills";
  const git::Diff* diff = nullptr;  // the run's changes
  nlohmann::json result;            // the agent's result (improve's schema)
  nlohmann::json signals;           // what the run was given (CollectSignals)
  // The new text of a changed file of the workspace (read without following
  // links).
  std::function<Result<std::string>(const std::string& path)> read;
};

struct Verdict {
  std::string outcome;                // "proposed", "nothing_to_propose" or "refused"
  std::string reason;                 // why not proposed; empty when proposed
  std::vector<std::string> evidence;  // the cited signals, in the result's order
  std::string path;                   // proposed: the companion's path
  std::string text;                   // proposed: its new text
};

Verdict CheckProposal(const ProposalInput& in);

}  // namespace kiln::improve
