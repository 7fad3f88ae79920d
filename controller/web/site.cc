#include "controller/web/site.h"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "base/clock.h"
#include "base/digest.h"
#include "base/html.h"
#include "base/strings.h"
#include "controller/fleet/logs.h"
#include "controller/forge/api.h"
#include "controller/sessionlog/signer.h"
#include "controller/sessionlog/verify.h"
#include "controller/web/assets.h"
#include "controller/web/pages.h"

namespace kiln::web {
namespace {

using forge::ApiRequest;
using forge::ApiResponse;
using nlohmann::json;

constexpr std::string_view kSessionCookie = "kiln_session";
constexpr std::string_view kLoginCookie = "kiln_login";
constexpr size_t kMaxSteerBytes = 8000;

// No inline script, no other origin, no framing.
constexpr std::string_view kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

void Harden(ApiResponse& out) {
  out.headers.emplace_back("Content-Security-Policy", std::string(kCsp));
  out.headers.emplace_back("X-Content-Type-Options", "nosniff");
  out.headers.emplace_back("Referrer-Policy", "no-referrer");
  out.headers.emplace_back("X-Frame-Options", "DENY");
}

ApiResponse Html(int status, std::string body) {
  ApiResponse out;
  out.status = status;
  out.content_type = "text/html; charset=utf-8";
  out.body = std::move(body);
  out.headers.emplace_back("Cache-Control", "no-store");
  Harden(out);
  return out;
}

ApiResponse Json(int status, const json& body) {
  ApiResponse out;
  out.status = status;
  out.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  out.headers.emplace_back("Cache-Control", "no-store");
  Harden(out);
  return out;
}

ApiResponse Message(int status, const std::string& message) {
  return Json(status, {{"message", message}});
}

ApiResponse Redirect(const std::string& to) {
  ApiResponse out;
  out.status = 303;
  out.content_type = "text/plain";
  out.headers.emplace_back("Location", to);
  Harden(out);
  return out;
}

std::map<std::string, std::string> Cookies(const std::string& header) {
  std::map<std::string, std::string> out;
  for (const std::string& part : Split(header, ';')) {
    std::string_view p = part;
    while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
    size_t eq = p.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(p.substr(0, eq)), std::string(p.substr(eq + 1)));
  }
  return out;
}

std::string SetCookie(std::string_view name, const std::string& value, bool secure,
                      int64_t max_age_s) {
  return std::string(name) + "=" + value +
         "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age_s) +
         (secure ? "; Secure" : "");
}

// A run id or share token as a path segment: what the store could hold.
bool Plain(const std::string& s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

uint64_t Number(const std::string& s) {
  uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9' || n > UINT64_MAX / 10 - 10) return 0;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

// Where a sign-in may send the browser: a path of this site, nothing else.
std::string SafeNext(const std::string& next) {
  if (next.size() < 1 || next[0] != '/' || next.starts_with("//") ||
      next.find('\\') != std::string::npos) {
    return "/";
  }
  return next;
}

}  // namespace

struct Site::Request {
  explicit Request(const ApiRequest& r) : raw(r) {}
  const ApiRequest& raw;
  std::string path;
  std::vector<std::string> segments;
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> form;  // a POSTed form's fields
  std::map<std::string, std::string> cookies;
  Viewer viewer;
  bool by_token = false;  // signed by an API token, not a session cookie
  bool secure = false;    // arrived over TLS at a proxy in front

  bool Post() const { return raw.method == "POST"; }
  // A state-changing request from a session must carry its CSRF token.
  bool CsrfOk() const {
    if (by_token) return true;
    auto it = form.find("csrf");
    std::string sent = it != form.end() ? it->second : "";
    if (auto h = raw.headers.find("x-csrf-token"); h != raw.headers.end()) sent = h->second;
    return !viewer.csrf.empty() && sent == viewer.csrf;
  }
};

Site::Site(store::Store& store, SiteOptions options, std::unique_ptr<Auth> auth)
    : store_(store), options_(std::move(options)), auth_(std::move(auth)) {
  if (!options_.now) options_.now = [] { return NowMs(); };
  if (!options_.log_of) {
    options_.log_of = [](const store::Run& run) -> Result<std::string> { return run.log_path; };
  }
  Hub::Options ho;
  ho.log_of = options_.log_of;
  ho.poll_ms = options_.poll_ms;
  ho.now = options_.now;
  ho.verdict = [this](const store::Run& run) { return VerdictOf(run); };
  hub_ = std::make_unique<Hub>(store_, views_, std::move(ho));
  if (!options_.repos_dir.empty()) {
    git_ = std::make_unique<GitHttp>(options_.store_path, options_.repos_dir);
    forge_pages_ = std::make_unique<ForgePages>(store_, options_.store_path, options_.repos_dir);
  }
}

Site::~Site() = default;

forge::ApiServer::StreamedRoute Site::Streamed() {
  if (!git_) return {};
  return {[](const ApiRequest& head) {
            return GitHttp::Matches(
                std::string_view(head.target).substr(0, std::string_view(head.target).find('?')));
          },
          [this](const ApiRequest& head, forge::Exchange& x) { Git(head, x); }};
}

// git: HTTP basic auth, the forge token as the password (any user name, as
// GitHub takes), asked for with a 401 that git answers.
void Site::Git(const ApiRequest& head, forge::Exchange& x) {
  auto user = auth_->UserOfToken(forge::TokenOf(head.authorization));
  Status replied = Ok();
  if (!user) {
    replied = x.Reply(Message(500, user.error().Wrap("checking a token").message()));
  } else if (!*user) {
    ApiResponse out;
    out.status = 401;
    out.content_type = "text/plain";
    out.body = "kiln: authenticate with your forge user's API token as the password\n";
    out.headers.emplace_back("WWW-Authenticate", "Basic realm=\"kiln\"");
    replied = x.Reply(out);
  } else {
    git_->Stream(head, **user, x);
  }
  if (!replied.ok()) spdlog::warn("git over HTTP: {}", replied.error().message());
}

Result<std::unique_ptr<Site>> Site::Open(store::Store& store, SiteOptions options) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Auth> auth, Auth::Open(options.store_path));
  return std::unique_ptr<Site>(new Site(store, std::move(options), std::move(auth)));
}

ApiResponse Site::Handle(const ApiRequest& raw) {
  Request r(raw);
  std::string_view target = raw.target;
  size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  auto query = forge::ParseQuery(q == std::string_view::npos ? "" : target.substr(q + 1));
  if (!query) return Message(400, "the query has a malformed %-escape");
  r.query = std::move(*query);
  for (const std::string& seg : Split(r.path, '/')) {
    if (seg.empty()) continue;
    auto d = forge::PercentDecode(seg, false);
    if (!d) return Message(400, "the path has a malformed %-escape");
    r.segments.push_back(*d);
  }
  try {
    return Route(r);
  } catch (const std::exception& e) {
    spdlog::error("web: {} {}: {}", raw.method, r.path, e.what());
    return Message(500, "internal error");
  }
}

ApiResponse Site::Route(Request& r) {
  const auto& seg = r.segments;
  const ApiRequest& raw = r.raw;
  // Handed on: the webhooks, and the forge's API but for runs.
  if (r.path == "/webhooks/github") {
    return options_.webhooks ? options_.webhooks(raw) : Message(404, "no GitHub webhooks here");
  }
  const bool api = seg.size() >= 2 && seg[0] == "api" && seg[1] == "v1";
  // The other hosts of a fleet, for this host's session logs.
  if (api && seg.size() >= 3 && seg[2] == "fleet") {
    if (options_.log_dir.empty()) return Message(404, "this host serves no session logs");
    fleet::Served s = fleet::Serve(store_, store::OwnerHost(options_.host), options_.log_dir,
                                   raw.method, r.path, raw.authorization, options_.now());
    ApiResponse out;
    out.status = s.status;
    out.content_type = s.content_type;
    out.body = std::move(s.body);
    return out;
  }
  if (api && (seg.size() < 3 || seg[2] != "runs")) {
    if (!options_.forge_api) return Message(404, "not found: this kiln has no local forge");
    std::lock_guard lock(forge_mu_);
    return options_.forge_api(raw);
  }
  if (r.path == "/healthz") {
    ApiResponse out;
    out.content_type = "text/plain";
    out.body = "ok\n";
    return out;
  }
  if (r.path == "/favicon.ico") {  // none: an answer, not an error in the browser's console
    ApiResponse out;
    out.status = 204;
    return out;
  }
  if (seg.size() == 2 && seg[0] == "static") {
    const Asset* a = FindAsset(seg[1]);
    if (!a || raw.method != "GET") return Message(404, "no such file");
    ApiResponse out;
    out.content_type = std::string(a->type);
    out.body = std::string(a->body);
    out.headers.emplace_back("Cache-Control", "no-cache");
    Harden(out);
    return out;
  }
  const int64_t now = options_.now();
  r.cookies = Cookies(raw.headers.count("cookie") ? raw.headers.at("cookie") : "");
  if (auto p = raw.headers.find("x-forwarded-proto"); p != raw.headers.end()) {
    r.secure = p->second == "https";
  }
  if (r.Post()) {
    auto ct = raw.headers.find("content-type");
    if (ct != raw.headers.end() && ct->second.starts_with("application/x-www-form-urlencoded")) {
      auto form = forge::ParseQuery(raw.body);
      if (!form) return Message(400, "the form has a malformed %-escape");
      r.form = std::move(*form);
    }
  }
  if (r.path == "/login") return Login(r);
  // A share link: the run, read-only, for whoever has the link.
  if (seg.size() >= 2 && seg[0] == "s") {
    if (!Plain(seg[1])) return Html(404, ErrorPage(Viewer{}, 404, "no such share link"));
    auto share = auth_->ShareFor(seg[1], now);
    if (!share) return Message(500, share.error().Wrap("reading share links").message());
    if (!*share) {
      return Html(404, ErrorPage(Viewer{}, 404, "This share link is unknown, expired or revoked."));
    }
    if (r.Post()) return Message(403, "a share link is read-only: steer and cancel need a sign-in");
    const std::string run_id = (*share)->run_id;
    if (seg.size() == 2) return RunPage(r, run_id, true, "/s/" + seg[1]);
    if (seg.size() == 3 && seg[2] == "events") return RunEvents(r, run_id);
    if (seg.size() == 3 && seg[2] == "timeline") return Timeline(r, run_id);
    return Html(404, ErrorPage(Viewer{}, 404, "not found"));
  }
  // Who asks: a session cookie, or an API token.
  if (auto c = r.cookies.find(std::string(kSessionCookie)); c != r.cookies.end()) {
    auto s = auth_->SessionFor(c->second, now);
    if (!s) return Message(500, s.error().Wrap("reading sessions").message());
    if (*s) r.viewer = Viewer{(*s)->user, (*s)->csrf, forge_pages_ != nullptr};
  }
  if (const std::string token = forge::TokenOf(raw.authorization);
      r.viewer.user.empty() && !token.empty()) {
    auto user = auth_->UserOfToken(token);
    if (!user) return Message(500, user.error().Wrap("checking a token").message());
    if (*user) {
      r.viewer.user = **user;
      r.by_token = true;
    }
  }
  if (r.viewer.user.empty()) {
    if (api) return Message(401, "sign in first: a session cookie or an API token");
    if (r.Post()) return Html(401, ErrorPage(Viewer{}, 401, "Sign in first."));
    return Redirect("/login?next=" + forge::PercentEncode(raw.target, "/"));
  }
  if (r.Post() && !r.CsrfOk()) {
    return api ? Message(403, "missing or wrong CSRF token (X-CSRF-Token)")
               : Html(403,
                      ErrorPage(r.viewer, 403,
                                "Missing or wrong CSRF token: reload the page and try again."));
  }
  if (r.path == "/logout" && r.Post()) {
    (void)auth_->SignOut(r.cookies[std::string(kSessionCookie)]);
    ApiResponse out = Redirect("/login");
    out.headers.emplace_back("Set-Cookie", SetCookie(kSessionCookie, "", r.secure, 0));
    return out;
  }
  // The runs API.
  if (api) {
    if (seg.size() == 3 && raw.method == "GET") {
      store::ListFilter f;
      if (auto s = r.query.find("status"); s != r.query.end() && !s->second.empty()) {
        auto st = store::ParseStatus(s->second);
        if (!st) return Message(422, "status: " + st.error().message());
        f.status = *st;
      }
      f.role = r.query["role"];
      f.repo = r.query["repo"];
      if (!r.query["limit"].empty()) f.limit = Number(r.query["limit"]);
      auto runs = store_.List(f);
      if (!runs) return Message(500, runs.error().Wrap("listing runs").message());
      json a = json::array();
      for (const auto& run : *runs) a.push_back(store::ToJson(run));
      return Json(200, a);
    }
    if (seg.size() == 4 && seg[3] == "events" && raw.method == "GET") {
      RunFilter filter{r.query["repo"], r.query["role"], r.query["status"]};
      ApiResponse out;
      out.content_type = "text/event-stream";
      out.body = "retry: 2000\n\n";
      Hub* hub = hub_.get();
      out.open_stream = [hub, filter](std::shared_ptr<forge::Stream> s) {
        hub->WatchRuns(std::move(s), filter);
      };
      return out;
    }
    if (seg.size() >= 4 && !Plain(seg[3])) return Message(404, "no such run");
    if (seg.size() == 4 && raw.method == "GET") {
      auto run = store_.Get(seg[3]);
      if (!run) return Message(404, run.error().message());
      return Json(200, store::ToJson(*run));
    }
    if (seg.size() == 5 && seg[4] == "events" && raw.method == "GET") return RunEvents(r, seg[3]);
    if (seg.size() == 5 && r.Post() && (seg[4] == "steer" || seg[4] == "cancel")) {
      if (auto ct = raw.headers.find("content-type");
          ct != raw.headers.end() && ct->second.starts_with("application/json")) {
        json body = json::parse(raw.body, nullptr, false);
        if (!body.is_object()) return Message(400, "the body is not a JSON object");
        if (body.contains("message")) {
          if (!body["message"].is_string()) return Message(422, "message: not a string");
          r.form["message"] = body["message"].get<std::string>();
        }
      }
      return RunAction(r, seg[3], seg[4], true);
    }
    return Message(404, "not found: " + r.path);
  }
  // Pages.
  if (r.path == "/" && raw.method == "GET") {
    RunFilter filter{r.query["repo"], r.query["role"], r.query["status"]};
    store::ListFilter f;
    f.limit = 200;
    auto runs = store_.List(f);
    if (!runs) return Html(500, ErrorPage(r.viewer, 500, runs.error().message()));
    std::erase_if(*runs, [&](const store::Run& run) { return !filter.Matches(run); });
    return Html(200, Dashboard(r.viewer, filter, *runs, Stats(store_, now)));
  }
  if (seg.size() >= 2 && seg[0] == "runs") {
    if (!Plain(seg[1])) return Html(404, ErrorPage(r.viewer, 404, "no such run"));
    if (seg.size() == 2 && raw.method == "GET") return RunPage(r, seg[1], false, "/runs/" + seg[1]);
    if (seg.size() == 3 && seg[2] == "timeline") return Timeline(r, seg[1]);
    if (seg.size() == 3 && seg[2] == "events") return RunEvents(r, seg[1]);
    if (seg.size() == 3 && r.Post() && (seg[2] == "steer" || seg[2] == "cancel")) {
      return RunAction(r, seg[1], seg[2], false);
    }
  }
  if (forge_pages_ && ForgePages::Matches(seg)) {
    auto host = raw.headers.find("host");
    const std::string base = std::string(r.secure ? "https://" : "http://") +
                             (host != raw.headers.end() ? host->second : "HOST");
    PageReply p = r.Post() ? forge_pages_->Post(r.viewer, seg, r.form)
                           : forge_pages_->Get(r.viewer, seg, r.query, base);
    if (!p.redirect.empty()) return Redirect(p.redirect);
    return Html(p.status, std::move(p.html));
  }
  return Html(404, ErrorPage(r.viewer, 404, "Nothing here: " + r.path));
}

ApiResponse Site::Login(Request& r) {
  const int64_t now = options_.now();
  const ApiRequest& raw = r.raw;
  if (raw.method == "GET") {
    // The sign-in form carries a value its cookie must match: a page on
    // another site cannot sign a browser in as someone else.
    // One value per browser while it signs in: a second tab (or the
    // browser's own request for an icon) must not void the first form.
    std::string nonce = r.cookies[std::string(kLoginCookie)];
    if (nonce.size() != 64 || !std::all_of(nonce.begin(), nonce.end(), ::isxdigit)) {
      auto fresh = forge::NewSecret("");
      if (!fresh) return Message(500, fresh.error().message());
      nonce = *fresh;
    }
    ApiResponse out = Html(200, LoginPage(nonce, SafeNext(r.query["next"]), ""));
    out.headers.emplace_back("Set-Cookie", SetCookie(kLoginCookie, nonce, r.secure, 600));
    return out;
  }
  if (!r.Post()) return Message(405, "GET or POST");
  const std::string next = SafeNext(r.form["next"]);
  auto again = [&](int status, const std::string& why) {
    std::string nonce = r.cookies[std::string(kLoginCookie)];
    return Html(status, LoginPage(nonce, next, why));
  };
  const std::string nonce = r.cookies[std::string(kLoginCookie)];
  if (nonce.empty() || r.form["login_csrf"] != nonce) {
    return again(403, "The sign-in form expired: reload the page and try again.");
  }
  auto in = auth_->SignIn(r.form["user"], r.form["token"], now);
  if (!in) return Message(500, in.error().Wrap("signing in").message());
  if (!*in) return again(401, "That user and token do not match.");
  ApiResponse out = Redirect(next);
  out.headers.emplace_back("Set-Cookie",
                           SetCookie(kSessionCookie, (*in)->id, r.secure, kSessionMs / 1000));
  out.headers.emplace_back("Set-Cookie", SetCookie(kLoginCookie, "", r.secure, 0));
  return out;
}

std::optional<Verdict> Site::VerdictOf(const store::Run& run) {
  if (run.log_path.empty()) return std::nullopt;
  auto where = options_.log_of(run);
  if (!where) return Verdict{false, false, where.error().message()};
  const std::string& path = *where;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Verdict{false, false, "the log " + path + " is gone"};
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  {
    std::lock_guard lock(verdicts_mu_);
    auto it = verdicts_.find(path);
    if (it != verdicts_.end() && it->second.first == size) return it->second.second;
  }
  sessionlog::VerifyOptions vo;
  auto keys = sessionlog::TrustedKeys(options_.key_dir);
  if (keys) vo.trusted_keys = *keys;
  // On a fleet, a log another host wrote is signed with that host's key,
  // which the store holds.
  for (auto& key : fleet::KeysOfRunHost(store_, run, options_.host)) {
    vo.trusted_keys.push_back(std::move(key));
  }
  Verdict v;
  auto report = sessionlog::Verify(path, vo);
  if (!report) {
    v.text = report.error().message();
  } else {
    v.verified = report->ok();
    v.complete = report->complete;
    v.text = report->findings.empty() ? std::to_string(report->records) + " records, " +
                                            std::to_string(report->signatures) + " signatures"
                                      : sessionlog::FormatFinding(report->findings.front());
  }
  std::lock_guard lock(verdicts_mu_);
  verdicts_[path] = {size, v};
  return v;
}

ApiResponse Site::RunPage(Request& r, const std::string& run_id, bool read_only,
                          const std::string& base) {
  auto run = store_.Get(run_id);
  if (!run) return Html(404, ErrorPage(r.viewer, 404, run.error().message()));
  std::shared_ptr<RunView> view;
  if (!run->log_path.empty()) {
    auto got = views_.Get(*run, options_.log_of);
    if (!got) {
      return Html(500,
                  ErrorPage(r.viewer, 500, "reading the session log: " + got.error().message()));
    }
    view = std::move(*got);
  }
  std::optional<Verdict> verdict;
  if (store::IsTerminal(run->status)) verdict = VerdictOf(*run);
  std::unique_lock<std::mutex> lock;
  if (view) lock = std::unique_lock(view->mu);
  Viewer viewer = read_only ? Viewer{} : r.viewer;
  return Html(200, web::RunPage(viewer, *run, view.get(), RunPageBase{base, read_only}, verdict,
                                options_.now()));
}

ApiResponse Site::Timeline(Request& r, const std::string& run_id) {
  auto run = store_.Get(run_id);
  if (!run) return Message(404, run.error().message());
  if (run->log_path.empty()) return Html(200, "");
  auto view = views_.Get(*run, options_.log_of);
  if (!view) return Message(500, view.error().message());
  std::lock_guard lock((*view)->mu);
  uint64_t first = 0;
  std::string items = TimelinePage(**view, Number(r.query["before"]), &first);
  ApiResponse out = Html(200, items);
  out.headers.emplace_back("X-Kiln-Earlier", std::to_string(first));
  return out;
}

ApiResponse Site::RunEvents(Request& r, const std::string& run_id) {
  auto run = store_.Get(run_id);
  if (!run) return Message(404, run.error().message());
  uint64_t after = Number(r.query["after"]);
  if (auto h = r.raw.headers.find("last-event-id"); h != r.raw.headers.end()) {
    after = std::max(after, Number(h->second));
  }
  ApiResponse out;
  out.content_type = "text/event-stream";
  out.body = "retry: 2000\n\n";
  Hub* hub = hub_.get();
  out.open_stream = [hub, run_id, after](std::shared_ptr<forge::Stream> s) {
    hub->WatchRun(std::move(s), run_id, after);
  };
  return out;
}

ApiResponse Site::RunAction(Request& r, const std::string& run_id, const std::string& action,
                            bool json_reply) {
  const int64_t now = options_.now();
  auto fail = [&](int status, const std::string& why) {
    return json_reply ? Message(status, why) : Html(status, ErrorPage(r.viewer, status, why));
  };
  if (action == "steer") {
    const std::string message = r.form["message"];
    if (message.find_first_not_of(" \t\r\n") == std::string::npos) {
      return fail(422, "message: empty; say something for the agent to read");
    }
    if (message.size() > kMaxSteerBytes) {
      return fail(422, "message: longer than " + std::to_string(kMaxSteerBytes) + " bytes");
    }
    Status st = store_.AddSteering(run_id, "web:" + r.viewer.user, message, now);
    if (!st.ok()) {
      return fail(st.error().code() == Error::Code::kNotFound ? 404 : 409, st.error().message());
    }
  } else {
    auto run = store_.RequestCancel(run_id, now);
    if (!run) {
      return fail(run.error().code() == Error::Code::kNotFound ? 404 : 409, run.error().message());
    }
  }
  if (json_reply) return Json(202, {{"run", run_id}, {"accepted", action}});
  return Redirect("/runs/" + run_id);
}

}  // namespace kiln::web
