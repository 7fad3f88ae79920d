// The improver's two ends (docs/improver.md): Start, when a schedule's
// `improve:` fires — the signals of the role collected, put in a commit on
// top of the repository's default branch (.kiln/improve/signals.json) that
// the improve run starts from, the run queued and handed to the pipeline,
// which writes its result to the forge — and Decide, the decide hook of
// improve runs: the change checked (proposal.h), committed on the default
// branch, and proposed as one pull request per role on kiln/improve-<role>,
// updated rather than duplicated while it is open.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/config/config.h"
#include "controller/forge/forge.h"
#include "controller/forge/inbox.h"
#include "controller/improve/proposal.h"
#include "controller/pipeline/state.h"
#include "controller/run/services.h"
#include "controller/sessionlog/writer.h"

namespace kiln::improve {

// Where the signals are in the improve run's workspace.
inline constexpr char kSignalsPath[] = ".kiln/improve/signals.json";

// kiln's branch for the improver's pull request of role.
std::string Branch(const std::string& role);  // "kiln/improve-<role>"

class Improver {
 public:
  Improver(const runner::Services& services, forge::Forge& forge, forge::Inbox& inbox,
           pipeline::State& state, std::string bot);

  // The improve run of schedule (its improve: target), queued and tracked.
  // Returns the run's id.
  Result<std::string> Start(const config::Config::Schedule& schedule, int64_t now_ms);

  // The decide hook of improve runs (runner::Services::decide).
  nlohmann::json Decide(const runner::Finished& f, sessionlog::Writer& log);

 private:
  Result<nlohmann::json> DecideOrError(const runner::Finished& f, sessionlog::Writer& log);
  // The proposal tested: past tasks of the role re-run with the old and the
  // new guidance (kiln replay --rerun), as a Markdown table.
  Result<std::string> Compare(const runner::Finished& f, const std::string& role, const Verdict& v,
                              const nlohmann::json& signals, sessionlog::Writer& log);

  const runner::Services& s_;
  forge::Forge& forge_;
  forge::Inbox& inbox_;
  pipeline::State& state_;
  std::string bot_;
  std::atomic<bool> stop_{false};  // the comparison's re-runs run to their end
};

}  // namespace kiln::improve
