// The controller's process-wide services and the daemon behind `kiln serve`:
// crash recovery at start, the queue loop (fires the schedules that are due,
// claims runs within the concurrency limits, one thread per run), /metrics,
// and a shutdown that stops the runs in flight and queues them again.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "base/result.h"
#include "controller/app/metrics.h"
#include "controller/config/config.h"
#include "controller/forge/api.h"
#include "controller/run/runner.h"
#include "controller/schedule/scheduler.h"

namespace kiln::pipeline {
class Pipeline;
}

namespace kiln::daemon {

// Everything runner::Services points to, owned.
class Controller {
 public:
  // Opens the store, the caches, the signing key and the secrets; starts the
  // proxy. The config's binaries are resolved here.
  static Result<std::unique_ptr<Controller>> Open(config::Config config);
  ~Controller();

  const runner::Services& services() const { return services_; }
  // The pipeline; null when the configuration turns it off.
  pipeline::Pipeline* pipeline() const;
  // What kiln's HTTP server (pipeline.api_listen) answers: the local forge's
  // API, or GitHub's webhooks (POST /webhooks/github). Empty without a
  // pipeline.
  forge::ApiServer::Handler http_handler() const;
  const config::Config& config() const { return config_; }
  // What the runs report, served on /metrics.
  metrics::Metrics& metrics() const;

  // Reaps the runs whose owner died (and any sandbox whose supervisor died),
  // appends a `recovery` record to each log, and fails or requeues each run
  // by the config's recovery policy. Then removes run directories that
  // belong to no live run. Returns the runs recovered.
  Result<size_t> Recover();

  // Keeps the image store's layer seals checked between runs
  // (images::SealWatch) instead of walking every layer at every run; where
  // this host cannot watch, says so and runs go on walking.
  void WatchImageSeals();

 private:
  Controller() = default;
  friend Result<std::unique_ptr<schedule::Scheduler>> OpenScheduler(Controller& controller);
  struct Parts;
  config::Config config_;
  std::unique_ptr<Parts> parts_;
  runner::Services services_;
};

// The configuration's schedules, each one's run checked as `kiln runs
// submit` checks a request (its role, budgets and secrets): a bad one is an
// error naming its line. Fires are recorded as this controller's owner.
Result<std::unique_ptr<schedule::Scheduler>> OpenScheduler(Controller& controller);

struct ServeOptions {
  // Return once there is nothing to do: no queued or running run, no
  // pending forge event, no result waiting for the forge (scripts, tests).
  bool until_idle = false;
};

// `kiln serve`: runs until stop becomes true (SIGTERM/SIGINT in the CLI).
Status Serve(Controller& controller, const std::atomic<bool>& stop,
             const ServeOptions& options = {});

}  // namespace kiln::daemon
