// `kiln schedules list|run` (docs/schedules.md).
#include "controller/app/schedule_cli.h"

#include <cstdio>
#include <iostream>
#include <memory>

#include "base/clock.h"
#include "base/terminal.h"
#include "controller/app/cli_common.h"
#include "controller/schedule/scheduler.h"

namespace kiln::controller::cli {
namespace {

using nlohmann::json;

struct SchedulesOptions {
  std::string config, name;
  bool json = false;
};

json FireJson(const schedule::Fire& f, const std::string& local) {
  json j = {{"seq", f.seq},         {"kind", f.kind}, {"tick_ms", f.tick_ms},      {"tick", local},
            {"outcome", f.outcome}, {"host", f.host}, {"claimed_ms", f.claimed_ms}};
  if (local.empty()) j.erase("tick");
  if (!f.run_id.empty()) j["run_id"] = f.run_id;
  if (!f.reason.empty()) j["reason"] = f.reason;
  return j;
}

// What the last fire came to, in a few words.
std::string LastOutcome(const schedule::Listing& l) {
  if (!l.last) return "-";
  const schedule::Fire& f = *l.last;
  if (f.outcome == "fired") return f.run_id + " " + l.last_run_status;
  if (f.outcome == "skipped") return "skipped: " + f.reason;
  return f.outcome + " by " + f.host;
}

int DoList(const SchedulesOptions& o) {
  auto cfg = LoadConfig(o.config);
  if (!cfg) return Fail(cfg.error());
  auto store = store::Open(cfg->store);
  if (!store) return Fail(store.error(), kInfrastructure);
  auto scheduler = schedule::Scheduler::Open(*cfg, **store, "cli");
  if (!scheduler) return Fail(scheduler.error(), kInfrastructure);
  auto listing = (*scheduler)->List(NowMs());
  if (!listing) return Fail(listing.error(), kInfrastructure);
  if (o.json) {
    json a = json::array();
    for (const schedule::Listing& l : *listing) {
      const config::Config::Schedule& s = *l.schedule;
      json j = {{"name", s.name},           {"cron", s.cron},          {"time_zone", s.time_zone},
                {"jitter_ms", s.jitter_ms}, {"next_ms", l.next_ms},    {"next", l.next_local},
                {"fires", l.totals.fires},  {"skips", l.totals.skips}, {"where", s.where}};
      if (s.improves()) {
        j["improve"] = {{"role", s.improve.role},
                        {"repo", s.improve.repo},
                        {"lookback_ms", s.improve.lookback_ms},
                        {"tasks", s.improve.tasks}};
      } else {
        j["run"] = {{"role", s.run.role}, {"repo", s.run.repo}, {"commit", s.run.commit}};
      }
      if (l.totals.last_lateness_ms >= 0) j["lateness_ms"] = l.totals.last_lateness_ms;
      if (l.last) {
        j["last"] = FireJson(*l.last, l.last_local);
        if (!l.last_run_status.empty()) j["last"]["run_status"] = l.last_run_status;
      }
      a.push_back(std::move(j));
    }
    std::cout << ForTerminalJson(a.dump(2)) << "\n";
    return 0;
  }
  std::printf("%-20s %-16s %-26s %-26s %s\n", "SCHEDULE", "CRON", "NEXT", "LAST", "OUTCOME");
  for (const schedule::Listing& l : *listing) {
    std::printf("%-20s %-16s %-26s %-26s %s\n", l.schedule->name.c_str(),
                ForTerminalLine(l.schedule->cron).c_str(), l.next_local.c_str(),
                l.last ? l.last_local.c_str() : "-", ForTerminalLine(LastOutcome(l)).c_str());
  }
  return 0;
}

int DoRun(const SchedulesOptions& o) {
  int code = 0;
  auto c = OpenController(o.config, &code);
  if (!c) return code;
  auto scheduler = daemon::OpenScheduler(*c);
  if (!scheduler) return Fail(scheduler.error());
  auto fire = (*scheduler)->FireNow(o.name, NowMs());
  if (!fire) {
    return Fail(fire.error(),
                fire.error().code() == Error::Code::kNotFound ? kUsage : kInfrastructure);
  }
  if (o.json) std::cout << ForTerminalJson(FireJson(*fire, "").dump(2)) << "\n";
  if (fire->outcome == "skipped") {
    spdlog::error("schedule {} skipped: {}", o.name, fire->reason);
    return kFailed;
  }
  if (!o.json) std::printf("%s\n", fire->run_id.c_str());
  return 0;
}

}  // namespace

void RegisterSchedules(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<SchedulesOptions>();
  auto* cmd = app.add_subcommand("schedules", "The configuration's schedules: list them, fire one");
  cmd->require_subcommand(1);
  auto* list = cmd->add_subcommand(
      "list", "Each schedule's next tick, its last fire and what came of it, fires and skips");
  list->add_flag("--json", o->json, "JSON output");
  auto* run = cmd->add_subcommand(
      "run",
      "Fire a schedule now: queue its run for `kiln serve`, unless its previous run is still "
      "queued or running (exit 1, recorded as skipped); prints the run's id");
  run->add_option("name", o->name, "the schedule's name")->required();
  run->add_flag("--json", o->json, "print the fire as JSON");
  for (CLI::App* c : {list, run}) {
    c->add_option("--config", o->config, "configuration file (default /etc/kiln/kiln.yaml)");
  }
  list->callback([o, exit_code] { *exit_code = DoList(*o); });
  run->callback([o, exit_code] { *exit_code = DoRun(*o); });
}

}  // namespace kiln::controller::cli
