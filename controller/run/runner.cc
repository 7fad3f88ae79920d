#include "controller/run/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <mutex>

#include "base/clock.h"
#include "base/fd.h"
#include "controller/run/event_pump.h"
#include "controller/run/launch.h"
#include "controller/run/log_recovery.h"
#include "controller/run/provision.h"
#include "controller/sessionlog/verify.h"
#include "controller/sessionlog/writer.h"
#include "sandbox/cli.h"
#include "sandbox/procfs.h"
#include "sandbox/state.h"

namespace kiln::runner {
namespace {

// The outcome of an error that is the request's or its skill's fault (an
// unknown role, a revision that does not exist, an invalid companion skill, a
// spec the runtime refuses), not kiln's: never retried; `kiln run` exits 2.
constexpr const char* kBadInput = "bad_input";

// What a command run keeps of its output for the log and the report.
constexpr size_t kCommandOutputKeep = 64 << 10;

using nlohmann::json;

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// How an attempt ended, before it is written to the store.
struct Ending {
  store::Status status = store::Status::kFailed;
  bool infrastructure = false;  // retried under the retry policy
  std::string outcome;          // the runtime's, or timeout / cancelled / error
  std::string error;
};

// The sandbox's report, as `kiln sandbox run --report` wrote it.
struct SandboxReport {
  bool present = false;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string error;
  bool timed_out = false;
  bool oom_killed = false;
};

// j[key] when it is a string, else "" (a report or event may hold null).
std::string Text(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool Flag(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

SandboxReport ReadReport(const std::string& path) {
  SandboxReport r;
  auto text = ReadFile(path);
  if (!text) return r;
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return r;
  r.present = true;
  if (j.contains("exit_code") && j["exit_code"].is_number_integer()) r.exit_code = j["exit_code"];
  if (j.contains("signal") && j["signal"].is_number_integer()) r.signal = j["signal"];
  r.error = Text(j, "error");
  r.timed_out = Flag(j, "timed_out");
  r.oom_killed = Flag(j, "oom_killed");
  return r;
}

// Maps the sandbox's report and the runtime's `result` event to the run's end.
Ending Classify(const SandboxReport& rep, const json& result_event, bool cancelled, bool stopping) {
  Ending e;
  std::string outcome = Text(result_event, "outcome");
  std::string reason = Text(result_event, "reason");
  if (cancelled) return {store::Status::kCancelled, false, "cancelled", "cancelled by request"};
  if (stopping)
    return {store::Status::kError, true, "interrupted", "kiln serve stopped during the run"};
  if (!rep.present) {
    return {store::Status::kError, true, "error", "the sandbox ended without writing its report"};
  }
  if (!rep.error.empty() || (rep.exit_code && *rep.exit_code >= 125 && *rep.exit_code <= 127)) {
    return {store::Status::kError, true, "error",
            "the sandbox could not run the agent: " +
                (rep.error.empty() ? "exit status " + std::to_string(*rep.exit_code) : rep.error)};
  }
  if (rep.timed_out)
    return {store::Status::kFailed, false, "timeout", "the run hit its time limit"};
  if (rep.oom_killed) {
    return {store::Status::kFailed, false, outcome.empty() ? "failed" : outcome,
            "out of memory: the kernel killed a process of the run"};
  }
  if (rep.signal) {
    return {store::Status::kFailed, false, "failed",
            "the agent was killed by signal " + std::to_string(*rep.signal)};
  }
  int code = rep.exit_code.value_or(-1);
  switch (code) {
    case 0:
      if (outcome == "submitted") return {store::Status::kSucceeded, false, outcome, ""};
      return {store::Status::kFailed, false, "failed",
              "kiln-runtime exited 0 without a submitted result"};
    case 2:
      return {store::Status::kError, false, kBadInput,
              "kiln-runtime refused its spec or workspace"};
    case 3:
      return {store::Status::kBudgetExhausted, false, "budget_exhausted", reason};
    case 1:
    case 4:
    case 5:
      return {store::Status::kFailed, false, outcome.empty() ? "failed" : outcome, reason};
    default:
      return {store::Status::kFailed, false, "failed",
              "kiln-runtime exited with status " + std::to_string(code)};
  }
}

// A command run (a command skill: verify) ends by the command's exit status:
// 0 passes, anything else is the command's failure, not kiln's.
Ending ClassifyCommand(const SandboxReport& rep, bool cancelled, bool stopping) {
  if (cancelled || stopping || !rep.present || !rep.error.empty()) {
    return Classify(rep, json(), cancelled, stopping);
  }
  if (rep.timed_out)
    return {store::Status::kFailed, false, "timeout", "the run hit its time limit"};
  if (rep.signal) {
    return {store::Status::kFailed, false, "command_failed",
            "the command was killed by signal " + std::to_string(*rep.signal)};
  }
  int code = rep.exit_code.value_or(-1);
  if (code == 0) return {store::Status::kSucceeded, false, "passed", ""};
  return {store::Status::kFailed, false, "command_failed",
          "the command exited with status " + std::to_string(code)};
}

// One attempt of a run: owns every resource it creates and releases each on
// every path (the destructor is the last resort; Teardown() reports errors).
class Attempt {
 public:
  Attempt(const Services& s, store::Run run, const provision::Recorded* recorded)
      : s_(s), cfg_(*s.config), run_(std::move(run)), recorded_(recorded) {}
  ~Attempt() { (void)Teardown(); }

  store::Run Go(const std::atomic<bool>& stop, double claim_ms) {
    auto t0 = std::chrono::steady_clock::now();
    if (claim_ms > 0) phases_.Add("claim", claim_ms);
    Ending end;
    if (Status st = Prepare(); !st.ok()) {
      end = failure_;
    } else {
      provision_s_ = Since(t0);
      end = RunSandbox(stop);
      auto t1 = std::chrono::steady_clock::now();
      CollectResult(end);
      if (Status td = Teardown(&phases_); !td.ok()) {
        spdlog::error("run {}: teardown: {}", run_.id, td.error().message());
        if (end.error.empty()) end.error = "teardown: " + td.error().message();
      }
      finish_s_ = Since(t1);
      // Where the attempt's time went, for the log, the store and the
      // benchmark (docs/BENCHMARKS.md).
      result_["timings"] = Timings();
    }
    (void)Teardown();
    CloseLog(end);
    phases_.Lap("log_close");  // after run.end: in the metric only
    return Record(end, Since(t0));
  }

 private:
  // Everything before the sandbox starts. On failure failure_ says how the
  // attempt ends.
  Status Prepare() {
    auto fail = [&](const Error& e, bool infrastructure) -> kiln::Status {
      failure_ = {store::Status::kError, infrastructure, infrastructure ? "error" : kBadInput,
                  e.message()};
      return e;
    };
    auto p = recorded_ ? provision::PlanRecorded(s_, *recorded_) : provision::Plan(s_, run_);
    if (!p) return fail(p.error(), false);
    plan_ = std::move(*p);
    phases_.Lap("plan");
    if (Status st = provision::ResolveImage(cfg_, &plan_, s_.seals); !st.ok()) {
      // An image that is not here is the request's fault; one that changed
      // or cannot be read is the host's.
      return fail(st.error(), st.error().code() != Error::Code::kNotFound &&
                                  st.error().code() != Error::Code::kInvalidArgument);
    }
    phases_.Lap("image");
    auto repo = s_.cache->Resolve(run_.request.repo, run_.request.commit);
    if (!repo) {
      // A revision that does not exist is the request's fault; an
      // unreachable repository may come back.
      return fail(repo.error(), repo.error().code() != Error::Code::kNotFound);
    }
    repo_ = *repo;
    phases_.Lap("mirror_resolve");
    // A replay's spec holds the companions the original had.
    if (Status st = recorded_ ? Ok() : provision::AddCompanions(s_, run_, repo_, &plan_);
        !st.ok()) {
      return fail(st.error().Wrap("the repository's companion skills"), false);
    }
    phases_.Lap("companion_skills");
    store::Progress progress;
    progress.commit_sha = repo_.commit;
    progress.image_digest = plan_.image_digest;
    progress.sandbox_id = SandboxId(run_);
    progress.log_path = LogPath(cfg_, run_);
    (void)s_.store->SetProgress(run_.id, progress, run_.epoch);
    phases_.Lap("store_writes");
    if (Status st = OpenLog(); !st.ok()) return fail(st.error(), true);
    phases_.Lap("log_open");
    auto r = provision::Materialise(s_, run_, plan_, repo_, &res_, log_.get(), &phases_);
    if (!r) {
      AppendNote("provisioning_failed", r.error().message());
      return fail(r.error(), true);
    }
    return Ok();
  }

  kiln::Status OpenLog() {
    std::error_code ec;
    std::filesystem::create_directories(cfg_.log_dir, ec);
    if (ec) return Error::Sys("mkdir(" + Quote(cfg_.log_dir) + ")", ec.value());
    sessionlog::WriterOptions o;
    // A log that stops taking records wakes the run's thread, which stops
    // the sandbox at once: nothing may happen that the log does not hold.
    log_alarm_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!log_alarm_.valid()) return Error::Sys("eventfd", errno);
    o.on_failure = [fd = log_alarm_.get()](const std::string&) {
      uint64_t one = 1;
      (void)!::write(fd, &one, sizeof one);
    };
    std::string id = run_.attempt > 1 ? run_.id + "." + std::to_string(run_.attempt) : run_.id;
    KILN_ASSIGN_OR_RETURN(log_, sessionlog::Writer::Create(LogPath(cfg_, run_), id, s_.signer, o));
    for (const auto& [name, value] : plan_.secrets) KILN_TRY(log_->AddSecret(name, value));
    KILN_ASSIGN_OR_RETURN(auto a, log_->Append("run.start", plan_.RunStart(run_, repo_)));
    head_ = Hex(a.hash);
    return Ok();
  }

  void AppendNote(std::string_view event, const std::string& what) {
    if (log_) (void)pump::Note(*log_, event, what);
  }

  // A started sandbox: the child and the controller's ends of its pipes.
  struct Sandbox {
    launch::Child child;
    UniqueFd events;  // the runtime's events, read
    UniqueFd output;  // the sandbox's stdout and stderr, read
    UniqueFd steer;   // steering messages to the runtime, written
    std::string report;
  };

  // What happened while the sandbox ran.
  struct Watched {
    bool cancelled = false;   // by a user
    bool stopping = false;    // the controller is shutting down
    bool unrecorded = false;  // the log could not take what happened: killed at once
    bool lost = false;        // another host took the run over: killed at once
  };

  Result<Sandbox> StartSandbox() {
    KILN_ASSIGN_OR_RETURN(Pipe events, MakePipe());
    KILN_ASSIGN_OR_RETURN(Pipe output, MakePipe());
    KILN_ASSIGN_OR_RETURN(Pipe steer, MakePipe());
    sandbox::Spec spec =
        provision::SandboxSpec(s_, run_, plan_, res_, events.write.get(), steer.read.get());
    std::string report = RunDir(cfg_, run_) + "/report.json";
    std::vector<std::string> argv = sandbox::cli::RunArgs(spec, report);
    argv.insert(argv.begin(), cfg_.kiln_binary);
    // A runtime busy in a long tool call must not block this thread.
    ::fcntl(steer.write.get(), F_SETFL, O_NONBLOCK);
    // Steering sent before the sandbox starts waits in the pipe, so the
    // agent's first request carries it. A replay's recorded steering can go
    // from here on (where the original agent took it: maybe at once).
    SendSteering(steer.write.get());
    auto steer_hook = recorded_ ? recorded_->steer_ready : nullptr;
    if (steer_hook) {
      steer_hook(
          [this, fd = steer.write.get()](const std::string& from, const std::string& message) {
            Steer(fd, from, message);
          });
    }
    auto child =
        launch::Child::Start(argv, output.write.get(), {events.write.get(), steer.read.get()});
    if (!child) {
      if (steer_hook) steer_hook(nullptr);
      return child.error();
    }
    spdlog::info("run {}: sandbox {} started", run_.id, spec.id);
    // The sandbox's ends close here, with the pipes.
    return Sandbox{std::move(*child), std::move(events.read), std::move(output.read),
                   std::move(steer.write), report};
  }

  // Pumps the sandbox's events into the log until it has exited and its
  // pipes are closed; stops it on a cancel, a shutdown or a failing log.
  Watched Watch(Sandbox& sb, pump::Pump& pump, const std::atomic<bool>& stop) {
    Watched w;
    std::optional<std::chrono::steady_clock::time_point> kill_at;
    UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
    itimerspec its{};
    its.it_interval.tv_sec = static_cast<time_t>(cfg_.poll_interval_ms / 1000);
    its.it_interval.tv_nsec = static_cast<long>(cfg_.poll_interval_ms % 1000) * 1'000'000;
    its.it_value = its.it_interval;
    ::timerfd_settime(timer.get(), 0, &its, nullptr);
    bool exited = false;
    while (!exited || pump.open()) {
      pollfd fds[5] = {{pump.events_fd(), POLLIN, 0},
                       {pump.output_fd(), POLLIN, 0},
                       {exited ? -1 : sb.child.pidfd(), POLLIN, 0},
                       {timer.get(), POLLIN, 0},
                       {w.unrecorded ? -1 : log_alarm_.get(), POLLIN, 0}};
      int n = ::poll(fds, 5, exited ? 2000 : -1);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) break;  // exited, and the pipes stay open: a straggler holds them
      if (fds[0].revents) {
        pump.ReadEvents();
        if (s_.live) {
          s_.live->Set(run_.id, Usage{pump.turns(), pump.input_tokens(), pump.output_tokens(),
                                      pump.tool_calls()});
        }
      }
      if (fds[1].revents) pump.ReadOutput();
      if (fds[2].revents) exited = true;
      if (!w.unrecorded && (fds[4].revents || !pump.failure().empty())) {
        // The log can no longer hold what the agent does: stop it now, not
        // after the grace a cancel gets.
        w.unrecorded = true;
        spdlog::error("run {}: {}; stopping the sandbox", run_.id, Unrecorded(pump));
        (void)sb.child.Signal(SIGKILL);
        // Tunnels and responses in flight stop too: nothing more goes out.
        res_.endpoint.reset();
      }
      if (fds[3].revents) {
        uint64_t ticks;
        (void)!::read(timer.get(), &ticks, sizeof ticks);
        if (!exited) {
          Tick(sb, stop, w, kill_at);
          RecordLive(pump);
        }
      }
    }
    return w;
  }

  // The use so far into the store, for the hosts of a fleet that do not run
  // the attempt (the pipeline's leader's progress comments): when it has
  // changed, at most every kLiveEvery.
  void RecordLive(const pump::Pump& pump) {
    static constexpr auto kLiveEvery = std::chrono::seconds(2);
    const Usage now{pump.turns(), pump.input_tokens(), pump.output_tokens(), pump.tool_calls()};
    const auto at = std::chrono::steady_clock::now();
    if (now == stored_live_ || at - stored_live_at_ < kLiveEvery) return;
    store::Progress p;
    p.live = LiveJson(now, run_.attempt);
    if (s_.store->SetProgress(run_.id, p, run_.epoch).ok()) {
      stored_live_ = now;
      stored_live_at_ = at;
    }
  }

  // Every poll interval while the sandbox runs: the log's file, a cancel or
  // a shutdown (SIGTERM, then SIGKILL after the grace), steering messages.
  void Tick(Sandbox& sb, const std::atomic<bool>& stop, Watched& w,
            std::optional<std::chrono::steady_clock::time_point>& kill_at) {
    (void)log_->CheckFile();  // deleted or truncated while the agent is quiet
    auto cur = s_.store->Get(run_.id);
    if (!w.cancelled && cur && cur->cancel_requested) {
      w.cancelled = true;
      spdlog::info("run {}: cancel requested", run_.id);
    }
    // Our lease ran out and another host rescued the run: it is no longer
    // ours to run, and nothing more of it may go out.
    if (!w.lost && cur && run_.epoch != 0 && cur->epoch != run_.epoch) {
      w.lost = true;
      spdlog::error("run {}: taken over (epoch {}, ours {}); stopping the sandbox", run_.id,
                    cur->epoch, run_.epoch);
      (void)sb.child.Signal(SIGKILL);
      res_.endpoint.reset();
    }
    if (!w.stopping && stop.load()) w.stopping = true;
    if ((w.cancelled || w.stopping) && !kill_at) {
      (void)sb.child.Signal(SIGTERM);  // the supervisor passes it to the agent
      kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.sandbox.grace_ms);
    }
    if (kill_at && std::chrono::steady_clock::now() >= *kill_at) {
      (void)sb.child.Signal(SIGKILL);  // its init and the pid namespace follow
    }
    SendSteering(sb.steer.get());
  }

  Ending RunSandbox(const std::atomic<bool>& stop) {
    auto t_start = std::chrono::steady_clock::now();
    auto started = StartSandbox();
    if (!started) {
      if (s_.metrics) s_.metrics->SandboxFailure();
      AppendNote("sandbox_failed", started.error().message());
      return {store::Status::kError, true, "error", started.error().message()};
    }
    Sandbox& sb = *started;
    const bool command = !plan_.command.empty();
    auto steer_hook = recorded_ ? recorded_->steer_ready : nullptr;  // given in StartSandbox
    pump::Pump pump(*log_, sb.events.get(), sb.output.get(), command ? kCommandOutputKeep : 4096);
    Watched w = Watch(sb, pump, stop);
    if (s_.live) s_.live->Erase(run_.id);  // the result has the totals now
    if (steer_hook) steer_hook(nullptr);
    (void)sb.child.Wait();
    sandbox_s_ = Since(t_start);
    SandboxPhases(t_start, pump);
    tool_calls_ = pump.tool_calls();
    result_event_ = pump.result();
    output_tail_ = pump.output_tail();
    SandboxReport rep = ReadReport(sb.report);
    exit_code_ = rep.signal || !rep.error.empty() ? std::nullopt : rep.exit_code;
    if (!rep.present) {
      // The supervisor died without its report (SIGKILL after the grace):
      // reap what it left, as `kiln sandbox gc` would.
      (void)sandbox::state::Gc(cfg_.state_dir, "/sys/fs/cgroup", cfg_.sandbox.cgroup_parent);
    }
    Ending e = command ? ClassifyCommand(rep, w.cancelled, w.stopping)
                       : Classify(rep, result_event_, w.cancelled, w.stopping);
    if (w.unrecorded) {
      // Retried when the log failed (a full disk may clear); not when the
      // runtime sent what no log records.
      e = {store::Status::kError, !log_->failure().empty(), "error",
           Unrecorded(pump) + "; the sandbox was stopped at once"};
    }
    if (w.lost) {
      // Recorded in this host's log only: the store refuses the epoch.
      e = {store::Status::kError, false, "lost",
           "another host took the run over (this host's lease ran out); the sandbox was "
           "stopped at once"};
    }
    if (command) {
      (void)log_->Append("controller", {{"event", "command_output"},
                                        {"message", "the command's output (its end)"},
                                        {"command", plan_.command},
                                        {"exit_code", exit_code_ ? json(*exit_code_) : json()},
                                        {"output", output_tail_}});
    }
    if (e.infrastructure && s_.metrics) s_.metrics->SandboxFailure();
    if (e.infrastructure && !output_tail_.empty()) e.error += " (output: " + output_tail_ + ")";
    return e;
  }

  // The sandbox's time, from its launch (t_start) to its exit (now):
  //   sandbox_start  launch until the runtime is up: its first event, or
  //                  its first model request reaching the proxy's gateway,
  //                  whichever the controller saw first
  //   agent          the rest, to the runtime's last event
  //   sandbox_exit   the last event to the sandbox's exit
  // A command, or a runtime that sent nothing, is all sandbox_start. Also
  // notes first_model_request_us: launch until that request reached the
  // gateway (a milestone, not a phase).
  void SandboxPhases(Phases::Clock::time_point t_start, const pump::Pump& pump) {
    auto exit = Phases::Clock::now();
    int64_t request_ns = res_.first_model_request ? res_.first_model_request->load() : 0;
    std::optional<Phases::Clock::time_point> request;
    if (request_ns != 0) {
      request = Phases::Clock::time_point(std::chrono::nanoseconds(request_ns));
      first_model_request_us_ = Phases::Us(Phases::Ms(*request - t_start));
    }
    auto first = pump.first_event_at(), last = pump.last_event_at();
    if (!first || !last) {
      phases_.Lap("sandbox_start", exit);
      return;
    }
    phases_.Lap("sandbox_start", request ? std::min(*first, *request) : *first);
    phases_.Lap("agent", *last);
    phases_.Lap("sandbox_exit", exit);
  }

  // Why the run's record is incomplete: the log's failure, else the pump's.
  std::string Unrecorded(const pump::Pump& pump) const {
    std::string why = log_->failure();
    if (!why.empty()) return "the session log could not be written: " + why;
    return pump.failure();
  }

  void SendSteering(int fd) {
    auto steers = s_.store->TakeSteering(run_.id);
    if (!steers) return;
    for (const auto& m : *steers) Steer(fd, m.from, m.message);
  }

  // Passes one message to the agent and records it. From the run's thread,
  // or a replay's recorded model (another thread): one at a time.
  void Steer(int fd, const std::string& from, const std::string& message) {
    std::lock_guard<std::mutex> lock(steer_mu_);
    std::string text = json{{"from", from}, {"message", message}}.dump() + "\n";
    if (Status w = WriteAll(fd, text); !w.ok()) {
      AppendNote("steer_failed", "a message from " + from +
                                     " could not be passed to the agent: " + w.error().message());
      return;
    }
    (void)log_->Append("steer", {{"from", from}, {"message", message}});
  }

  // The diff of the workspace, read after the sandbox is gone, and the
  // `result` record combining it with the runtime's.
  void CollectResult(Ending& end) {
    json diff;
    if (!res_.workspace.merged.empty()) {
      git::DiffOptions o;
      o.max_file_bytes = cfg_.result.max_file_bytes;
      o.max_patch_bytes = cfg_.result.max_patch_bytes;
      o.upper = res_.workspace.upper;
      auto d = git::Collect(repo_.mirror_path, repo_.commit, res_.workspace.merged, o);
      phases_.Lap("result_collection");
      if (d) {
        diff = pump::DiffJson(*d);
        diff_ = std::move(*d);
      } else {
        AppendNote("diff_failed", d.error().message());
        if (end.status == store::Status::kSucceeded) {
          end = {store::Status::kError, true, "error",
                 "collecting the diff: " + d.error().message()};
        }
      }
    }
    json payload = result_event_.is_object() ? result_event_ : json::object();
    payload["outcome"] = end.outcome;
    if (!end.error.empty()) payload["reason"] = end.error;
    if (!payload.contains("summary")) payload["summary"] = end.error;
    if (!diff.is_null()) {
      payload["diff_sha256"] = diff["sha256"];
      payload["diff_bytes"] = diff["bytes"];
      payload["diff"] = diff;
    }
    pump::Sanitise(payload);
    if (log_) {
      auto a = log_->Append("result", payload);
      if (!a) spdlog::error("run {}: writing the result: {}", run_.id, a.error().message());
    }
    result_ = json::object();
    if (payload.contains("result")) result_["result"] = payload["result"];
    if (!diff.is_null()) result_["diff"] = diff;
    if (payload.contains("totals") && payload["totals"].is_object()) {
      result_["totals"] = payload["totals"];
      result_["totals"]["tool_calls"] = tool_calls_;  // counted by the controller, not the agent
    }
    if (!plan_.command.empty()) {
      std::string tail = output_tail_.size() > 4096
                             ? output_tail_.substr(output_tail_.size() - 4096)
                             : output_tail_;
      result_["command"] = {{"command", plan_.command},
                            {"exit_code", exit_code_ ? json(*exit_code_) : json()},
                            {"output_tail", tail}};
    }
    phases_.Lap("diff");
    if (Decide(end)) phases_.Lap("decide");
  }

  // The pipeline's hook, for runs it started: its decision is kept with the
  // result and applied to the forge after the run. Whether it ran.
  bool Decide(const Ending& end) {
    if (!s_.decide || run_.request.context.is_null() || !log_) return false;
    if (!log_->failure().empty()) return false;  // nothing is decided on an unrecorded run
    Finished f(run_);
    f.result_schema = plan_.skill.result_schema;
    f.succeeded = end.status == store::Status::kSucceeded;
    f.outcome = end.outcome;
    f.result = result_.value("result", json());
    f.diff = diff_ ? &*diff_ : nullptr;
    f.mirror = repo_.mirror_path;
    f.commit = repo_.commit;
    f.workspace = res_.workspace.merged;
    f.exit_code = exit_code_;
    f.output_tail = output_tail_;
    try {
      result_["actions"] = s_.decide(f, *log_);
    } catch (const std::exception& e) {
      // The hook reads data that came out of the sandbox: a surprise there
      // refuses the result; it never takes the controller down.
      AppendNote("decision_failed", e.what());
      result_["actions"] = {
          {"refused", {std::string("the controller could not decide: ") + e.what()}}};
    }
    return true;
  }

  kiln::Status Teardown(Phases* phases = nullptr) {
    return provision::Release(cfg_, run_, &res_, phases);
  }

  // The attempt's time: the three spans of old in milliseconds, and the
  // phases in microseconds (the log's fsyncs overlap the others: "of
  // which").
  json Timings() const {
    auto ms = [](double s) { return static_cast<uint64_t>(s * 1000 + 0.5); };
    return {{"provision_ms", ms(provision_s_)},
            {"sandbox_ms", ms(sandbox_s_)},
            {"result_and_teardown_ms", ms(finish_s_)},
            {"phases_us", phases_.ToJson()},
            {"own_us", Phases::Us(phases_.own_ms())},
            {"first_model_request_us",
             first_model_request_us_ ? json(*first_model_request_us_) : json()},
            {"log_fsync_us", Phases::Us(log_ ? log_->sync_ms() : 0)}};
  }

  // Ends the log with the signed run.end. A log that stopped taking records
  // is continued by a recovery record and closed now if its disk allows, or
  // by RecoverLogs() later; the attempt is an error either way, never a
  // success without its run.end.
  void CloseLog(Ending& end) {
    if (!log_) return;
    json totals = result_.value("totals", json::object());
    totals["tool_calls"] = tool_calls_;
    totals["proxy_requests"] = res_.proxy_requests ? res_.proxy_requests->load() : 0;
    json p = {{"status", end.status == store::Status::kFailed && end.outcome == "timeout"
                             ? std::string("timeout")
                             : std::string(store::ToString(end.status))},
              {"totals", totals}};
    if (!end.error.empty()) p["error"] = end.error;
    if (result_.contains("timings")) p["timings"] = result_["timings"];
    auto a = log_->Close(p);
    if (a) {
      head_ = Hex(a->hash);
      log_.reset();
      return;
    }
    std::string why = log_->failure().empty() ? a.error().message() : log_->failure();
    std::string path = log_->path();
    log_.reset();  // lets the recovery take the log's lock
    if (end.status != store::Status::kError) {
      end = {store::Status::kError, true, "error", "the session log could not be written: " + why};
    }
    p["status"] = "error";
    p["error"] = end.error;
    auto head = log_recovery::CloseStoppedLog(path, s_.signer,
                                              "the controller could not write it: " + why, p);
    head_ = head ? *head : "";
    if (!head) {
      spdlog::error("run {}: the log {} stays open until it can be recovered: {}", run_.id, path,
                    head.error().message());
    }
  }

  store::Run Record(const Ending& end, double seconds) {
    int64_t now = NowMs();
    if (end.infrastructure && end.status == store::Status::kError) {
      store::Progress progress;
      progress.log_head = head_;
      (void)s_.store->SetProgress(run_.id, progress, run_.epoch);
      auto again =
          s_.store->FailInfrastructure(run_.id, end.error, RetryPolicyOf(cfg_), now, run_.epoch);
      if (again && *again) spdlog::warn("run {}: {}; queued again", run_.id, end.error);
    } else {
      store::Finish f{end.status, end.outcome, result_.empty() ? json() : result_, end.error,
                      head_};
      // With the claim's epoch: a run taken over by another host meanwhile
      // refuses, and its record stays the new owner's.
      if (auto st = s_.store->Complete(run_.id, f, now, run_.epoch); !st.ok()) {
        spdlog::error("run {}: recording the end: {}", run_.id, st.error().message());
      }
    }
    phases_.Lap("store_end");  // after run.end: in the metric only
    if (s_.metrics) {
      s_.metrics->RunFinished(end.status, seconds);
      s_.metrics->Overhead(provision_s_ + finish_s_);
      for (const auto& [name, ms] : phases_.list()) s_.metrics->Phase(name, ms / 1000);
    }
    spdlog::info("run {}: {} ({}){}", run_.id, store::ToString(end.status), end.outcome,
                 end.error.empty() ? "" : ": " + end.error);
    auto final_run = s_.store->Get(run_.id);
    return final_run ? *final_run : run_;
  }

  const Services& s_;
  const config::Config& cfg_;
  store::Run run_;
  const provision::Recorded* recorded_;  // a replay's recording; null for a new run
  provision::RunPlan plan_;
  provision::Resources res_;
  git::Resolved repo_;
  // Readable once the log has failed. Declared before log_, so that it
  // outlives the writer whose on_failure writes to it.
  UniqueFd log_alarm_;
  std::unique_ptr<sessionlog::Writer> log_;
  std::string head_;
  Ending failure_;
  json result_event_;
  json result_ = json::object();
  std::string output_tail_;
  std::optional<int> exit_code_;   // the sandbox's exit status (a command's)
  std::optional<git::Diff> diff_;  // the workspace's changes, once collected
  uint64_t tool_calls_ = 0;
  Usage stored_live_;  // RecordLive
  std::chrono::steady_clock::time_point stored_live_at_;
  Phases phases_;
  std::optional<int64_t> first_model_request_us_;  // see SandboxPhases
  std::mutex steer_mu_;                            // Steer()
  double provision_s_ = 0;                         // Prepare(): plan, repository, log, resources
  double sandbox_s_ = 0;                           // launch to the sandbox's end
  double finish_s_ = 0;                            // result collection and teardown
};

}  // namespace

store::RetryPolicy RetryPolicyOf(const config::Config& config) {
  return {static_cast<int64_t>(config.retry.initial_backoff_ms),
          static_cast<int64_t>(config.retry.max_backoff_ms), 2};
}

namespace {

std::string HostName(const std::string& host_name) {
  if (!host_name.empty()) return host_name;
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

std::string OwnerId(const std::string& host_name) {
  return HostName(host_name) + "/" + std::to_string(::getpid()) + ":" +
         std::to_string(sandbox::state::ProcessStartTime(::getpid()));
}

bool OwnerHere(const std::string& owner, const std::string& host_name) {
  const std::string host = store::OwnerHost(owner);
  return host.empty() || host == HostName(host_name);
}

bool OwnerAlive(const std::string& owner) {
  const size_t slash = owner.find('/');
  const std::string local = slash == std::string::npos ? owner : owner.substr(slash + 1);
  size_t colon = local.find(':');
  if (colon == std::string::npos) return false;
  pid_t pid = static_cast<pid_t>(std::strtol(local.c_str(), nullptr, 10));
  uint64_t start = std::strtoull(local.c_str() + colon + 1, nullptr, 10);
  return pid > 0 && start != 0 && sandbox::state::ProcessStartTime(pid) == start;
}

Status CheckRequest(const Services& services, const store::RunRequest& request) {
  store::Run run;
  run.request = request;
  auto plan = provision::Plan(services, run);
  if (!plan) return plan.error();
  return Ok();
}

store::Run Execute(const Services& services, store::Run run, const std::atomic<bool>& stop,
                   double claim_ms, const provision::Recorded* recorded) {
  Attempt attempt(services, std::move(run), recorded);
  return attempt.Go(stop, claim_ms);
}

Result<std::string> Reap(const Services& services, const store::Run& run) {
  const config::Config& cfg = *services.config;
  provision::Resources res;
  res.run_dir = RunDir(cfg, run);
  KILN_TRY(provision::Release(cfg, run, &res));
  std::string path = LogPath(cfg, run);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::string();
  auto head = log_recovery::CloseStoppedLog(
      path, services.signer, "the writer stopped without writing run.end",
      {{"status", "crashed"},
       {"error",
        "the controller running this run (" + run.owner + ") died; reaped by " + services.owner}});
  return head;
}

}  // namespace kiln::runner
