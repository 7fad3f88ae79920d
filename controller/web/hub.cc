#include "controller/web/hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>

namespace kiln::web {
namespace {

using nlohmann::json;

constexpr int64_t kStatsEveryMs = 2'000;
constexpr int64_t kKeepaliveMs = 15'000;
constexpr size_t kDashboardRows = 200;

}  // namespace

Hub::Hub(store::Store& store, RunViews& views, Options options)
    : store_(store), views_(views), options_(std::move(options)) {
  thread_ = std::thread([this] { Loop(); });
}

Hub::~Hub() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::string Hub::Event(const std::string& name, const json& data, uint64_t id) {
  std::string out;
  if (id > 0) out += "id: " + std::to_string(id) + "\n";
  return out + "event: " + name +
         "\ndata: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

void Hub::WatchRuns(std::shared_ptr<forge::Stream> stream, RunFilter filter) {
  {
    std::lock_guard lock(mu_);
    runs_watchers_.push_back(RunsWatcher{std::move(stream), std::move(filter)});
  }
  cv_.notify_all();
}

void Hub::WatchRun(std::shared_ptr<forge::Stream> stream, std::string run_id, uint64_t after) {
  {
    std::lock_guard lock(mu_);
    RunWatcher w;
    w.stream = std::move(stream);
    w.run_id = std::move(run_id);
    w.sent_rev = after;
    run_watchers_.push_back(std::move(w));
  }
  cv_.notify_all();
}

size_t Hub::watchers() {
  std::lock_guard lock(mu_);
  return runs_watchers_.size() + run_watchers_.size();
}

bool Hub::Send(forge::Stream& stream, const std::string& bytes, size_t events) {
  if (bytes.empty()) return stream.open();
  if (!stream.Write(bytes)) return false;
  events_sent_ += events;
  return true;
}

void Hub::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    try {
      Tick();
    } catch (const std::exception& e) {
      // A log or a row that surprises the renderer costs one tick, not the view.
      spdlog::error("web: live updates: {}", e.what());
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_ms), [this] { return stop_; });
  }
}

void Hub::Tick() {
  // The watchers are taken out while they are served, so that a page that
  // opens meanwhile waits for nothing; they are put back after.
  std::vector<RunsWatcher> dashboards;
  std::vector<RunWatcher> runs;
  {
    std::lock_guard lock(mu_);
    dashboards.swap(runs_watchers_);
    runs.swap(run_watchers_);
  }
  const int64_t now = options_.now();
  const bool keepalive = now - keepalive_at_ms_ >= kKeepaliveMs;
  if (keepalive) keepalive_at_ms_ = now;
  if (!dashboards.empty()) TickRuns(dashboards);
  std::map<std::string, std::vector<RunWatcher*>> by_run;
  for (auto& w : runs) by_run[w.run_id].push_back(&w);
  for (auto& [id, watchers] : by_run) TickRun(id, watchers);
  auto gone = [keepalive](const std::shared_ptr<forge::Stream>& s) {
    return !s->open() || (keepalive && !s->Write(": keepalive\n\n"));
  };
  std::erase_if(dashboards, [&](const RunsWatcher& w) { return gone(w.stream); });
  std::erase_if(runs, [&](const RunWatcher& w) { return gone(w.stream); });
  std::lock_guard lock(mu_);
  for (auto& w : dashboards) runs_watchers_.push_back(std::move(w));
  for (auto& w : runs) run_watchers_.push_back(std::move(w));
}

void Hub::TickRuns(std::vector<RunsWatcher>& watchers) {
  const int64_t now = options_.now();
  store::ListFilter f;
  f.limit = kDashboardRows;
  auto listed = store_.List(f);
  if (!listed) {
    spdlog::warn("web: listing runs: {}", listed.error().message());
    return;
  }
  // Runs in flight stay on the dashboard however many were queued after.
  store::ListFilter running;
  running.status = store::Status::kRunning;
  running.limit = 0;
  if (auto r = store_.List(running)) {
    for (auto& run : *r) {
      if (std::none_of(listed->begin(), listed->end(),
                       [&](const store::Run& l) { return l.id == run.id; })) {
        listed->push_back(std::move(run));
      }
    }
  }
  std::vector<const store::Run*> changed;
  for (const store::Run& run : *listed) {
    std::string row = RunRow(run);
    auto it = rows_.find(run.id);
    if (it != rows_.end() && it->second == row) continue;
    rows_[run.id] = std::move(row);
    changed.push_back(&run);
  }
  bool stats_changed = false;
  if (!changed.empty() || now - stats_at_ms_ >= kStatsEveryMs) {
    std::string stats = Stats(store_, now);
    stats_at_ms_ = now;
    stats_changed = stats != stats_;
    stats_ = std::move(stats);
  }
  for (RunsWatcher& w : watchers) {
    std::string bytes;
    size_t events = 0;
    const bool all = w.fresh;
    w.fresh = false;
    for (const store::Run& run : *listed) {
      if (!all && std::find(changed.begin(), changed.end(), &run) == changed.end()) continue;
      if (!w.filter.Matches(run)) continue;
      bytes += Event("run", {{"id", "run-" + run.id}, {"html", rows_[run.id]}});
      ++events;
    }
    if (all || stats_changed) {
      bytes += Event("stats", {{"id", "stats"}, {"html", stats_}});
      ++events;
    }
    Send(*w.stream, bytes, events);  // a closed stream is dropped by Tick
  }
}

void Hub::TickRun(const std::string& run_id, std::vector<RunWatcher*>& watchers) {
  auto run = store_.Get(run_id);
  if (!run) return;
  const int64_t now = options_.now();
  std::shared_ptr<RunView> view;
  if (!run->log_path.empty()) {
    auto got = views_.Get(*run, options_.log_of);
    if (!got) {
      spdlog::warn("web: run {}: {}", run_id, got.error().message());
    } else {
      view = std::move(*got);
    }
  }
  const std::string status = RunStatus(*run);
  std::optional<Verdict> verdict;
  if (store::IsTerminal(run->status) && options_.verdict) verdict = options_.verdict(*run);
  std::unique_lock<std::mutex> lock;
  std::string budgets, outcome;
  if (view) {
    lock = std::unique_lock(view->mu);
    budgets = Budgets(*view, *run, now);
    outcome = Outcome(*view, *run, verdict);
  }
  for (RunWatcher* w : watchers) {
    std::string bytes;
    size_t events = 0;
    uint64_t rev = w->sent_rev;
    if (view) {
      for (const Item& item : view->items()) {
        if (item.rev <= w->sent_rev) continue;
        bytes += Event("item", {{"id", item.id}, {"seq", item.seq}, {"html", item.html}});
        ++events;
        rev = std::max(rev, item.rev);
      }
      rev = std::max(rev, view->last_seq());
    }
    auto section = [&](const char* name, const std::string& html, std::string& sent) {
      if (html.empty() || html == sent) return;
      sent = html;
      bytes += Event(name, {{"html", html}});
      ++events;
    };
    section("status", status, w->sent_status);
    section("budgets", budgets, w->sent_budgets);
    section("outcome", outcome, w->sent_outcome);
    // The id lets a page that reconnects ask only for what came after.
    if (rev > w->sent_rev) bytes += "id: " + std::to_string(rev) + "\n\n";
    w->sent_rev = rev;
    Send(*w->stream, bytes, events);
  }
}

}  // namespace kiln::web
