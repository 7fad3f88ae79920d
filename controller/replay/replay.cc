#include "controller/replay/replay.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "base/clock.h"
#include "base/digest.h"
#include "controller/config/skill.h"
#include "controller/fleet/logs.h"
#include "controller/forge/api.h"
#include "controller/images/store.h"
#include "controller/pipeline/roles.h"
#include "controller/run/provision.h"
#include "controller/run/runner.h"
#include "controller/sessionlog/entries.h"
#include "controller/sessionlog/verify.h"
#include "runtime/spec.h"
#include "runtime/tools/json_schema.h"

namespace kiln::replay {
namespace {

using nlohmann::json;
using sessionlog::Entries;
using sessionlog::Entry;

// j's member at the JSON Pointer ("/repository/url"), when it is a string;
// "" otherwise.
std::string Str(const json& j, const char* pointer) {
  const json::json_pointer at(pointer);
  return j.contains(at) && j.at(at).is_string() ? j.at(at).get<std::string>() : "";
}

// One model call as recorded: the response the runtime got.
struct Exchange {
  int status = 0;
  std::string body;
  bool stream = false;
  std::string request_id;
  std::string error;  // when no response came (status 0)
};

// A steering message and the response it is sent with, or that it goes
// before the first request (the original's first request held it).
struct Steering {
  size_t with_response = 0;
  bool before_first = false;
  std::string from, message;
};

// The model calls of a log, in order: each model.request with the
// model.response of the same turn and attempt that follows it. And where the
// original agent took each steering message: the first request whose body
// holds it. The replay sends it just before the response to the request
// before that one, so that the replayed agent finds it at the same point (it
// takes steering before each request); one the first request held, before
// the sandbox starts. A message no later request holds (the run ended
// first) goes with the last response.
std::vector<Exchange> Exchanges(const Entries& log, std::vector<Steering>* steering) {
  std::vector<Exchange> out;
  std::vector<Steering> waiting;
  const Entry* pending = nullptr;
  for (const Entry& e : log.records) {
    if (!e.payload.is_object()) continue;
    if (e.type == "steer") {
      waiting.push_back({0, false, Str(e.payload, "/from"), Str(e.payload, "/message")});
    } else if (e.type == "model.request") {
      const std::string body = Str(e.payload, "/body");
      for (auto it = waiting.begin(); it != waiting.end();) {
        std::string quoted = json(it->message).dump();  // as the body holds it
        if (body.find(quoted.substr(1, quoted.size() - 2)) == std::string::npos) {
          ++it;
          continue;
        }
        it->with_response = out.empty() ? 0 : out.size() - 1;
        it->before_first = out.empty();
        steering->push_back(std::move(*it));
        it = waiting.erase(it);
      }
      pending = &e;
    } else if (e.type == "model.response" && pending &&
               e.payload.value("turn", json()) == pending->payload.value("turn", json()) &&
               e.payload.value("attempt", json()) == pending->payload.value("attempt", json())) {
      Exchange x;
      x.status = e.payload.value("status", 0);
      x.body = e.payload.value("body", "");
      x.request_id = e.payload.value("request_id", "");
      x.error = e.payload.value("error", "");
      // A streamed response is recorded as the SSE text it was.
      x.stream =
          x.body.starts_with("event:") || x.body.starts_with("data:") || x.body.starts_with(":");
      out.push_back(std::move(x));
      pending = nullptr;
    }
  }
  for (Steering& w : waiting) {
    w.with_response = out.empty() ? 0 : out.size() - 1;
    steering->push_back(std::move(w));
  }
  return out;
}

// The model, played from the recording: request i gets recorded response i.
// What the runtime sends is compared afterwards, from the replay's log.
class RecordedModel {
 public:
  RecordedModel(std::vector<Exchange> exchanges, std::vector<Steering> steering)
      : exchanges_(std::move(exchanges)), steering_(std::move(steering)) {}

  // How steering reaches the agent (the runner's, just before the sandbox
  // starts; null once the run ends). What the original's first request held
  // goes at once.
  void SetSteer(provision::Recorded::SteerFn steer) {
    std::lock_guard<std::mutex> lock(mu_);
    steer_ = std::move(steer);
    for (const Steering& s : steering_) {
      if (s.before_first && steer_) steer_(s.from, s.message);
    }
  }

  forge::ApiResponse Answer(const forge::ApiRequest&) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Steering& s : steering_) {
      if (!s.before_first && s.with_response == next_ && steer_) steer_(s.from, s.message);
    }
    forge::ApiResponse r;
    if (next_ >= exchanges_.size()) {
      r.status = 400;
      r.body = json{{"type", "error"},
                    {"error",
                     {{"type", "invalid_request_error"},
                      {"message", "kiln replay: the recorded run made only " +
                                      std::to_string(exchanges_.size()) + " model requests"}}}}
                   .dump();
      return r;
    }
    const Exchange& x = exchanges_[next_++];
    if (x.status == 0) {
      // No response reached the original: the closest is a failed gateway.
      r.status = 502;
      r.body =
          json{{"error", {{"message", "kiln replay: the original got no response: " + x.error}}}}
              .dump();
      return r;
    }
    r.status = x.status;
    r.body = x.body;
    if (x.stream && x.status < 300) r.content_type = "text/event-stream";
    if (!x.request_id.empty()) {
      r.headers = {{"request-id", x.request_id}, {"x-request-id", x.request_id}};
    }
    return r;
  }

  uint64_t served() const {
    std::lock_guard<std::mutex> lock(mu_);
    return next_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Exchange> exchanges_;
  std::vector<Steering> steering_;
  provision::Recorded::SteerFn steer_;
  size_t next_ = 0;
};

// A request body may be large: the whole conversation.
constexpr uint64_t kModelBodyLimit = 256 << 20;

class Replayer {
 public:
  Replayer(const runner::Services& s, const Options& o, Report* rep)
      : s_(s), undecided_(s), cfg_(*s.config), o_(o), rep_(*rep) {
    undecided_.decide = nullptr;
  }

  void Go(const std::atomic<bool>& stop) {
    rep_.mode = o_.rerun ? "rerun" : "replay";
    if (!Original()) return;
    if (!Inputs()) return;
    if (!Run(stop)) return;
    if (o_.rerun) {
      rep_.original.outcomes = Outcomes(original_);
      rep_.replay.outcomes = Outcomes(replay_);
      if (decided_ && Str(start_->payload, "/role") == "implement") {
        if (o_.verify_original) VerifyGate(original_, &rep_.original.outcomes, stop);
        VerifyGate(replay_, &rep_.replay.outcomes, stop);
      }
      rep_.verdict = "rerun";
      rep_.exit_code = kIdentical;
      return;
    }
    Judge();
  }

 private:
  void Refuse(int code, const std::string& why) {
    rep_.exit_code = code;
    rep_.verdict = code == kInfrastructure ? "error" : "refused";
    rep_.error = why;
  }

  // The original's log: found, verified, read, and a run that ended.
  bool Original() {
    auto found = runner::FindLog(*s_.store, o_.target, s_.log_of);
    if (!found) {
      Refuse(kBadInput, found.error().message());
      return false;
    }
    const std::string& path = *found;
    rep_.original.log = path;
    auto keys = sessionlog::TrustedKeys(cfg_.key_dir);
    if (!keys) {
      Refuse(kInfrastructure, keys.error().message());
      return false;
    }
    sessionlog::VerifyOptions vo;
    vo.trusted_keys = *keys;
    // On a fleet, the run may have been another host's, its log signed with
    // that host's key, which the store holds.
    if (auto run = s_.store->Get(o_.target); run) {
      for (auto& key : fleet::KeysOfRunHost(*s_.store, *run, s_.owner)) {
        vo.trusted_keys.push_back(std::move(key));
      }
    }
    auto verdict = sessionlog::Verify(path, vo);
    if (!verdict) {
      Refuse(kBadInput, verdict.error().message());
      return false;
    }
    rep_.original.head = Hex(verdict->head);
    if (!verdict->ok()) {
      for (const auto& f : verdict->findings) rep_.findings.push_back(sessionlog::FormatFinding(f));
      std::string first = rep_.findings.empty() ? "" : rep_.findings.front();
      if (!o_.force) {
        Refuse(kBadInput, "the session log " + path + " does not verify (" +
                              std::to_string(verdict->findings_total) +
                              " finding(s); first: " + first + "); --force replays it anyway");
        return false;
      }
      rep_.forced = true;
    }
    // What a forced replay reads, nobody vouches for: what cannot be read
    // (a blob, a request's delta) is left out, not refused.
    auto entries = sessionlog::ReadEntries(path, "", /*lenient=*/rep_.forced);
    if (!entries) {
      Refuse(kBadInput, "reading " + path + ": " + entries.error().message());
      return false;
    }
    original_ = std::move(*entries);
    for (const Entry& e : original_.records) {
      if (e.type == "run.start" && !start_) start_ = &e;
      if (e.type == "controller" && Str(e.payload, "/event") == "decision") decided_ = true;
      if (e.type == "recovery") {
        Refuse(kBadInput, "run " + Str(start_ ? start_->payload : json(), "/run_id") +
                              " did not end by itself: its log was closed by a recovery record "
                              "(seq " +
                              std::to_string(e.seq) + ": " + Str(e.payload, "/reason") +
                              "); only a run that ended can be replayed");
        return false;
      }
    }
    if (!start_ || !start_->payload.is_object()) {
      Refuse(kBadInput, "the session log " + path + " has no run.start record");
      return false;
    }
    rep_.original.run_id = Str(start_->payload, "/run_id");
    // The pipeline's runs (the improver's decision is its own).
    const std::string role = Str(start_->payload, "/role");
    decided_ = decided_ && (role == "triage" || role == "spec" || role == "implement" ||
                            role == "review" || role == "verify");
    for (const Entry& e : original_.records) {
      if (e.type == "run.end") {
        rep_.original.status = Str(e.payload, "/status");
      } else if (e.type == "result") {
        rep_.original.outcome = Str(e.payload, "/outcome");
      }
    }
    return true;
  }

  // What the run needs from this host: its image, its commit, its secrets.
  bool Inputs() {
    const json& start = start_->payload;
    rep_.image_recorded = Str(start, "/image/digest");
    auto host = provision::HostImageDigest(cfg_.state_dir);
    if (!host) {
      Refuse(kInfrastructure, host.error().message());
      return false;
    }
    // The host image, or one of the image store.
    auto here = [&](const std::string& digest) {
      if (digest == *host) return true;
      auto store = images::Store::Open(cfg_.state_dir);
      return store.ok() && store->Lookup(digest).ok();
    };
    if (!o_.image.empty() && !here(o_.image)) {
      Refuse(kBadInput, "image " + o_.image + " is not on this host (its host image is " + *host +
                            ", and its image store has no such image)");
      return false;
    }
    if (o_.image.empty() && !here(rep_.image_recorded)) {
      Refuse(kBadInput, "the recorded image " + rep_.image_recorded +
                            " is not on this host: its host image is " + *host +
                            " now (its packages or /etc changed since the run), and its image "
                            "store has no such image; --image " +
                            *host + " replays on the host image, and the report says so");
      return false;
    }
    rep_.image_used = o_.image.empty() ? rep_.image_recorded : o_.image;
    url_ = Str(start, "/repository/url");
    commit_ = Str(start, "/repository/commit");
    auto repo = s_.cache->Resolve(url_, commit_);
    if (!repo) {
      Refuse(repo.error().code() == Error::Code::kNotFound ? kBadInput : kInfrastructure,
             "the recorded commit " + commit_ + " of " + url_ + ": " + repo.error().message());
      return false;
    }
    recorded_.start = start;
    recorded_.image_digest = rep_.image_used;
    recorded_.replay_of = {{"run_id", rep_.original.run_id},
                           {"log", rep_.original.log},
                           {"head", rep_.original.head},
                           {"mode", rep_.mode}};
    if (o_.rerun) {
      recorded_.live = true;
      recorded_.model = o_.model;
      if (!o_.model.empty()) recorded_.replay_of["model"] = o_.model;
      if (!o_.skill_file.empty() && !Skill()) return false;
      if (o_.companions && !Companions()) return false;
    }
    if (auto plan = provision::PlanRecorded(s_, recorded_); !plan) {
      Refuse(kBadInput, plan.error().message());
      return false;
    }
    return true;
  }

  // --skill ROLE=PATH: the role must be the recorded run's.
  bool Skill() {
    std::string role = Str(start_->payload, "/role");
    if (o_.skill_role != role) {
      Refuse(kBadInput, "--skill " + o_.skill_role + "=" + o_.skill_file + ": the recorded run " +
                            rep_.original.run_id + " is of role " + Quote(role));
      return false;
    }
    auto text = ReadFile(o_.skill_file);
    auto parsed = text ? skill::Parse(*text, o_.skill_file) : Result<skill::Skill>(text.error());
    if (!parsed) {
      Refuse(kBadInput, "--skill: " + parsed.error().message());
      return false;
    }
    if (parsed->role.empty()) parsed->role = role;
    recorded_.skill = std::move(*parsed);
    recorded_.replay_of["skill"] = {{"path", o_.skill_file}, {"sha256", recorded_.skill->sha256}};
    return true;
  }

  // Other companions for the re-run, on the role's core skill as this host
  // has it (unless --skill gave one).
  bool Companions() {
    std::string role = Str(start_->payload, "/role");
    if (!recorded_.skill) {
      auto core = skill::Load(s_.config->skills_dir, role);
      if (!core) {
        Refuse(kBadInput, "the re-run's skill: " + core.error().message());
        return false;
      }
      recorded_.skill = std::move(*core);
    }
    recorded_.companions = o_.companions;
    json paths = json::array();
    for (const auto& [path, text] : *o_.companions) {
      paths.push_back({{"path", path}, {"sha256", Sha256Hex(text)}});
    }
    recorded_.replay_of["companions"] = std::move(paths);
    return true;
  }

  // What a run came to, for a re-run's table: from its log alone.
  static json Outcomes(const Entries& log) {
    json o = {{"status", nullptr}, {"outcome", nullptr}, {"result_schema", "no result"},
              {"gate", "none"},    {"diff_files", 0},    {"diff_bytes", 0},
              {"turns", nullptr},  {"tokens", nullptr},  {"cost_microusd", nullptr},
              {"wall_ms", nullptr}};
    json schema;
    bool command = false;  // a command run: its exit status is the gate
    for (const Entry& e : log.records) {
      const json& p = e.payload;
      if (e.type == "run.start") {
        auto rs = spec::ParseText(Str(p, "/runtime_spec/text"), "spec");
        if (rs) schema = rs->result_schema;
      } else if (e.type == "result" && p.is_object()) {
        o["outcome"] = p.value("outcome", json());
        o["result"] = p.value("result", json());
        if (p.contains("result") && !p["result"].is_null() && schema.is_object()) {
          auto errors = json_schema::Validate(schema, p["result"]);
          o["result_schema"] = errors.empty() ? "valid" : "invalid: " + errors.front();
        }
        const json diff = p.value("diff", json::object());
        if (diff.is_object()) {
          o["diff_files"] = diff.value("files", json::array()).size();
          o["diff_bytes"] = diff.value("bytes", json(0));
        }
        const json totals = p.value("totals", json::object());
        if (totals.is_object()) {
          o["turns"] = totals.value("turns", json());
          if (totals.contains("input_tokens")) {
            o["tokens"] = totals.value("input_tokens", uint64_t{0}) +
                          totals.value("output_tokens", uint64_t{0}) +
                          totals.value("cache_read_tokens", uint64_t{0}) +
                          totals.value("cache_write_tokens", uint64_t{0});
          }
          o["cost_microusd"] = totals.value("cost_microusd", json());
          o["wall_ms"] = totals.value("wall_ms", json());
        }
      } else if (e.type == "controller" && p.is_object()) {
        std::string event = p.value("event", "");
        if (event == "command_output") {
          o["gate"] = "exit " + p.value("exit_code", json()).dump();
          command = true;
        }
        // A command's exit status is its gate; a decision that writes
        // nothing (a run that failed) is none.
        const auto actions = p.find("actions");
        if (event == "decision" && !command && actions != p.end() && actions->is_object()) {
          json refused = actions->value("refused", json::array());
          if (!refused.empty()) {
            o["gate"] = "refused " + std::to_string(refused.size()) + " part(s)";
          } else if (!actions->empty()) {
            o["gate"] = "accepted";
          }
        }
      } else if (e.type == "run.end" && p.is_object()) {
        o["status"] = p.value("status", json());
      }
    }
    return o;
  }

  // The pipeline's verify gate for an implement run's commit (the one its
  // logged decision pushes): the repository's test command, read where the
  // run started (an implement run may not change .kiln), in a verify run on
  // that commit, here and now, as the pipeline verifies the pull request.
  // The gate becomes the command's "exit N"; a decision that pushed nothing
  // keeps its own gate ("refused N part(s)").
  void VerifyGate(const Entries& log, json* outcomes, const std::atomic<bool>& stop) {
    std::string sha;
    for (const Entry& e : log.records) {
      if (e.type == "controller" && Str(e.payload, "/event") == "decision") {
        sha = Str(e.payload, "/actions/push/commit");
      }
    }
    if (sha.empty()) return;
    json& o = *outcomes;
    o["commit"] = sha;
    if (stop) {
      o["gate"] = "not verified: kiln is stopping";
      return;
    }
    auto repo = s_.cache->Resolve(url_, sha);
    if (!repo) {
      o["gate"] = "not verified: commit " + sha + ": " + repo.error().message();
      return;
    }
    auto command = pipeline::roles::TestCommand(repo->mirror_path, commit_);
    if (command && command->empty()) {
      auto sk = skill::Load(cfg_.skills_dir, "verify");
      command = sk ? Result<std::string>(sk->command) : Result<std::string>(sk.error());
    }
    if (!command || command->empty()) {
      o["gate"] = "not verified: " + (command ? std::string("the repository names no test command")
                                              : command.error().message());
      return;
    }
    store::RunRequest req;
    req.role = "verify";
    req.repo = url_;
    req.commit = sha;
    req.task = "The verify gate of " + rep_.mode + " " + rep_.original.run_id + " at " + sha;
    req.requested_by = rep_.mode + ":" + rep_.original.run_id;
    req.max_attempts = 1;
    req.context = {{"command", *command}, {"head_sha", sha}};
    auto started = s_.store->StartNew(req, s_.owner, NowMs());
    if (!started) {
      o["gate"] = "not verified: " + started.error().message();
      return;
    }
    store::Run done = runner::Execute(undecided_, *started, stop, 0, nullptr);
    o["verify_run"] = done.id;
    json code = done.result.is_object()
                    ? done.result.value("command", json::object()).value("exit_code", json())
                    : json();
    o["gate"] = code.is_number_integer()
                    ? "exit " + code.dump()
                    : "not verified: the verify run " + done.id + " ended " +
                          std::string(store::ToString(done.status)) + " (" +
                          (done.error.empty() ? done.outcome : done.error) + ")";
  }

  // The run itself: the model answered from the recording, or (re-run) the
  // configuration's gateway.
  bool Run(const std::atomic<bool>& stop) {
    std::shared_ptr<RecordedModel> model;
    std::unique_ptr<forge::ApiServer> server;
    if (!o_.rerun) {
      std::vector<Steering> steering;
      std::vector<Exchange> exchanges = Exchanges(original_, &steering);
      model = std::make_shared<RecordedModel>(std::move(exchanges), std::move(steering));
      recorded_.steer_ready = [model](provision::Recorded::SteerFn steer) {
        model->SetSteer(std::move(steer));
      };
      auto started = forge::ApiServer::Start(
          "127.0.0.1:0", [model](const forge::ApiRequest& r) { return model->Answer(r); },
          kModelBodyLimit);
      if (!started) {
        Refuse(kInfrastructure, "starting the recorded model: " + started.error().message());
        return false;
      }
      server = std::move(*started);
      recorded_.model_upstream = "http://127.0.0.1:" + std::to_string(server->port());
    }
    const json& start = start_->payload;
    store::RunRequest req;
    req.role = Str(start, "/role");
    req.repo = url_;
    req.commit = commit_;
    req.task = Str(start, "/task");
    req.requested_by = rep_.mode + ":" + rep_.original.run_id;
    req.max_attempts = 1;
    // A re-run of a run the pipeline decided is decided by the pipeline's
    // rules, as the original was (its result checked, its diff committed as
    // refs/kiln/runs/<id>), for the gate to compare; nothing is applied.
    runner::Services services = undecided_;
    if (o_.rerun && decided_) {
      req.context = start.value("context", json());
      services.decide = pipeline::roles::DecideAndRecord;
    }
    // Running from the start: a daemon on the same store never claims it.
    auto started = s_.store->StartNew(req, s_.owner, NowMs());
    if (!started) {
      Refuse(kInfrastructure, started.error().message());
      return false;
    }
    spdlog::info("replay of {}: run {}", rep_.original.run_id, started->id);
    store::Run done = runner::Execute(services, *started, stop, 0, &recorded_);
    server.reset();
    if (model) rep_.model_requests = model->served();
    rep_.replay = {done.id,       done.log_path,
                   done.log_head, std::string(store::ToString(done.status)),
                   done.outcome,  json()};
    if (done.status == store::Status::kError || done.status == store::Status::kQueued) {
      bool bad = done.outcome == "bad_input";
      Refuse(bad ? kBadInput : kInfrastructure,
             "the replay's run " + done.id + " could not run: " + done.error);
      return false;
    }
    auto entries = sessionlog::ReadEntries(done.log_path);
    if (!entries) {
      Refuse(kInfrastructure, "reading the replay's log: " + entries.error().message());
      return false;
    }
    replay_ = std::move(*entries);
    return true;
  }

  void Judge() {
    std::vector<Rule> rules = BuiltinRules();
    for (const auto& r : cfg_.replay.normalise) {
      rules.push_back({"config " + r.where, r.pattern, r.replace, "config " + r.where});
    }
    rules.push_back(LiteralRule("run-id", rep_.original.run_id, "<run-id>"));
    rules.push_back(LiteralRule("run-id", rep_.replay.run_id, "<run-id>"));
    auto n = Normaliser::Make(rules);
    if (!n) {
      Refuse(kBadInput, n.error().message());
      return;
    }
    rep_.rules = n->rules();
    rep_.comparison = Compare(original_, replay_, *n);
    bool same = rep_.comparison.divergences.empty();
    rep_.verdict = same ? "identical" : "diverged";
    rep_.exit_code = same ? kIdentical : kDiverged;
  }

  const runner::Services& s_;
  // s_ without its decide hook: a replay writes nothing to a forge, and no
  // one else's hook sees its runs.
  runner::Services undecided_;
  const config::Config& cfg_;
  const Options& o_;
  Report& rep_;
  Entries original_, replay_;
  const Entry* start_ = nullptr;
  bool decided_ = false;  // the original's log holds the pipeline's decision
  std::string url_, commit_;
  provision::Recorded recorded_;
};

}  // namespace

std::vector<Report> ReplayAll(const runner::Services& services, const std::vector<Options>& options,
                              const std::atomic<bool>& stop) {
  std::vector<Report> reports(options.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < options.size();) {
      reports[i] = Replay(services, options[i], stop);
    }
  };
  size_t n =
      std::min<size_t>(options.size(), std::max(1, services.config->concurrency.host_max_runs));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  return reports;
}

Report Replay(const runner::Services& services, const Options& options,
              const std::atomic<bool>& stop) {
  Report rep;
  try {
    Replayer(services, options, &rep).Go(stop);
  } catch (const std::exception& e) {
    // A forced replay reads records nobody vouches for.
    rep.exit_code = kBadInput;
    rep.verdict = "refused";
    rep.error = std::string("the recording cannot be read: ") + e.what();
  }
  return rep;
}

}  // namespace kiln::replay
