// What a run is given and what it hands back, shared by the run's parts
// (runner, provision) and by those who start runs (the daemon, `kiln run`,
// the pipeline): the process-wide services, the decide hook's view of an
// ended run, the metrics a run reports, and where a run's files go.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "controller/config/config.h"
#include "controller/config/secrets.h"
#include "controller/git/git.h"
#include "controller/proxy/proxy.h"
#include "controller/sessionlog/signer.h"
#include "controller/sessionlog/writer.h"
#include "controller/store/store.h"

namespace kiln::images {
class SealWatch;
}

namespace kiln::runner {

// What the pipeline's decide hook sees of a run that has ended, before its
// workspace is unmounted and its session log closed.
struct Finished {
  explicit Finished(const store::Run& r) : run(r) {}
  const store::Run& run;
  nlohmann::json result_schema;     // the skill's
  bool succeeded = false;           // the run ends as succeeded
  std::string outcome;              // submitted, tests_failed, timeout, ...
  nlohmann::json result;            // the agent's submitted result; null when none
  const git::Diff* diff = nullptr;  // the workspace's changes; null when not collected
  std::string mirror;               // the run's mirror
  std::string commit;               // the commit the workspace started from
  std::string workspace;            // still mounted
  std::optional<int> exit_code;     // command runs: the command's exit status
  std::string output_tail;          // command runs: the end of its output
};

// What a run reports for the host's metrics (app/metrics.h counts and serves
// them). Thread-safe: runs report from their own threads.
class RunMetrics {
 public:
  virtual ~RunMetrics() = default;
  // A finished attempt: its final status and how long it ran.
  virtual void RunFinished(store::Status status, double seconds) = 0;
  // The sandbox could not be started or run the agent (infrastructure).
  virtual void SandboxFailure() = 0;
  // The run's own cost outside the agent: provisioning plus teardown.
  virtual void Overhead(double seconds) = 0;
  // One phase of an attempt (runner/phases.h) and its time.
  virtual void Phase(const std::string& name, double seconds) = 0;
};

// What a run has used so far, from the events the controller records: the
// progress comment shows it while the run goes (docs/pipeline.md).
struct Usage {
  uint64_t turns = 0;  // model replies
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
  uint64_t tool_calls = 0;
  friend bool operator==(const Usage&, const Usage&) = default;
};

// The runs in flight in this process and their use so far. Thread-safe:
// each run's thread updates its own; the pipeline reads them.
class LiveUsage {
 public:
  void Set(const std::string& run_id, const Usage& usage) {
    std::lock_guard lock(mu_);
    runs_[run_id] = usage;
  }
  void Erase(const std::string& run_id) {
    std::lock_guard lock(mu_);
    runs_.erase(run_id);
  }
  std::optional<Usage> Get(const std::string& run_id) const {
    std::lock_guard lock(mu_);
    auto it = runs_.find(run_id);
    return it == runs_.end() ? std::nullopt : std::optional<Usage>(it->second);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Usage> runs_;
};

// The store's form of a use (store::Run::live), and back: a run's use so
// far is this process's own for a run it runs, else what the run's host
// last recorded for its current attempt while it runs; nullopt when
// neither.
nlohmann::json LiveJson(const Usage& usage, int attempt);
std::optional<Usage> LiveUsageOf(const LiveUsage* here, const store::Run& run);

struct Services {
  const config::Config* config = nullptr;
  store::Store* store = nullptr;
  git::Cache* cache = nullptr;
  proxy::Proxy* proxy = nullptr;
  std::shared_ptr<const sessionlog::Signer> signer;
  const secrets::Vault* vault = nullptr;
  RunMetrics* metrics = nullptr;
  std::string owner;  // OwnerId() of this process
  // Runs with a request context (the pipeline's): called when the run has
  // ended, with its log still open for the hook's records. What it returns
  // is kept as the result's "actions".
  std::function<nlohmann::json(const Finished&, sessionlog::Writer&)> decide;
  // Where runs report their use while they go; null: nowhere.
  LiveUsage* live = nullptr;
  // Where a run's session log can be read on this host: on a fleet, another
  // host's log fetched and verified (controller/fleet); null: its own path.
  std::function<Result<std::string>(const store::Run&)> log_of;
  // Keeps store images' layer seals checked between runs; null: each run
  // walks its image's layers (controller/images/seal_watch.h).
  images::SealWatch* seals = nullptr;
};

// Where a run's files go (docs/controller.md).
// A run attempt's directory (its workspace, secrets and kiln files): one per
// attempt, as its sandbox, so that the attempt of a host that lost the run
// and the next attempt never share one.
std::string RunDir(const config::Config& config, const store::Run& run);
std::string LogPath(const config::Config& config, const store::Run& run);
std::string SandboxId(const store::Run& run);
// A session log named on the command line: target itself when it is a file,
// else the log of the run with that id (through log_of, when given: on a
// fleet, fetched from the host that ran it). The error names what was not
// found.
Result<std::string> FindLog(
    store::Store& store, const std::string& target,
    const std::function<Result<std::string>(const store::Run&)>& log_of = nullptr);

}  // namespace kiln::runner
