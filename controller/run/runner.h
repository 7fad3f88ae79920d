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
#include <string>

#include "base/result.h"
#include "controller/run/services.h"

namespace kiln::provision {
struct Recorded;
}

namespace kiln::runner {

// "<host>/<pid>:<start time>" of this process, host being host_name or,
// when empty, the machine's host name: a run whose owner is no longer alive
// was orphaned by a crash.
std::string OwnerId(const std::string& host_name);
// Whether owner names a process of this host (host_name as OwnerId takes
// it; an owner without a host, from kiln before the fleet, is this host's).
bool OwnerHere(const std::string& owner, const std::string& host_name);
// Whether owner, a process of this host, is alive.
bool OwnerAlive(const std::string& owner);

// Checks what can be checked before a run is queued: the role has a skill,
// the skill's secrets exist. The error says what is wrong.
Status CheckRequest(const Services& services, const store::RunRequest& request);

// Runs a claimed run (state running) to its end. Afterwards the store holds
// its final state, or it is queued again when an infrastructure failure is
// retried. stop: when it becomes true (the daemon is shutting down), the run
// is stopped and queued again. claim_ms: how long the store took to hand the
// run over (Claim or Start), the first of the run's phases. recorded: a
// replay, provisioned from a recorded run (provision::PlanRecorded) instead
// of the request's role and today's skills.
store::Run Execute(const Services& services, store::Run run, const std::atomic<bool>& stop,
                   double claim_ms = 0, const provision::Recorded* recorded = nullptr);

// Cleans up after a run whose owner died mid-run: kills and removes its
// sandbox, unmounts its workspace and secrets, removes its run directory,
// and recovers its session log (appending a `recovery` record and closing
// it). Returns the log's head hash, or "" when it had no log.
Result<std::string> Reap(const Services& services, const store::Run& run);

// The configuration's retry policy for infrastructure failures.
store::RetryPolicy RetryPolicyOf(const config::Config& config);

}  // namespace kiln::runner
