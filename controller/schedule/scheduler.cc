#include "controller/schedule/scheduler.h"

#include <spdlog/spdlog.h>

#include <sstream>

namespace kiln::schedule {
namespace {

constexpr int64_t kTwoDaysMs = 2 * 24 * 3600 * 1000LL;

// The part of its jitter a tick waits: FNV-1a of the name and the tick, so
// that every host waits the same.
int64_t JitterOf(const config::Config::Schedule& s, int64_t tick) {
  if (s.jitter_ms == 0) return 0;
  uint64_t h = 1469598103934665603ull;
  for (char c : s.name + "@" + std::to_string(tick)) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return static_cast<int64_t>(h % s.jitter_ms);
}

}  // namespace

store::RunRequest RequestFor(const config::Config::Schedule& schedule, int max_attempts) {
  store::RunRequest r;
  r.role = schedule.run.role;
  r.repo = schedule.run.repo;
  r.commit = schedule.run.commit;
  r.task = schedule.run.task;
  r.priority = schedule.run.priority;
  for (const auto& [name, value] : schedule.run.budgets) r.budgets[name] = value;
  r.requested_by = "schedule:" + schedule.name;
  r.max_attempts = max_attempts;
  return r;
}

Result<std::unique_ptr<Scheduler>> Scheduler::Open(const config::Config& config,
                                                   store::Store& store, std::string host,
                                                   ImproveStarter improve) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<State> state, State::Open(config.store));
  std::vector<Entry> entries;
  for (const config::Config::Schedule& s : config.schedules) {
    auto parsed = cron::Schedule::Parse(s.cron, s.time_zone);
    if (!parsed) return parsed.error().Wrap(s.where + ": schedule " + Quote(s.name));
    entries.push_back(Entry{&s, std::move(*parsed), std::nullopt});
  }
  return std::unique_ptr<Scheduler>(new Scheduler(
      config, store, std::move(host), std::move(improve), std::move(state), std::move(entries)));
}

Scheduler::Scheduler(const config::Config& config, store::Store& store, std::string host,
                     ImproveStarter improve, std::unique_ptr<State> state,
                     std::vector<Entry> entries)
    : config_(config),
      store_(store),
      host_(std::move(host)),
      improve_(std::move(improve)),
      state_(std::move(state)),
      entries_(std::move(entries)) {}

const Scheduler::Entry* Scheduler::Find(const std::string& name) const {
  for (const Entry& e : entries_) {
    if (e.config->name == name) return &e;
  }
  return nullptr;
}

Result<std::string> Scheduler::Launch(const config::Config::Schedule& sc, int64_t now_ms) {
  if (sc.improves()) {
    if (!improve_) {
      return Error::Invalid("schedule " + Quote(sc.name) +
                            " starts the improver, which needs the pipeline (pipeline.enabled)");
    }
    return improve_(sc, now_ms);
  }
  KILN_ASSIGN_OR_RETURN(store::Run run,
                        store_.Enqueue(RequestFor(sc, config_.retry.max_attempts), now_ms));
  return run.id;
}

Result<Fire> Scheduler::Start(Fire fire) {
  const Entry* e = Find(fire.name);
  if (!e) {
    // A fire orphaned by a host whose configuration had a schedule this one
    // does not.
    fire.outcome = "skipped";
    fire.reason = "the schedule is not in " + config_.source + " on " + host_;
    KILN_TRY(state_->SetOutcome(fire.seq, fire.outcome, "", fire.reason));
    return fire;
  }
  auto run_id = Launch(*e->config, fire.claimed_ms);
  // Left claimed: another pass (or host) queues it once it is orphaned.
  if (!run_id) return run_id.error().Wrap("schedule " + Quote(fire.name) + ": starting its run");
  fire.outcome = "fired";
  fire.run_id = *run_id;
  KILN_TRY(state_->SetOutcome(fire.seq, fire.outcome, fire.run_id, ""));
  spdlog::info("schedule {}: {} {} queued run {}", fire.name, fire.kind,
               e->cron.Local(fire.tick_ms), fire.run_id);
  return fire;
}

Result<std::vector<Fire>> Scheduler::Tick(int64_t now_ms) {
  std::vector<Fire> made;
  if (!entries_.empty() && now_ms >= next_orphan_check_ms_) {
    next_orphan_check_ms_ = now_ms + 10'000;
    KILN_ASSIGN_OR_RETURN(auto orphans,
                          state_->TakeOverOrphans(host_, now_ms - kOrphanAfterMs, now_ms));
    for (Fire& f : orphans) {
      spdlog::warn(
          "schedule {}: fire {} was claimed by a host that never queued its run; "
          "queueing it",
          f.name, f.seq);
      KILN_ASSIGN_OR_RETURN(Fire started, Start(std::move(f)));
      made.push_back(std::move(started));
    }
  }
  for (Entry& e : entries_) {
    const std::string& name = e.config->name;
    if (!e.last) {
      KILN_ASSIGN_OR_RETURN(int64_t last, state_->LastTick(name, now_ms));
      e.last = last;
    }
    int64_t due = e.cron.Next(*e.last);
    if (now_ms < due + JitterOf(*e.config, due)) continue;
    // Ticks missed while no kiln ran fold into the latest of them.
    int64_t tick = due;
    if (now_ms - tick > kTwoDaysMs) {
      int64_t near = e.cron.Next(now_ms - kTwoDaysMs);
      if (near <= now_ms) tick = near;
    }
    for (int64_t n = e.cron.Next(tick); n <= now_ms; n = e.cron.Next(tick)) tick = n;
    KILN_ASSIGN_OR_RETURN(auto claimed, state_->ClaimTick(name, *e.last, tick, host_, now_ms));
    if (!claimed) {
      e.last.reset();  // another host took it: read the store again
      continue;
    }
    e.last = tick;
    if (claimed->outcome == "skipped") {
      spdlog::info("schedule {}: tick {} skipped: {}", name, e.cron.Local(tick), claimed->reason);
      made.push_back(std::move(*claimed));
      continue;
    }
    KILN_ASSIGN_OR_RETURN(Fire started, Start(std::move(*claimed)));
    made.push_back(std::move(started));
  }
  return made;
}

Result<Fire> Scheduler::FireNow(const std::string& name, int64_t now_ms) {
  if (!Find(name)) {
    std::string known;
    for (const Entry& e : entries_) known += (known.empty() ? "" : ", ") + e.config->name;
    return Error::NotFound("no schedule named " + Quote(name) + " in " + config_.source +
                           (known.empty() ? " (it has none)" : " (it has " + known + ")"));
  }
  KILN_ASSIGN_OR_RETURN(Fire fire, state_->ClaimManual(name, host_, now_ms));
  if (fire.outcome == "skipped") return fire;
  return Start(std::move(fire));
}

Result<std::vector<Listing>> Scheduler::List(int64_t now_ms) {
  std::vector<Listing> out;
  for (const Entry& e : entries_) {
    Listing l;
    l.schedule = e.config;
    KILN_ASSIGN_OR_RETURN(auto last_tick, state_->PeekLastTick(e.config->name));
    l.next_ms = e.cron.Next(last_tick.value_or(now_ms));
    l.next_local = e.cron.Local(l.next_ms);
    KILN_ASSIGN_OR_RETURN(l.last, state_->Last(e.config->name));
    if (l.last) l.last_local = e.cron.Local(l.last->tick_ms);
    if (l.last && !l.last->run_id.empty()) {
      auto run = store_.Get(l.last->run_id);
      if (run) l.last_run_status = std::string(store::ToString(run->status));
    }
    KILN_ASSIGN_OR_RETURN(l.totals, state_->TotalsOf(e.config->name));
    out.push_back(std::move(l));
  }
  return out;
}

std::string Scheduler::Metrics() {
  if (entries_.empty()) return "";
  std::ostringstream fires, skips, lateness;
  fires << "# HELP kiln_schedule_fires_total Fires that queued a run, by schedule (all hosts).\n"
           "# TYPE kiln_schedule_fires_total counter\n";
  skips << "# HELP kiln_schedule_skips_total Fires skipped because the schedule's previous run "
           "was still active, by schedule (all hosts).\n"
           "# TYPE kiln_schedule_skips_total counter\n";
  lateness << "# HELP kiln_schedule_lateness_seconds From the last fired tick's time to its "
              "claim (jitter included), by schedule.\n"
              "# TYPE kiln_schedule_lateness_seconds gauge\n";
  for (const Entry& e : entries_) {
    auto t = state_->TotalsOf(e.config->name);
    if (!t) {
      spdlog::error("metrics: {}", t.error().message());
      continue;
    }
    std::string label = "{schedule=\"" + e.config->name + "\"} ";
    fires << "kiln_schedule_fires_total" << label << t->fires << "\n";
    skips << "kiln_schedule_skips_total" << label << t->skips << "\n";
    if (t->last_lateness_ms >= 0) {
      lateness << "kiln_schedule_lateness_seconds" << label
               << static_cast<double>(t->last_lateness_ms) / 1000 << "\n";
    }
  }
  return fires.str() + skips.str() + lateness.str();
}

}  // namespace kiln::schedule
