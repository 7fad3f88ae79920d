#include "controller/app/cli.h"

#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <thread>

#include "base/clock.h"
#include "base/fd.h"
#include "base/terminal.h"
#include "controller/app/cli_common.h"
#include "controller/app/daemon.h"
#include "controller/app/image_cli.h"
#include "controller/app/schedule_cli.h"
#include "controller/app/web_cli.h"
#include "controller/audit/audit.h"
#include "controller/fleet/logs.h"
#include "controller/replay/replay.h"
#include "controller/run/log_recovery.h"
#include "controller/sessionlog/record.h"
#include "controller/store/postgres.h"

namespace kiln::controller::cli {

std::function<Result<std::string>(const store::Run&)> LogHere(const config::Config& cfg,
                                                              store::Store& store) {
  auto signer = sessionlog::LoadSigner(cfg.key_dir);
  if (!signer) return nullptr;
  std::shared_ptr<const sessionlog::Signer> key = std::move(*signer);
  auto fetcher = std::make_shared<fleet::Fetcher>(store, *key, runner::OwnerId(cfg.host_name),
                                                  cfg.state_dir + "/fleet-logs");
  return [key, fetcher](const store::Run& run) { return fetcher->LogOf(run); };
}

namespace {

using nlohmann::json;

int ExitFor(const store::Run& run) {
  // An error that was the request's fault is bad input, found at run time.
  if (run.status == store::Status::kError && run.outcome == "bad_input") return kUsage;
  switch (run.status) {
    case store::Status::kSucceeded:
      return kSucceeded;
    case store::Status::kBudgetExhausted:
      return kBudget;
    case store::Status::kCancelled:
      return kCancelled;
    case store::Status::kError:
      return kInfrastructure;
    default:
      return kFailed;
  }
}

// A run's text fields came from outside (a forge's request, the agent's
// result and diff, an error quoting the agent's output): shown, never obeyed.
void PrintRun(const store::Run& r, bool with_patch) {
  auto line = [](const std::string& s) { return ForTerminalLine(s); };
  std::printf("run      %s\n", r.id.c_str());
  std::printf("status   %s%s\n", std::string(store::ToString(r.status)).c_str(),
              r.outcome.empty() ? "" : (" (" + line(r.outcome) + ")").c_str());
  std::printf("role     %s\n", line(r.request.role).c_str());
  std::printf("repo     %s @ %s%s\n", line(r.request.repo).c_str(), line(r.request.commit).c_str(),
              r.commit_sha.empty() ? "" : (" = " + r.commit_sha).c_str());
  std::printf("attempt  %d of %d\n", r.attempt, r.request.max_attempts);
  std::printf("times    created %s, started %s, finished %s\n", store::Utc(r.created_ms).c_str(),
              store::Utc(r.started_ms).c_str(), store::Utc(r.finished_ms).c_str());
  if (!r.error.empty()) std::printf("error    %s\n", line(r.error).c_str());
  if (r.result.is_object()) {
    if (r.result.contains("result"))
      std::printf("result   %s\n", ForTerminalJson(r.result["result"].dump()).c_str());
    if (r.result.contains("diff")) {
      const json& d = r.result["diff"];
      std::printf("diff     %zu file(s), %llu bytes, sha256 %s%s\n", d["files"].size(),
                  static_cast<unsigned long long>(d.value("bytes", 0)),
                  d.value("sha256", "").c_str(), d.value("truncated", false) ? " (truncated)" : "");
      for (const auto& f : d["files"]) {
        std::printf(
            "         %s %s%s\n", line(f.value("status", "?")).c_str(),
            line(f.value("path", "")).c_str(),
            f.contains("link_target") ? (" -> " + line(f.value("link_target", ""))).c_str() : "");
      }
      if (with_patch) {
        // Byte for byte into a pipe (git apply); escaped on a terminal.
        std::string patch = d.value("patch", "");
        if (::isatty(STDOUT_FILENO)) patch = ForTerminal(patch);
        std::printf("\n%s", patch.c_str());
      }
    }
  }
  if (!r.log_path.empty()) std::printf("log      %s\n", r.log_path.c_str());
}

struct RequestOptions {
  std::string config, repo, commit, role, task, task_file, image;
  int priority = 0;
  std::vector<std::string> budgets;  // name=value
  bool json = false;
};

Result<store::RunRequest> BuildRequest(const RequestOptions& o, const config::Config& cfg) {
  store::RunRequest r;
  r.repo = o.repo;
  r.commit = o.commit;
  r.role = o.role;
  r.priority = o.priority;
  r.max_attempts = cfg.retry.max_attempts;
  if (o.task.empty() == o.task_file.empty()) {
    return Error::Invalid("give the task with exactly one of --task and --task-file");
  }
  if (!o.task_file.empty()) {
    KILN_ASSIGN_OR_RETURN(r.task, ReadFile(o.task_file));
  } else {
    r.task = o.task;
  }
  if (r.task.empty()) return Error::Invalid("the task is empty");
  for (const std::string& b : o.budgets) {
    size_t eq = b.find('=');
    if (eq == std::string::npos) {
      return Error::Invalid("--budget " + Quote(b) + ": expected NAME=VALUE, e.g. max_turns=20");
    }
    json v = json::parse(b.substr(eq + 1), nullptr, false);
    if (v.is_discarded() || !v.is_number()) {
      return Error::Invalid("--budget " + Quote(b) + ": the value must be a number");
    }
    r.budgets[b.substr(0, eq)] = v;
  }
  if (!o.image.empty()) r.context = json{{"image", o.image}};
  const char* user = std::getenv("SUDO_USER");
  r.requested_by = std::string("cli:") + (user ? user : std::to_string(::getuid()));
  return r;
}

void AddRequestOptions(CLI::App* cmd, RequestOptions* o) {
  cmd->add_option("--config", o->config, "configuration file (default /etc/kiln/kiln.yaml)");
  cmd->add_option("--repo", o->repo, "repository URL or path")->required();
  cmd->add_option("--commit", o->commit, "commit, branch or tag")->required();
  cmd->add_option("--role", o->role, "role (a skill under the skills directory)")->required();
  cmd->add_option("--task", o->task, "the task text");
  cmd->add_option("--task-file", o->task_file, "a file holding the task text");
  cmd->add_option("--priority", o->priority, "higher runs first (default 0)");
  cmd->add_option("--image", o->image,
                  "the toolchain image (a store image's name or digest, or 'host'); default: the "
                  "skill's, else the configuration's");
  cmd->add_option("--budget", o->budgets, "NAME=VALUE budget override (repeatable)")
      ->allow_extra_args(false);
  cmd->add_flag("--json", o->json, "print the run as JSON");
}

// Checks a request the way the daemon would run it, before anything is
// queued: the role, its secrets and budgets, the repository and commit.
Result<store::RunRequest> Admit(const RequestOptions& o, daemon::Controller& c) {
  KILN_ASSIGN_OR_RETURN(store::RunRequest req, BuildRequest(o, c.config()));
  KILN_TRY(runner::CheckRequest(c.services(), req));
  auto repo = c.services().cache->Resolve(req.repo, req.commit);
  if (!repo) return repo.error();
  return req;
}

std::atomic<bool> g_stop{false};

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Before any thread starts (the proxy's, the store's): every thread inherits
// the mask, so no thread but the SignalWaiter's ever takes a stop signal.
void BlockStopSignals() {
  sigset_t set = StopSignals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// SIGINT and SIGTERM are taken by one thread (sigwait); on_signal runs there.
// BlockStopSignals() must have run first.
class SignalWaiter {
 public:
  explicit SignalWaiter(std::function<void(int)> on_signal) {
    sigset_t set = StopSignals();
    thread_ = std::thread([set, this, on_signal = std::move(on_signal)]() {
      int sig = 0;
      ::sigwait(&set, &sig);
      if (!done_.load()) on_signal(sig);
    });
  }
  ~SignalWaiter() {
    done_.store(true);
    ::pthread_kill(thread_.native_handle(), SIGTERM);  // wakes sigwait if still waiting
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

int DoRun(const RequestOptions& o) {
  BlockStopSignals();
  int code = 0;
  auto c = OpenController(o.config, &code);
  if (!c) return code;
  auto req = Admit(o, *c);
  if (!req) return Fail(req.error());
  const runner::Services& s = c->services();
  // Earlier attempts' logs (this run's or others') that could not be closed
  // when their disk was full are closed first.
  log_recovery::Sweeper sweeper(c->config().log_dir, s.signer);
  sweeper.Sweep();
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  };
  // Running from the start: a daemon on the same store never claims it.
  auto claim_start = std::chrono::steady_clock::now();
  auto started = s.store->StartNew(*req, s.owner, NowMs());
  if (!started) return Fail(started.error(), kInfrastructure);
  double claim_ms = since(claim_start);
  std::fprintf(stderr, "kiln: run %s started\n", started->id.c_str());
  // SIGINT/SIGTERM cancel the run, as `kiln runs cancel` would.
  const std::string id = started->id;
  SignalWaiter waiter([&s, id](int) {
    spdlog::info("run {}: signal received, cancelling", id);
    (void)s.store->RequestCancel(id, NowMs());
  });
  store::Run last;
  for (;;) {
    last = runner::Execute(s, *started, g_stop, claim_ms);
    if (last.status != store::Status::kQueued) break;
    int64_t wait = last.not_before_ms - NowMs();
    spdlog::warn("run {}: attempt {} failed ({}); retrying in {} ms", last.id, last.attempt,
                 last.error, std::max<int64_t>(wait, 0));
    if (wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    sweeper.Sweep();
    claim_start = std::chrono::steady_clock::now();
    started = s.store->Start(id, s.owner, NowMs());
    if (!started) return Fail(started.error(), kInfrastructure);
    claim_ms = since(claim_start);
  }
  sweeper.Sweep();
  if (o.json) {
    std::cout << ForTerminalJson(store::ToJson(last).dump(2)) << "\n";
  } else {
    PrintRun(last, false);
  }
  return ExitFor(last);
}

int DoSubmit(const RequestOptions& o) {
  int code = 0;
  auto c = OpenController(o.config, &code);
  if (!c) return code;
  auto req = Admit(o, *c);
  if (!req) return Fail(req.error());
  auto run = c->services().store->Enqueue(*req, NowMs());
  if (!run) return Fail(run.error(), kInfrastructure);
  if (o.json) {
    std::cout << ForTerminalJson(store::ToJson(*run).dump(2)) << "\n";
  } else {
    std::printf("%s\n", run->id.c_str());
  }
  return 0;
}

int DoServe(const std::string& config_path, const daemon::ServeOptions& options) {
  BlockStopSignals();
  int code = 0;
  auto c = OpenController(config_path, &code);
  if (!c) return code;
  SignalWaiter waiter([](int sig) {
    spdlog::info("kiln serve: signal {}, stopping", sig);
    g_stop.store(true);
  });
  Status st = daemon::Serve(*c, g_stop, options);
  if (!st.ok()) {
    // A schedule the configuration got wrong is the user's to mend.
    bool usage = st.error().code() == Error::Code::kInvalidArgument ||
                 st.error().code() == Error::Code::kNotFound;
    return Fail(st.error(), usage ? kUsage : kInfrastructure);
  }
  return 0;
}

// Opens only the store: `kiln runs` works beside a running daemon.
Result<std::unique_ptr<store::Store>> OpenStore(const std::string& config_path) {
  KILN_ASSIGN_OR_RETURN(config::Config cfg, LoadConfig(config_path));
  return store::Open(cfg.store);
}

struct RunsOptions {
  std::string config, id, status, role, repo, message, from;
  size_t limit = 50;
  bool json = false, patch = false;
};

int DoList(const RunsOptions& o) {
  auto st = OpenStore(o.config);
  if (!st) return Fail(st.error());
  store::ListFilter f;
  if (!o.status.empty()) {
    auto s = store::ParseStatus(o.status);
    if (!s) return Fail(s.error());
    f.status = *s;
  }
  f.role = o.role;
  f.repo = o.repo;
  f.limit = o.limit;
  auto runs = (*st)->List(f);
  if (!runs) return Fail(runs.error(), kInfrastructure);
  if (o.json) {
    json a = json::array();
    for (const auto& r : *runs) a.push_back(store::ToJson(r));
    std::cout << ForTerminalJson(a.dump(2)) << "\n";
    return 0;
  }
  std::printf("%-26s %-17s %-10s %-20s %s\n", "RUN", "STATUS", "ROLE", "CREATED", "REPOSITORY");
  for (const auto& r : *runs) {
    std::printf("%-26s %-17s %-10s %-20s %s@%s\n", r.id.c_str(),
                std::string(store::ToString(r.status)).c_str(),
                ForTerminalLine(r.request.role).c_str(), store::Utc(r.created_ms).c_str(),
                ForTerminalLine(r.request.repo).c_str(), ForTerminalLine(r.request.commit).c_str());
  }
  return 0;
}

int DoShow(const RunsOptions& o) {
  auto cfg = LoadConfig(o.config);
  if (!cfg) return Fail(cfg.error());
  auto st = store::Open(cfg->store);
  if (!st) return Fail(st.error());
  auto r = (*st)->Get(o.id);
  if (!r) return Fail(r.error());
  if (o.json) {
    std::cout << ForTerminalJson(store::ToJson(*r).dump(2)) << "\n";
    return 0;
  }
  PrintRun(*r, o.patch);
  // On a fleet, the log may be on another host: fetched and verified here.
  if (!r->log_path.empty() && !runner::OwnerHere(r->owner, cfg->host_name)) {
    auto here = LogHere(*cfg, **st);
    auto path = here ? here(*r)
                     : Result<std::string>(Error::NotFound(
                           "this host has no session-log key to ask the other host with"));
    if (path) {
      std::printf("         written on host %s; verified copy here: %s\n",
                  ForTerminalLine(r->owner).c_str(), path->c_str());
    } else {
      std::printf("         written on host %s; not fetched: %s\n",
                  ForTerminalLine(r->owner).c_str(),
                  ForTerminalLine(path.error().message()).c_str());
    }
  }
  return 0;
}

int DoCancel(const RunsOptions& o) {
  auto st = OpenStore(o.config);
  if (!st) return Fail(st.error());
  auto r = (*st)->RequestCancel(o.id, NowMs());
  if (!r) return Fail(r.error());
  std::printf("%s %s\n", r->id.c_str(),
              r->status == store::Status::kCancelled
                  ? "cancelled"
                  : "cancel requested (its controller stops it)");
  return 0;
}

int DoSteer(const RunsOptions& o) {
  auto st = OpenStore(o.config);
  if (!st) return Fail(st.error());
  if (o.message.empty()) return Fail(Error::Invalid("--message must not be empty"));
  const char* user = std::getenv("SUDO_USER");
  std::string from =
      !o.from.empty() ? o.from : std::string("cli:") + (user ? user : std::to_string(::getuid()));
  if (Status s = (*st)->AddSteering(o.id, from, o.message, NowMs()); !s.ok()) {
    return Fail(s.error());
  }
  std::printf("%s: message queued for the agent\n", o.id.c_str());
  return 0;
}

struct ReplayOptions {
  std::string config, report, skill;
  std::vector<std::string> targets;
  std::vector<std::string> companions;  // --companion PATH=FILE
  bool json = false;
  replay::Options replay;
};

// `kiln replay`: the report on stdout (text or JSON) and in --report FILE
// (JSON); the exit status says identical (0), diverged (1), refused (2) or
// failed (125).
int DoReplay(const ReplayOptions& o) {
  if (o.targets.size() > 1 && !o.replay.rerun) {
    return Fail(Error::Invalid("several runs at once are re-runs: add --rerun"));
  }
  if ((!o.skill.empty() || !o.replay.model.empty() || !o.companions.empty()) && !o.replay.rerun) {
    return Fail(Error::Invalid(
        "--skill, --companion and --model change the run: they need --rerun (a replay gives the "
        "recorded run its recorded skill and model)"));
  }
  replay::Options base = o.replay;
  if (!o.skill.empty()) {
    size_t eq = o.skill.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == o.skill.size()) {
      return Fail(Error::Invalid("--skill " + Quote(o.skill) + ": expected ROLE=PATH"));
    }
    base.skill_role = o.skill.substr(0, eq);
    base.skill_file = o.skill.substr(eq + 1);
  }
  // --companion PATH=FILE: the re-run's companion skills are exactly these
  // (PATH in the repository, the text from FILE), as the improver tests a
  // change of guidance.
  if (!o.companions.empty()) {
    std::map<std::string, std::string> by_path;
    for (const std::string& c : o.companions) {
      size_t eq = c.find('=');
      std::string path = c.substr(0, eq);
      if (eq == std::string::npos || eq == 0 || eq + 1 == c.size()) {
        return Fail(Error::Invalid("--companion " + Quote(c) +
                                   ": expected PATH=FILE, e.g. .kiln/skills/edit/SKILL.md=new.md"));
      }
      if (path[0] == '/' || ("/" + path + "/").find("/../") != std::string::npos) {
        return Fail(Error::Invalid("--companion " + Quote(c) + ": " + Quote(path) +
                                   " must be a path inside the repository"));
      }
      auto text = ReadFile(c.substr(eq + 1));
      if (!text) return Fail(text.error().Wrap("--companion " + Quote(c)));
      if (!by_path.emplace(path, std::move(*text)).second) {
        return Fail(Error::Invalid("--companion: " + Quote(path) + " is given twice"));
      }
    }
    base.companions.emplace(by_path.begin(), by_path.end());
  }
  BlockStopSignals();
  int code = 0;
  auto c = OpenController(o.config, &code);
  if (!c) return code;
  SignalWaiter waiter([](int sig) {
    spdlog::info("kiln replay: signal {}, stopping the replay", sig);
    g_stop.store(true);
  });
  std::vector<replay::Options> each(o.targets.size(), base);
  for (size_t i = 0; i < each.size(); ++i) each[i].target = o.targets[i];
  std::vector<replay::Report> reports = replay::ReplayAll(c->services(), each, g_stop);
  // One report per run (a JSON array for several); the worst exit status.
  json all = json::array();
  std::string text;
  int worst = 0;
  for (const auto& rep : reports) {
    all.push_back(rep.ToJson());
    text += (text.empty() ? "" : "\n") + rep.ToText();
    worst = std::max(worst, rep.exit_code);
  }
  const json& j = reports.size() == 1 ? all[0] : all;
  if (!o.report.empty()) {
    if (Status st = WriteFileAtomic(o.report, j.dump(2) + "\n", 0644); !st.ok()) {
      return Fail(st.error().Wrap("--report"), replay::kInfrastructure);
    }
  }
  if (o.json) {
    std::cout << ForTerminalJson(j.dump(2)) << "\n";
  } else {
    // The values compared are the agent's and its tools': shown, not obeyed.
    std::cout << ForTerminal(text);
  }
  return worst;
}

struct AuditOptions {
  std::string config, target, format = "html", output;
};

// `kiln audit`: the report to -o FILE or stdout. Exit 0 when the log
// verifies, 1 when it does not (the report says why), 2 for bad input.
int DoAudit(const AuditOptions& o) {
  auto cfg = LoadConfig(o.config);
  if (!cfg) return Fail(cfg.error());
  auto st = store::Open(cfg->store);
  if (!st) return Fail(st.error(), kInfrastructure);
  auto path = runner::FindLog(**st, o.target, LogHere(*cfg, **st));
  if (!path) return Fail(path.error());
  auto keys = sessionlog::TrustedKeys(cfg->key_dir);
  if (!keys) return Fail(keys.error(), kInfrastructure);
  // A run of another host of the fleet: its log is signed with that host's key.
  if (auto run = (**st).Get(o.target); run) {
    for (auto& key : fleet::KeysOfRunHost(**st, *run, runner::OwnerId(cfg->host_name))) {
      keys->push_back(std::move(key));
    }
  }
  auto report = audit::Build(*path, *keys);
  if (!report) return Fail(report.error());
  // Where this host's web view shows the run, when it serves one.
  const std::string run_id = (*report)["inputs"].value("run_id", "");
  if (!cfg->pipeline.api_listen.empty() && sessionlog::ValidRunId(run_id)) {
    (*report)["run_page"] = config::WebUrl(*cfg) + "/runs/" + run_id;
  }
  std::string text = o.format == "json" ? report->dump(2) + "\n"
                     : o.format == "md" ? audit::Markdown(*report)
                                        : audit::Html(*report);
  if (o.output.empty() || o.output == "-") {
    // HTML and Markdown are escaped for their readers, not for a terminal.
    std::cout << (::isatty(STDOUT_FILENO) ? ForTerminal(text) : text);
  } else if (Status w = WriteFileAtomic(o.output, text, 0644); !w.ok()) {
    return Fail(w.error().Wrap("-o"), kInfrastructure);
  }
  return (*report)["verification"]["verified"].get<bool>() ? 0 : kFailed;
}

}  // namespace

std::unique_ptr<daemon::Controller> OpenController(const std::string& config_path, int* code) {
  // A runtime that exits while a steering message is being written must show
  // up as a failed write, not kill the controller.
  ::signal(SIGPIPE, SIG_IGN);
  auto cfg = LoadConfig(config_path);
  if (!cfg) {
    *code = Fail(cfg.error());
    return nullptr;
  }
  auto c = daemon::Controller::Open(std::move(*cfg));
  if (!c) {
    *code = Fail(c.error(), kInfrastructure);
    return nullptr;
  }
  return std::move(*c);
}

int Gc(const std::string& state_dir, const std::string& config_path) {
  auto cfg = LoadConfig(config_path);
  if (!cfg) return Fail(cfg.error());
  if (!state_dir.empty() && state_dir != cfg->state_dir) {
    // `kiln sandbox gc --state-dir D` without a configuration: the
    // controller's state under D, at its default places.
    if (!config_path.empty()) {
      return Fail(Error::Invalid("--state-dir " + Quote(state_dir) +
                                 " differs from the state_dir " + Quote(cfg->state_dir) + " of " +
                                 Quote(config_path)));
    }
    auto derived = config::Parse("state_dir: " + state_dir + "\n", "--state-dir");
    if (!derived) return Fail(derived.error());
    cfg = std::move(derived);
  }
  // No controller ever ran here: nothing to recover.
  if (!store::pg::IsUrl(cfg->store) && ::access(cfg->store.c_str(), F_OK) != 0) return 0;
  auto c = daemon::Controller::Open(std::move(*cfg));
  if (!c) return Fail(c.error(), 1);
  auto n = (*c)->Recover();
  if (!n) return Fail(n.error(), 1);
  if (*n > 0) std::printf("recovered %zu run(s)\n", *n);
  return 0;
}

void AddGcOptions(CLI::App& app, std::string* config_path) {
  app.get_subcommand("sandbox")->get_subcommand("gc")->add_option(
      "--config", *config_path,
      "controller configuration (default /etc/kiln/kiln.yaml): its orphaned runs "
      "are reaped too");
}

void Register(CLI::App& app, int* exit_code) {
  auto serve_config = std::make_shared<std::string>();
  auto* serve =
      app.add_subcommand("serve", "Run the controller daemon: take queued runs and run them");
  auto serve_options = std::make_shared<daemon::ServeOptions>();
  serve->add_option("--config", *serve_config, "configuration file (default /etc/kiln/kiln.yaml)");
  serve->add_flag("--until-idle", serve_options->until_idle,
                  "stop once no run is queued or running and no forge event or result is pending");
  serve->callback([serve_config, serve_options, exit_code] {
    *exit_code = DoServe(*serve_config, *serve_options);
  });

  auto ro = std::make_shared<RequestOptions>();
  auto* run = app.add_subcommand(
      "run", "Run one role on a repository in the foreground, as the daemon would");
  AddRequestOptions(run, ro.get());
  run->callback([ro, exit_code] { *exit_code = DoRun(*ro); });

  auto* runs = app.add_subcommand("runs", "List, inspect, cancel, steer, submit and share runs");
  runs->require_subcommand(1);
  auto so = std::make_shared<RequestOptions>();
  auto* submit = runs->add_subcommand("submit", "Queue a run for `kiln serve`; prints its id");
  AddRequestOptions(submit, so.get());
  submit->callback([so, exit_code] { *exit_code = DoSubmit(*so); });

  auto o = std::make_shared<RunsOptions>();
  auto* list = runs->add_subcommand("list", "List runs, newest first");
  list->add_option("--status", o->status, "only runs in this status");
  list->add_option("--role", o->role, "only runs of this role");
  list->add_option("--repo", o->repo, "only runs of this repository");
  list->add_option("--limit", o->limit, "at most this many (default 50)");
  auto* show = runs->add_subcommand("show", "Show one run: status, result, diff, log");
  show->add_option("id", o->id, "run id")->required();
  show->add_flag("--patch", o->patch, "print the diff's patch too");
  auto* cancel = runs->add_subcommand("cancel", "Cancel a queued or running run");
  cancel->add_option("id", o->id, "run id")->required();
  auto* steer = runs->add_subcommand("steer", "Send a message to a running agent");
  steer->add_option("id", o->id, "run id")->required();
  steer->add_option("--message,-m", o->message, "the message")->required();
  steer->add_option("--from", o->from, "who sends it (default cli:<user>)");
  for (CLI::App* cmd : {list, show, cancel, steer}) {
    cmd->add_option("--config", o->config, "configuration file (default /etc/kiln/kiln.yaml)");
  }
  for (CLI::App* cmd : {list, show}) cmd->add_flag("--json", o->json, "JSON output");
  RegisterShares(*runs, exit_code);

  auto ro_replay = std::make_shared<ReplayOptions>();
  auto* rp = app.add_subcommand(
      "replay",
      "Run a recorded run again in a fresh sandbox, the model answered from its session log, and "
      "name the first divergence (exit 0 identical, 1 diverged, 2 refused, 125 failed)");
  rp->add_option("target", ro_replay->targets,
                 "run id, or a session log's path (several with --rerun)")
      ->required()
      ->expected(1, -1);
  rp->add_option("--config", ro_replay->config, "configuration file (default /etc/kiln/kiln.yaml)");
  rp->add_flag("--json", ro_replay->json, "print the report as JSON");
  rp->add_option("--report", ro_replay->report, "also write the JSON report to this file");
  rp->add_flag("--force", ro_replay->replay.force,
               "replay a log that does not verify; every line of the report says so");
  rp->add_option("--image", ro_replay->replay.image,
                 "run on this image digest instead of the recorded one (reported)");
  rp->add_flag("--rerun", ro_replay->replay.rerun,
               "run the recorded inputs again with the configured model instead of the recording, "
               "and compare outcomes (status, result, diff, turns, tokens, cost, time)");
  rp->add_option("--skill", ro_replay->skill,
                 "ROLE=PATH: with --rerun, this SKILL.md instead of the recorded skill");
  rp->add_option("--companion", ro_replay->companions,
                 "PATH=FILE: with --rerun, the role's core skill from the configuration with these "
                 "companion skills (repeatable) instead of the recorded ones");
  rp->add_option("--model", ro_replay->replay.model, "with --rerun, this model name");
  rp->callback([ro_replay, exit_code] { *exit_code = DoReplay(*ro_replay); });

  auto ao = std::make_shared<AuditOptions>();
  auto* au = app.add_subcommand(
      "audit",
      "Write one run as a self-contained report: verification, inputs, timeline, proxy requests, "
      "steering, diff, result, verify gate, end (exit 1 when its log does not verify)");
  au->add_option("target", ao->target, "run id, or a session log's path")->required();
  au->add_option("--config", ao->config, "configuration file (default /etc/kiln/kiln.yaml)");
  au->add_option("--format", ao->format, "html (default), md or json")
      ->check(CLI::IsMember({"html", "md", "json"}));
  au->add_option("-o,--output", ao->output, "write the report here (default: stdout)");
  au->callback([ao, exit_code] { *exit_code = DoAudit(*ao); });
  RegisterImage(app, exit_code);
  RegisterSchedules(app, exit_code);
  list->callback([o, exit_code] { *exit_code = DoList(*o); });
  show->callback([o, exit_code] { *exit_code = DoShow(*o); });
  cancel->callback([o, exit_code] { *exit_code = DoCancel(*o); });
  steer->callback([o, exit_code] { *exit_code = DoSteer(*o); });
}

}  // namespace kiln::controller::cli
