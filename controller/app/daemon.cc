#include "controller/app/daemon.h"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <list>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "base/clock.h"
#include "base/fd.h"
#include "controller/app/metrics.h"
#include "controller/config/skill.h"
#include "controller/fleet/logs.h"
#include "controller/forge/api.h"
#include "controller/forge/inbox.h"
#include "controller/forge/local.h"
#include "controller/github/auth.h"
#include "controller/github/github.h"
#include "controller/github/rest.h"
#include "controller/github/webhook.h"
#include "controller/images/seal_watch.h"
#include "controller/images/store.h"
#include "controller/improve/improver.h"
#include "controller/pipeline/pipeline.h"
#include "controller/run/log_recovery.h"
#include "controller/run/provision.h"
#include "controller/sessionlog/signer.h"
#include "controller/web/site.h"
#include "sandbox/state.h"

namespace kiln::daemon {
struct Controller::Parts {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<git::Cache> cache;
  std::unique_ptr<proxy::Proxy> proxy;
  secrets::Vault vault;
  metrics::Metrics metrics;
  runner::LiveUsage live;
  // The pipeline and its forge, when the configuration enables it: the local
  // forge, or GitHub (its REST client, its auth, the webhook receiver).
  std::unique_ptr<forge::Forge> forge;
  std::unique_ptr<github::Rest> rest;
  std::unique_ptr<github::Auth> auth;
  std::unique_ptr<github::Receiver> webhooks;
  std::unique_ptr<forge::Inbox> inbox;
  std::unique_ptr<pipeline::State> state;
  std::unique_ptr<pipeline::Pipeline> pipeline;
  std::unique_ptr<improve::Improver> improver;
  // Other hosts' session logs, fetched and verified (docs/fleet.md).
  std::unique_ptr<fleet::Fetcher> fetcher;
  std::unique_ptr<images::SealWatch> seals;
};

metrics::Metrics& Controller::metrics() const { return parts_->metrics; }

void Controller::WatchImageSeals() {
  auto store = images::Store::Open(config_.state_dir);
  auto watch = store ? images::SealWatch::Start(store->root())
                     : Result<std::unique_ptr<images::SealWatch>>(store.error());
  if (!watch) {
    spdlog::warn("image seals: checked by a walk of every layer at each run ({})",
                 watch.error().message());
    return;
  }
  parts_->seals = std::move(*watch);
  services_.seals = parts_->seals.get();
}

pipeline::Pipeline* Controller::pipeline() const {
  return parts_ ? parts_->pipeline.get() : nullptr;
}

forge::ApiServer::Handler Controller::http_handler() const {
  if (!parts_ || !parts_->pipeline) return {};
  if (github::Receiver* r = parts_->webhooks.get()) {
    return [r](const forge::ApiRequest& req) {
      std::string path = req.target.substr(0, req.target.find('?'));
      if (path == "/webhooks/github") return r->Handle(req);
      forge::ApiResponse out;
      out.status = 404;
      out.body =
          nlohmann::json{{"message", "not found: kiln answers POST /webhooks/github"}}.dump();
      return out;
    };
  }
  return {};
}

Controller::~Controller() = default;

namespace {

// A secret kept in a file: its content without the trailing newline.
Result<std::string> ReadSecret(const std::string& path, const char* what) {
  auto text = ReadFile(path);
  if (!text) return text.error().Wrap(std::string("github: the ") + what);
  std::string s = std::move(*text);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (s.empty())
    return Error::Invalid(std::string("github: the ") + what + " file " + Quote(path) +
                          " is empty");
  return s;
}

// The GitHub forge of the configuration, with its REST client and auth, and
// the webhook receiver feeding inbox.
Status OpenGitHub(const config::Config& cfg, git::Cache& cache, forge::Inbox& inbox,
                  std::unique_ptr<github::Rest>* rest, std::unique_ptr<github::Auth>* auth,
                  std::unique_ptr<forge::Forge>* forge,
                  std::unique_ptr<github::Receiver>* webhooks) {
  const github::Settings& g = cfg.github;
  github::RestOptions ro;
  ro.api_url = g.api_url;
  ro.ca_file = g.ca_file;
  ro.user_agent = "kiln";
  if (!g.ca_file.empty()) KILN_TRY(git::SetCaFile(g.ca_file));
  *rest = std::make_unique<github::Rest>(ro);
  if (!g.token_file.empty()) {
    KILN_ASSIGN_OR_RETURN(std::string token, ReadSecret(g.token_file, "token"));
    *auth = std::make_unique<github::StaticAuth>(token);
  } else {
    KILN_ASSIGN_OR_RETURN(std::string key, ReadSecret(g.private_key_file, "App private key"));
    // The key must load now, not at the first event.
    KILN_TRY(github::AppJwt(g.app_id, key, 0));
    *auth = std::make_unique<github::AppAuth>(**rest, g.app_id, key, [] { return NowMs() / 1000; });
  }
  KILN_ASSIGN_OR_RETURN(std::string secret, ReadSecret(g.webhook_secret_file, "webhook secret"));
  auto gh = std::make_unique<github::GitHub>(**rest, **auth, g, cfg.pipeline.bot);
  github::GitHub* raw = gh.get();
  cache.set_tokens(
      [raw](const std::string& url, bool renew) { return raw->TokenForUrl(url, renew); });
  github::ReceiverOptions ro2;
  ro2.secret = secret;
  ro2.configured = [raw](const std::string& repo) { return raw->Configured(repo); };
  ro2.label_in = [raw](const std::string& repo, const std::string& label) {
    return raw->LabelIn(repo, label);
  };
  *webhooks = std::make_unique<github::Receiver>(ro2, inbox);
  *forge = std::move(gh);
  return Ok();
}

}  // namespace

Result<std::unique_ptr<Controller>> Controller::Open(config::Config config) {
  std::unique_ptr<Controller> c(new Controller());
  KILN_TRY(provision::ResolvePaths(&config));
  c->config_ = std::move(config);
  const config::Config& cfg = c->config_;
  std::error_code ec;
  for (const std::string& dir :
       {cfg.state_dir, cfg.log_dir, cfg.cache_dir, cfg.state_dir + "/runs"}) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return Error::Sys("mkdir(" + Quote(dir) + ")", ec.value());
  }
  auto parts = std::make_unique<Parts>();
  KILN_ASSIGN_OR_RETURN(parts->store, store::Open(cfg.store));
  parts->cache = std::make_unique<git::Cache>(cfg.cache_dir);
  {
    auto vault = secrets::Vault::Load(cfg.secrets_file);
    if (!vault) return vault.error().Wrap("secrets");
    parts->vault = std::move(*vault);
  }
  auto signer = sessionlog::LoadOrCreateSigner(cfg.key_dir);
  if (!signer) return signer.error().Wrap("the session signing key");
  parts->proxy = std::make_unique<proxy::Proxy>(2);
  c->parts_ = std::move(parts);
  runner::Services& s = c->services_;
  s.config = &c->config_;
  s.store = c->parts_->store.get();
  s.cache = c->parts_->cache.get();
  s.proxy = c->parts_->proxy.get();
  s.signer = std::shared_ptr<const sessionlog::Signer>(std::move(*signer));
  s.vault = &c->parts_->vault;
  s.metrics = &c->parts_->metrics;
  s.live = &c->parts_->live;
  s.owner = runner::OwnerId(cfg.host_name);
  c->parts_->fetcher =
      std::make_unique<fleet::Fetcher>(*s.store, *s.signer, s.owner, cfg.state_dir + "/fleet-logs");
  s.log_of = [f = c->parts_->fetcher.get()](const store::Run& run) { return f->LogOf(run); };
  if (cfg.pipeline.enabled) {
    Parts& p = *c->parts_;
    KILN_ASSIGN_OR_RETURN(p.inbox, forge::Inbox::Open(cfg.store));
    if (cfg.pipeline.forge == "github") {
      KILN_TRY(OpenGitHub(cfg, *p.cache, *p.inbox, &p.rest, &p.auth, &p.forge, &p.webhooks));
    }
    KILN_ASSIGN_OR_RETURN(p.state, pipeline::State::Open(cfg.store));
    if (cfg.pipeline.forge != "github") {
      KILN_ASSIGN_OR_RETURN(std::unique_ptr<forge::Local> local,
                            forge::Local::Open(cfg.store, forge::ReposDir(cfg.state_dir),
                                               cfg.pipeline.bot, forge::Access::kApp));
      // The local forge's tables are in the store: its writes check the
      // pipeline's lead in their own transactions (docs/fleet.md).
      local->SetWriteGuard([state = p.state.get()](store::sql::Db& db, const std::string& doing) {
        return state->LeadsOn(db, doing);
      });
      p.forge = std::move(local);
    }
    pipeline::Options o;
    o.trusted_users = cfg.pipeline.trusted_users;
    o.bot = cfg.pipeline.bot;
    if (!cfg.pipeline.api_listen.empty()) o.web_url = config::WebUrl(cfg);
    o.host = s.owner;
    o.lead_ms = static_cast<int64_t>(cfg.concurrency.lease_ms);
    p.pipeline = std::make_unique<pipeline::Pipeline>(s, *p.forge, *p.inbox, *p.state, o);
    pipeline::Pipeline* pl = p.pipeline.get();
    p.improver = std::make_unique<improve::Improver>(s, *p.forge, *p.inbox, *p.state, o.bot);
    improve::Improver* im = p.improver.get();
    s.decide = [pl, im](const runner::Finished& f, sessionlog::Writer& log) {
      return f.run.request.role == "improve" ? im->Decide(f, log) : pl->Decide(f, log);
    };
  }
  return c;
}

Result<size_t> Controller::Recover() {
  const config::Config& cfg = config_;
  auto gc = sandbox::state::Gc(cfg.state_dir, "/sys/fs/cgroup", cfg.sandbox.cgroup_parent);
  for (const auto& id : gc.removed) spdlog::info("recovery: removed sandbox {}", id);
  for (const auto& e : gc.errors) spdlog::warn("recovery: sandbox gc: {}", e);
  KILN_ASSIGN_OR_RETURN(std::vector<store::Run> running, services_.store->Running());
  size_t recovered = 0;
  std::set<std::string> live;
  for (const store::Run& run : running) {
    // Another host's run is its own to finish, or the fleet's to rescue when
    // its lease ends (Beat): never this host's, whose reap would touch a log
    // and a sandbox it does not hold.
    if (!runner::OwnerHere(run.owner, cfg.host_name)) continue;
    if (run.owner == services_.owner || runner::OwnerAlive(run.owner)) {
      live.insert(runner::SandboxId(run));  // its run directory's name
      continue;
    }
    auto head = runner::Reap(services_, run);
    if (!head) {
      spdlog::error("recovery: run {}: {}", run.id, head.error().message());
      continue;
    }
    if (!head->empty()) {
      store::Progress progress;
      progress.log_head = *head;
      (void)services_.store->SetProgress(run.id, progress, run.epoch);
    }
    std::string why = "the controller running it (" + run.owner + ") died mid-run";
    if (cfg.recovery == "requeue") {
      auto again = services_.store->FailInfrastructure(run.id, why, runner::RetryPolicyOf(cfg),
                                                       NowMs(), run.epoch);
      if (!again) return again.error();
      spdlog::warn("recovery: run {}: {}; {}", run.id, why,
                   *again ? "queued again" : "failed (no attempts left)");
    } else {
      store::Finish f{store::Status::kError, "crashed", nullptr, why, head->empty() ? "" : *head};
      KILN_TRY(services_.store->Complete(run.id, f, NowMs(), run.epoch));
      spdlog::warn("recovery: run {}: {}; marked failed", run.id, why);
    }
    ++recovered;
  }
  // Run directories of no live run: a crash between a run's end in the store
  // and its teardown, or a reap that failed earlier.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(cfg.state_dir + "/runs", ec)) {
    const std::string name = e.path().filename().string();
    if (live.count(name)) continue;
    provision::Resources res;
    res.run_dir = e.path().string();
    store::Run orphan;
    orphan.id = name;
    if (Status st = provision::Release(cfg, orphan, &res); !st.ok()) {
      spdlog::error("recovery: {}: {}", res.run_dir, st.error().message());
    }
  }
  return recovered;
}

Result<std::unique_ptr<schedule::Scheduler>> OpenScheduler(Controller& c) {
  const runner::Services& s = c.services();
  improve::Improver* improver = c.parts_ ? c.parts_->improver.get() : nullptr;
  for (const config::Config::Schedule& sc : c.config().schedules) {
    Status st = Ok();
    if (!sc.improves()) {
      st = runner::CheckRequest(s, schedule::RequestFor(sc, 1));
    } else if (!improver) {
      st = Error::Invalid("the improver needs the pipeline and its forge (pipeline.enabled)");
    } else if (auto core = skill::Load(c.config().skills_dir, sc.improve.role); !core) {
      st = core.error();
    }
    if (!st.ok()) return st.error().Wrap(sc.where + ": schedule " + Quote(sc.name));
  }
  schedule::ImproveStarter start;
  if (improver) {
    start = [improver](const config::Config::Schedule& sc, int64_t now_ms) {
      return improver->Start(sc, now_ms);
    };
  }
  return schedule::Scheduler::Open(c.config(), *s.store, s.owner, std::move(start));
}

// One beat of this host: its record in the store, its leases renewed, and
// the runs whose lease ran out, whichever host held them, rescued.
void Beat(const runner::Services& s, const store::Host& host, int64_t lease_ms, bool requeue) {
  const int64_t now = NowMs();
  if (auto st = s.store->Beat(host, now); !st.ok()) {
    spdlog::error("heartbeat: {}", st.error().message());
  }
  if (auto renewed = s.store->Renew(s.owner, lease_ms, now); !renewed) {
    spdlog::error("heartbeat: renewing leases: {}", renewed.error().message());
  }
  auto rescued = s.store->RescueExpired(s.owner, requeue, now);
  if (!rescued) {
    spdlog::error("heartbeat: rescuing runs: {}", rescued.error().message());
    return;
  }
  for (const store::Rescue& r : *rescued) {
    spdlog::warn("run {}: rescued from {}, whose lease ran out: now {}", r.id, r.from,
                 store::ToString(r.status));
  }
}

// The listener's workers: pages, the APIs and a git push each hold one while
// they are answered; server-sent events hold none.
constexpr int kHttpWorkers = 4;

Status Serve(Controller& c, const std::atomic<bool>& stop, const ServeOptions& options) {
  const config::Config& cfg = c.config();
  c.WatchImageSeals();
  const runner::Services& s = c.services();
  KILN_ASSIGN_OR_RETURN(size_t recovered, c.Recover());
  if (recovered > 0) spdlog::info("recovered {} run(s) left by a crashed controller", recovered);
  // Logs a full disk left open are closed once they can be written.
  log_recovery::Sweeper sweeper(cfg.log_dir, s.signer);
  sweeper.Sweep();
  auto last_sweep = std::chrono::steady_clock::now();

  KILN_ASSIGN_OR_RETURN(std::unique_ptr<schedule::Scheduler> scheduler, OpenScheduler(c));
  std::mutex scheduler_mu;  // the loop ticks it, the metrics thread reads it

  std::unique_ptr<metrics::Server> server;
  if (!cfg.metrics_listen.empty()) {
    KILN_ASSIGN_OR_RETURN(server, metrics::Server::Start(cfg.metrics_listen, [&] {
                            std::lock_guard lock(scheduler_mu);
                            return c.metrics().Render(*s.store, s.proxy) + scheduler->Metrics();
                          }));
    spdlog::info("metrics on http://{}/metrics", cfg.metrics_listen);
  }
  pipeline::Pipeline* pipeline = c.pipeline();
  // The one HTTP listener: the web view and the runs API, with the local
  // forge's API or GitHub's webhooks behind it.
  std::unique_ptr<web::Site> site;
  std::unique_ptr<forge::ApiServer> api;
  if (!cfg.pipeline.api_listen.empty()) {
    web::SiteOptions wo;
    wo.store_path = cfg.store;
    wo.key_dir = cfg.key_dir;
    wo.log_of = s.log_of;
    wo.log_dir = cfg.log_dir;
    wo.host = s.owner;
    if (cfg.pipeline.forge == "local") {
      // The local forge is there to use with or without the pipeline.
      KILN_ASSIGN_OR_RETURN(std::unique_ptr<forge::Api> forge_api,
                            forge::Api::Open(cfg.store, forge::ReposDir(cfg.state_dir),
                                             cfg.pipeline.bot, config::WebUrl(cfg)));
      std::shared_ptr<forge::Api> shared = std::move(forge_api);
      wo.forge_api = [shared](const forge::ApiRequest& r) { return shared->Handle(r); };
      wo.repos_dir = forge::ReposDir(cfg.state_dir);
    } else if (pipeline) {
      wo.webhooks = c.http_handler();
    }
    const bool local_forge = !wo.repos_dir.empty();
    KILN_ASSIGN_OR_RETURN(site, web::Site::Open(*s.store, std::move(wo)));
    web::Site* raw = site.get();
    // GitHub caps a webhook delivery at 25 MB; git over HTTP is streamed.
    KILN_ASSIGN_OR_RETURN(api, forge::ApiServer::Start(
                                   cfg.pipeline.api_listen,
                                   [raw](const forge::ApiRequest& r) { return raw->Handle(r); },
                                   25 << 20, kHttpWorkers, raw->Streamed()));
    spdlog::info("web view on http://{}/{}", cfg.pipeline.api_listen,
                 !local_forge ? "" : " (the local forge's API on /api/v1, its git over HTTP)");
  }
  spdlog::info("kiln serve: owner {}, up to {} runs here, {} in all ({} per repository)", s.owner,
               cfg.concurrency.host_max_runs, cfg.concurrency.max_runs,
               cfg.concurrency.max_runs_per_repo);

  // Leases: this host's beat every third of a lease, on a thread of its
  // own so that a slow pipeline tick never lets a lease lapse.
  const auto lease_ms = static_cast<int64_t>(cfg.concurrency.lease_ms);
  std::atomic<bool> beating{true};
  std::thread beats;
  if (lease_ms > 0) {
    // Where the other hosts reach this one's API (its session logs), and the
    // key its logs and requests are signed with.
    const store::Host host{s.owner,
                           cfg.concurrency.host_max_runs,
                           KILN_VERSION,
                           NowMs(),
                           0,
                           cfg.pipeline.api_listen.empty() ? "" : config::WebUrl(cfg),
                           s.signer->public_key().Pem()};
    beats = std::thread([&, host] {
      auto next = std::chrono::steady_clock::now();
      while (beating.load()) {
        if (std::chrono::steady_clock::now() >= next) {
          Beat(s, host, lease_ms, cfg.recovery == "requeue");
          next = std::chrono::steady_clock::now() + std::chrono::milliseconds(lease_ms / 3);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }

  std::mutex mu;
  std::condition_variable cv;
  size_t active = 0;
  struct Worker {
    std::thread thread;
    bool done = false;  // guarded by mu
  };
  std::list<Worker> workers;  // list: a worker's node stays put while it runs
  store::ClaimLimits limits{cfg.concurrency.max_runs, cfg.concurrency.max_runs_per_repo};
  std::optional<Error> failure;  // why --until-idle gave up
  while (!stop.load()) {
    if (std::chrono::steady_clock::now() - last_sweep > std::chrono::minutes(1)) {
      sweeper.Sweep();
      last_sweep = std::chrono::steady_clock::now();
    }
    {
      std::lock_guard lock(scheduler_mu);
      if (auto fired = scheduler->Tick(NowMs()); !fired) {
        spdlog::error("schedules: {}", fired.error().message());
      }
    }
    if (pipeline) {
      try {
        auto worked = pipeline->Tick();
        if (!worked) spdlog::error("pipeline: {}", worked.error().message());
      } catch (const std::exception& e) {
        // Stored results and forge replies are data; a surprise in them is
        // logged and retried, never the end of the daemon.
        spdlog::error("pipeline: {}", e.what());
      }
    }
    for (auto it = workers.begin(); it != workers.end();) {
      bool done;
      {
        std::lock_guard<std::mutex> lock(mu);
        done = it->done;
      }
      if (done) {
        it->thread.join();
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (active >= static_cast<size_t>(cfg.concurrency.host_max_runs)) break;
      }
      auto claim_start = std::chrono::steady_clock::now();
      auto claimed = s.store->Claim(limits, s.owner, NowMs(), lease_ms);
      double claim_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - claim_start)
              .count();
      if (!claimed) {
        spdlog::error("claiming a run: {}", claimed.error().message());
        break;
      }
      if (!*claimed) break;
      store::Run run = std::move(**claimed);
      spdlog::info("run {}: claimed (role {}, {} at {}, attempt {})", run.id, run.request.role,
                   run.request.repo, run.request.commit, run.attempt);
      {
        std::lock_guard<std::mutex> lock(mu);
        ++active;
      }
      Worker& w = workers.emplace_back();
      w.thread = std::thread([&, run = std::move(run), claim_ms]() mutable {
        runner::Execute(s, std::move(run), stop, claim_ms);
        std::lock_guard<std::mutex> lock(mu);
        --active;
        w.done = true;
        cv.notify_all();
      });
    }
    if (options.until_idle) {
      bool busy;
      {
        std::lock_guard<std::mutex> lock(mu);
        busy = active > 0;
      }
      // A store that cannot say whether work is left never will: stop with
      // its error rather than wait forever.
      auto queued = s.store->CountByStatus();
      if (!queued) {
        failure = queued.error().Wrap("--until-idle: reading the queue");
        break;
      }
      busy = busy || queued->at(store::Status::kQueued) > 0;
      if (!busy && pipeline) {
        auto idle = pipeline->Idle();
        if (!idle) {
          failure = idle.error().Wrap("--until-idle: reading the forge's events and results");
          break;
        }
        busy = !*idle;
      }
      if (!busy) {
        spdlog::info("kiln serve: idle, stopping (--until-idle)");
        break;
      }
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::milliseconds(cfg.poll_interval_ms));
  }
  spdlog::info("kiln serve: stopping; {} run(s) in flight will be queued again", active);
  for (auto& w : workers) w.thread.join();
  beating = false;
  if (beats.joinable()) beats.join();
  if (pipeline) {
    if (auto resigned = pipeline->Resign(); !resigned.ok()) {
      spdlog::warn("pipeline: giving the lead up: {}", resigned.error().message());
    }
  }
  if (failure) return *failure;
  return Ok();
}

}  // namespace kiln::daemon
