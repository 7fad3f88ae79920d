// The live side of the web view: server-sent events to the pages that watch
// the dashboard or a run. One thread polls the store and the logs of the
// watched runs (a run's log is read once, however many pages watch it) and
// sends each page what changed since what it was sent: dashboard rows and
// figures; a run's new and changed timeline items, its budgets, its status
// and outcome.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "controller/forge/api.h"
#include "controller/store/store.h"
#include "controller/web/pages.h"
#include "controller/web/runview.h"

namespace kiln::web {

class Hub {
 public:
  struct Options {
    int poll_ms = 200;
    std::function<int64_t()> now;
    // The log's verdict for a run that has ended (its outcome section).
    std::function<std::optional<Verdict>(const store::Run&)> verdict;
    // Where a run's log can be read here (SiteOptions::log_of).
    LogOf log_of;
  };
  Hub(store::Store& store, RunViews& views, Options options);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // The dashboard's rows that match filter, all at first, then as they
  // change; its figures as they change.
  void WatchRuns(std::shared_ptr<forge::Stream> stream, RunFilter filter);
  // A run's timeline items changed after log seq `after`, then as they
  // come; its budgets, status and outcome.
  void WatchRun(std::shared_ptr<forge::Stream> stream, std::string run_id, uint64_t after);

  // Pages watching now, and events sent since start (for tests and the
  // benchmark).
  size_t watchers();
  uint64_t events_sent() const { return events_sent_.load(); }

  // One server-sent event: "event: NAME", "data: JSON" (one line), and an
  // id when given.
  static std::string Event(const std::string& name, const nlohmann::json& data, uint64_t id = 0);

 private:
  struct RunsWatcher {
    std::shared_ptr<forge::Stream> stream;
    RunFilter filter;
    bool fresh = true;
  };
  struct RunWatcher {
    std::shared_ptr<forge::Stream> stream;
    std::string run_id;
    uint64_t sent_rev = 0;
    std::string sent_status, sent_outcome, sent_budgets;
  };

  void Loop();
  void Tick();
  void TickRuns(std::vector<RunsWatcher>& watchers);
  void TickRun(const std::string& run_id, std::vector<RunWatcher*>& watchers);
  bool Send(forge::Stream& stream, const std::string& bytes, size_t events);

  store::Store& store_;
  RunViews& views_;
  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                       // guarded by mu_
  std::vector<RunsWatcher> runs_watchers_;  // guarded by mu_
  std::vector<RunWatcher> run_watchers_;    // guarded by mu_
  std::atomic<uint64_t> events_sent_{0};
  // The loop's own state: the rows and figures the dashboards were sent.
  std::map<std::string, std::string> rows_;  // run id -> row markup
  std::string stats_;
  int64_t stats_at_ms_ = 0;
  int64_t keepalive_at_ms_ = 0;
  std::thread thread_;
};

}  // namespace kiln::web
