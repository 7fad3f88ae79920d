// The pipeline: forge events in, runs out, and the results of those runs
// back to the forge (docs/pipeline.md).
//
//   issue opened                                  -> triage
//   label ready-to-spec (trusted)                 -> spec   (branch kiln/spec-N, a spec pull
//   request) plan-approved label / approving review of the spec pull request (trusted) -> implement
//   (branch kiln/implement-N, a pull request) pull request opened or updated by kiln        ->
//   review and verify comment "/kiln <role>" or "@kiln" (trusted)    -> that role again issue or
//   pull request closed                  -> its active runs cancelled
//
// Events are taken in inbox order. An event whose role already has an active
// run for the same issue waits, and so do the later events of that issue:
// events of one issue take effect in order, one active run per issue and
// role. A duplicated delivery never reaches the pipeline (the inbox keeps one);
// a stale event (a pull request head that moved on, a label removed since) is
// recorded and starts nothing.
//
// A run's result is validated when the run ends, before its session log is
// closed (Decide, the runner's hook), and the forge writes it allows are made
// here afterwards (Apply), by the controller, as the forge's bot user.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/forge/forge.h"
#include "controller/forge/inbox.h"
#include "controller/pipeline/state.h"
#include "controller/run/runner.h"

namespace kiln::pipeline {

struct Options {
  // Users trusted to start the expensive roles in every repository, besides
  // those the forge trusts (a repository's maintainers).
  std::vector<std::string> trusted_users;
  // The name the forge shows for kiln's own writes; events by it start only
  // what kiln's own pull requests start (review, verify).
  std::string bot = "kiln";
  // Events looked at per tick (0: every pending one). Events of waiting
  // issues are skipped, so a batch full of them would stall the others.
  size_t batch = 0;
  // The web view's address (config::WebUrl); "": the progress comment links
  // no run page.
  std::string web_url;
  // In a fleet, one host leads the pipeline at a time (docs/fleet.md): host
  // names this one, lead_ms is the lead's lease, renewed at every Tick; a
  // host that does not lead leaves events and results to the one that does.
  // 0: no lead, every Tick works (one host).
  std::string host;
  int64_t lead_ms = 0;
};

class Pipeline {
 public:
  Pipeline(const runner::Services& services, forge::Forge& forge, forge::Inbox& inbox, State& state,
           Options options);

  // One step: pending events become runs, finished runs' decisions become
  // forge writes, progress comments catch up with their runs. Returns how
  // many things it did (0: nothing to do now).
  Result<size_t> Tick();

  // Gives the lead up, when this host has it (a clean stop of `kiln serve`).
  Status Resign();

  // Nothing pending: no unprocessed event, no queued or running pipeline run,
  // no result waiting to be applied.
  Result<bool> Idle();

  // The runner's decide hook (runner::Services::decide).
  nlohmann::json Decide(const runner::Finished& finished, sessionlog::Writer& log);

 private:
  struct Handled;
  Result<size_t> HandleEvents();
  Result<Handled> Handle(const forge::Event& e);
  // pinned: the commit to run at (implement: the approved spec's head).
  Result<Handled> Start(const std::string& role, int64_t number, const forge::Event& e,
                        const std::string& pinned = "");
  Result<Handled> StartImplement(int64_t issue, const forge::Event& e);
  Result<bool> Trusted(const std::string& repo, const std::string& user);
  Result<std::optional<store::Run>> Active(const std::string& repo, int64_t number,
                                           const std::string& role);
  Status CancelActive(const std::string& repo, int64_t number);
  // One pass over the runs not yet applied: an ended run's decision is
  // written to the forge; a running one's progress comment catches up.
  struct Followed {
    size_t applied = 0;
    size_t updated = 0;
  };
  Result<Followed> FollowRuns();
  std::string Apply(const Tracked& t, const store::Run& run);
  // Whether kiln posted this review (same head and body) or this comment on
  // the issue already.
  Result<bool> AlreadyPosted(const Tracked& t, const forge::Review& review);
  Result<bool> AlreadyPosted(const Tracked& t, const std::string& comment);
  std::string ProgressText(const Tracked& t, const store::Run& run);
  Status Comment(const std::string& repo, int64_t number, const std::string& body);

  // Takes or renews the lead (Options::lead_ms); whether this host leads.
  Result<bool> Lead();

  const runner::Services& s_;
  std::unique_ptr<forge::Forge> fenced_;  // the forge, its writes fenced by the lead
  forge::Forge& forge_;                   // *fenced_
  forge::Inbox& inbox_;
  State& state_;
  Options options_;
  // When each running run's progress comment last changed for its use.
  static constexpr int64_t kLiveEveryMs = 5'000;
  std::map<std::string, int64_t> last_live_edit_;
  std::string leader_;      // the holder of the lead last seen, for the log
  int64_t renewed_ms_ = 0;  // when this host last renewed its lead
};

}  // namespace kiln::pipeline
