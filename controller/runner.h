// One run, from a claimed queue entry to its recorded end: provisioning
// (skill, secrets, mirror, copy-on-write workspace, proxy endpoint), the
// sandboxed kiln-runtime, its events into the session log, the result as
// data, and a teardown that leaves nothing behind. `kiln run` and `kiln
// serve` both go through Execute().
//
// On disk, per run (docs/controller.md):
//   <state>/runs/<id>/workspace   the overlay the sandbox sees at /workspace
//   <state>/runs/<id>/upper, work its upper layer
//   <state>/runs/<id>/secrets     tmpfs with the scoped secrets (/run/secrets)
//   <state>/runs/<id>/kiln        /run/kiln: spec.json and proxy.sock
//   <log_dir>/<id>.log            the session log (kept)
// Everything under runs/<id> is gone when Execute returns.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "controller/config.h"
#include "controller/git/git.h"
#include "controller/metrics.h"
#include "controller/proxy/proxy.h"
#include "controller/secrets.h"
#include "controller/sessionlog/signer.h"
#include "controller/sessionlog/writer.h"
#include "controller/store/store.h"

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

struct Services {
  const config::Config* config = nullptr;
  store::Store* store = nullptr;
  git::Cache* cache = nullptr;
  proxy::Proxy* proxy = nullptr;
  std::shared_ptr<const sessionlog::Signer> signer;
  const secrets::Vault* vault = nullptr;
  metrics::Metrics* metrics = nullptr;
  std::string owner;  // OwnerId() of this process
  // Runs with a request context (the pipeline's): called when the run has
  // ended, with its log still open for the hook's records. What it returns
  // is kept as the result's "actions".
  std::function<nlohmann::json(const Finished&, sessionlog::Writer&)> decide;
};

// "<pid>:<start time>" of this process: a run whose owner is no longer
// alive was orphaned by a crash.
std::string OwnerId();
bool OwnerAlive(const std::string& owner);

// Checks what can be checked before a run is queued: the role has a skill,
// the skill's secrets exist. The error says what is wrong.
Status CheckRequest(const Services& services, const store::RunRequest& request);

// Runs a claimed run (state running) to its end. Afterwards the store holds
// its final state, or it is queued again when an infrastructure failure is
// retried. stop: when it becomes true (the daemon is shutting down), the run
// is stopped and queued again.
store::Run Execute(const Services& services, store::Run run, const std::atomic<bool>& stop);

// Cleans up after a run whose owner died mid-run: kills and removes its
// sandbox, unmounts its workspace and secrets, removes its run directory,
// and recovers its session log (appending a `recovery` record and closing
// it). Returns the log's head hash, or "" when it had no log.
Result<std::string> Reap(const Services& services, const store::Run& run);

// The configuration's retry policy for infrastructure failures.
store::RetryPolicy RetryPolicyOf(const config::Config& config);

std::string RunDir(const config::Config& config, const std::string& run_id);
std::string LogPath(const config::Config& config, const store::Run& run);
std::string SandboxId(const store::Run& run);

}  // namespace kiln::runner
