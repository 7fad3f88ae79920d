// `kiln replay`: a recorded run provisioned again from its log and run in a
// fresh sandbox, the model answered from the log, the tools run for real,
// and the two logs compared (docs/replay.md).
//
// In order: the log is verified (a log that does not verify is refused
// unless forced); the recorded inputs are checked on this host (the image
// digest, the commit, the secrets' names); a loopback server takes the
// model's place behind the run's gateway and answers each request with the
// recorded response, in order; the run goes through the runner as any run
// does, with a session log of its own whose run.start names the original
// (replay_of: run id, log, head); then Compare() names the first divergence.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/replay/compare.h"
#include "controller/run/services.h"

namespace kiln::replay {

// Exit statuses of `kiln replay`.
inline constexpr int kIdentical = 0;
inline constexpr int kDiverged = 1;
inline constexpr int kBadInput = 2;
inline constexpr int kInfrastructure = 125;

struct Options {
  std::string target;  // a run id in the store, or a session log's path
  bool force = false;  // replay a log that does not verify, and say so
  std::string image;   // an image digest to run on instead of the recorded one
  // A re-run: the recorded inputs (commit, task, image, budgets, tools) with
  // the configured model (live or scripted) instead of the recording, and
  // optionally another skill file for the role or another model name. No
  // step-by-step comparison: the outcomes side by side.
  bool rerun = false;
  std::string skill_role, skill_file;  // --skill ROLE=PATH
  std::string model;                   // --model NAME
  // With rerun: the role's core skill from the configuration's skills_dir
  // (or skill_file) with these companion skills (path, text) instead of the
  // recorded run's: the improver's old and new guidance.
  std::optional<std::vector<std::pair<std::string, std::string>>> companions;
  // With rerun, of an implement run the pipeline decided: run the verify
  // gate on the original's commit too (the re-run's always is). The
  // improver, which compares two re-runs, leaves it off.
  bool verify_original = true;
};

struct Report {
  int exit_code = kInfrastructure;
  std::string verdict;                // identical, diverged, refused, error
  std::string error;                  // why it was refused or failed
  bool forced = false;                // the original did not verify; replayed anyway
  std::vector<std::string> findings;  // the verifier's, when it did not verify

  std::string mode = "replay";  // or "rerun"
  struct Side {
    std::string run_id, log, head, status, outcome;
    // A re-run's outcome table: status, outcome, result_schema, gate,
    // diff_files, diff_bytes, turns, tokens, cost_microusd, wall_ms, result;
    // verify_run and commit where the verify gate ran.
    nlohmann::json outcomes;
  } original, replay;
  std::string image_recorded, image_used;
  uint64_t model_requests = 0;  // answered from the recording
  std::vector<Rule> rules;
  Comparison comparison;

  nlohmann::json ToJson() const;
  // The readable report; every line starts "UNVERIFIED: " when forced.
  std::string ToText() const;
};

// Replays options.target (or re-runs it). Never fails: what went wrong is
// in the report (its exit_code, verdict and error). A re-run that ran is
// exit 0, verdict "rerun", whatever its outcome: the outcomes are compared,
// not judged.
Report Replay(const runner::Services& services, const Options& options,
              const std::atomic<bool>& stop);

// Re-runs (or replays) several recorded runs at once, at most the
// configuration's concurrency.max_runs at a time: the harness the improver
// tests a changed skill with. Reports in the order of the options.
std::vector<Report> ReplayAll(const runner::Services& services, const std::vector<Options>& options,
                              const std::atomic<bool>& stop);

}  // namespace kiln::replay
