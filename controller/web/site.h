// Everything `kiln serve` answers on its one HTTP listener (docs/web.md):
// the web view's pages (sign-in, the dashboard, the run pages, share
// links), their live updates (server-sent events), the runs API under
// /api/v1/runs, git's smart HTTP for the local forge's repositories, and,
// handed on, the local forge's API and GitHub's webhooks. Every page carries a
// Content-Security-Policy without inline script and loads nothing from another origin.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/result.h"
#include "controller/forge/api.h"
#include "controller/store/store.h"
#include "controller/web/auth.h"
#include "controller/web/forge_pages.h"
#include "controller/web/git_http.h"
#include "controller/web/hub.h"
#include "controller/web/runview.h"

namespace kiln::web {

struct SiteOptions {
  std::string store_path;
  std::string key_dir;  // the keys a log's verdict trusts
  // What the listener hands on: the local forge's API (/api/v1/ but runs)
  // and GitHub's webhooks (/webhooks/github); either may be empty.
  forge::ApiServer::Handler forge_api;
  forge::ApiServer::Handler webhooks;
  // The local forge's bare repositories, served over git's smart HTTP and
  // shown as pages; "" serves none (a GitHub forge).
  std::string repos_dir;
  int poll_ms = 200;
  std::function<int64_t()> now;  // ms since the epoch; NowMs by default
  // Where a run's session log can be read here: on a fleet, another host's
  // log fetched and verified (controller/fleet); by default the run's own
  // path.
  LogOf log_of;
  // This host's session logs, served to the other hosts of the store
  // (/api/v1/fleet/, signed requests only); "" serves none.
  std::string log_dir;
  // This process's owner id (runner::OwnerId): its host name is whom the
  // other hosts' requests must be for, and whose logs need no other key.
  std::string host;
};

class Site {
 public:
  static Result<std::unique_ptr<Site>> Open(store::Store& store, SiteOptions options);
  ~Site();

  // Thread-safe: the server calls it from several workers.
  forge::ApiResponse Handle(const forge::ApiRequest& request);
  // git over HTTP with the local forge (git_http.h), streamed; empty
  // without the local forge. Give it to the server beside Handle.
  forge::ApiServer::StreamedRoute Streamed();

  Hub& hub() { return *hub_; }
  Auth& auth() { return *auth_; }

 private:
  Site(store::Store& store, SiteOptions options, std::unique_ptr<Auth> auth);
  struct Request;
  forge::ApiResponse Route(Request& r);
  forge::ApiResponse Login(Request& r);
  void Git(const forge::ApiRequest& head, forge::Exchange& exchange);
  forge::ApiResponse RunPage(Request& r, const std::string& run_id, bool read_only,
                             const std::string& base);
  forge::ApiResponse RunAction(Request& r, const std::string& run_id, const std::string& action,
                               bool json);
  forge::ApiResponse RunEvents(Request& r, const std::string& run_id);
  forge::ApiResponse Timeline(Request& r, const std::string& run_id);
  std::optional<Verdict> VerdictOf(const store::Run& run);

  store::Store& store_;
  SiteOptions options_;
  std::unique_ptr<Auth> auth_;
  RunViews views_;
  std::unique_ptr<Hub> hub_;
  std::unique_ptr<GitHttp> git_;
  std::unique_ptr<ForgePages> forge_pages_;
  std::mutex forge_mu_;  // the forge's API is not thread-safe
  std::mutex verdicts_mu_;
  std::map<std::string, std::pair<uint64_t, Verdict>> verdicts_;  // log -> (size, verdict)
};

}  // namespace kiln::web
