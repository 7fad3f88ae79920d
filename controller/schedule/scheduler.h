// The scheduler of `kiln serve` (docs/schedules.md): the configuration's
// schedules, fired as systemd timers with Persistent=true and Kubernetes
// CronJobs with concurrencyPolicy Forbid fire them.
//
// - The last tick handled is kept in the store. Ticks missed while no kiln
//   was running fire once (the latest of them), never once each.
// - A tick while the schedule's previous run is queued or running is skipped
//   and recorded as skipped.
// - Several `kiln serve` on one store fire each tick once: the claim is a
//   compare-and-set in the store (State::ClaimTick), not a local lock.
// - Jitter delays each tick by a fixed fraction of the schedule's jitter,
//   the same on every host (a hash of the name and the tick).
//
// Not thread-safe: one thread (the daemon's loop, or the CLI) drives it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/cron.h"
#include "base/result.h"
#include "controller/config/config.h"
#include "controller/schedule/state.h"
#include "controller/store/store.h"

namespace kiln::schedule {

// The run a run: schedule's fire queues.
store::RunRequest RequestFor(const config::Config::Schedule& schedule, int max_attempts);

struct Listing {
  const config::Config::Schedule* schedule = nullptr;
  int64_t next_ms = 0;          // the next tick (its jitter not included)
  std::string next_local;       // the same, in the schedule's time zone
  std::optional<Fire> last;     // the latest fire
  std::string last_local;       // its tick, in the schedule's time zone
  std::string last_run_status;  // its run's status, when it started one
  Totals totals;
};

// Starts what an `improve:` schedule fires (the improver, which needs the
// pipeline's forge); returns the run's id.
using ImproveStarter =
    std::function<Result<std::string>(const config::Config::Schedule&, int64_t now_ms)>;

class Scheduler {
 public:
  // host: this daemon's owner name, recorded with each fire it claims.
  // improve: what an improve: schedule's fire calls; without it such a fire
  // is an error.
  static Result<std::unique_ptr<Scheduler>> Open(const config::Config& config, store::Store& store,
                                                 std::string host, ImproveStarter improve = {});

  // Fires what is due at now_ms: for each schedule whose next tick (plus
  // its jitter) has come, claims the latest due tick and queues its run, or
  // records it skipped. Fires whose host died before queueing their run are
  // taken over after a minute. Returns the fires this call made.
  Result<std::vector<Fire>> Tick(int64_t now_ms);

  // `kiln schedules run NAME`: a fire now, under the same single-flight rule.
  Result<Fire> FireNow(const std::string& name, int64_t now_ms);

  Result<std::vector<Listing>> List(int64_t now_ms);

  // Prometheus series (fires, skips, lateness) per schedule, from the store:
  // the fleet's, not only this host's.
  std::string Metrics();

  // How long a claimed fire may stay without its run before another host
  // queues it.
  static constexpr int64_t kOrphanAfterMs = 60'000;

 private:
  struct Entry {
    const config::Config::Schedule* config;
    cron::Schedule cron;
    std::optional<int64_t> last;  // the last tick handled, as last read or claimed
  };
  Scheduler(const config::Config& config, store::Store& store, std::string host,
            ImproveStarter improve, std::unique_ptr<State> state, std::vector<Entry> entries);
  // Queues the run of a claimed fire and records it fired.
  Result<Fire> Start(Fire fire);
  // Queues what the schedule starts (its run, or the improver's); the run's id.
  Result<std::string> Launch(const config::Config::Schedule& schedule, int64_t now_ms);
  const Entry* Find(const std::string& name) const;

  const config::Config& config_;
  store::Store& store_;
  std::string host_;
  ImproveStarter improve_;
  std::unique_ptr<State> state_;
  std::vector<Entry> entries_;
  int64_t next_orphan_check_ms_ = 0;
};

}  // namespace kiln::schedule
