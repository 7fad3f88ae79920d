#include "controller/app/web_cli.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/fd.h"
#include "base/strings.h"
#include "base/terminal.h"
#include "controller/app/cli_common.h"
#include "controller/audit/audit.h"
#include "controller/fleet/logs.h"
#include "controller/git/git.h"
#include "controller/git/write.h"
#include "controller/run/runner.h"
#include "controller/sessionlog/signer.h"
#include "controller/store/store.h"
#include "controller/web/auth.h"
#include "controller/web/html.h"

namespace kiln::controller::cli {
namespace {

struct ShareOptions {
  std::string config, id, expires = "7d";
  bool json = false;
};

std::string Who() {
  const char* user = std::getenv("SUDO_USER");
  return std::string("cli:") + (user ? user : std::to_string(::getuid()));
}

// The configuration and the web view's accounts in its store.
struct Web {
  config::Config cfg;
  std::unique_ptr<web::Auth> auth;
};

// Opens both for a share verb; on failure prints why and sets *exit.
std::optional<Web> OpenWeb(const std::string& config_path, int* exit) {
  auto cfg = LoadConfig(config_path);
  if (!cfg) {
    *exit = Fail(cfg.error());
    return std::nullopt;
  }
  auto auth = web::Auth::Open(cfg->store);
  if (!auth) {
    *exit = Fail(auth.error(), kInfrastructure);
    return std::nullopt;
  }
  return Web{std::move(*cfg), std::move(*auth)};
}

int DoShare(const ShareOptions& o) {
  int exit = 0;
  auto web = OpenWeb(o.config, &exit);
  if (!web) return exit;
  int64_t expires = 0;
  if (o.expires != "never") {
    auto ms = ParseDurationMs(o.expires, "--expires");
    if (!ms) return Fail(ms.error());
    if (*ms == 0) return Fail(Error::Invalid("--expires must be positive (or never)"));
    expires = NowMs() + static_cast<int64_t>(*ms);
  }
  auto st = store::Open(web->cfg.store);
  if (!st) return Fail(st.error(), kInfrastructure);
  auto run = (*st)->Get(o.id);
  if (!run) return Fail(run.error());
  auto made = web->auth->CreateShare(run->id, Who(), expires, NowMs());
  if (!made) return Fail(made.error(), kInfrastructure);
  const std::string url = config::WebUrl(web->cfg) + "/s/" + made->token;
  if (o.json) {
    std::printf("%s\n",
                nlohmann::json{
                    {"id", made->share.id}, {"run", run->id}, {"url", url}, {"expires_ms", expires}}
                    .dump(2)
                    .c_str());
    return 0;
  }
  std::printf("%s\n", url.c_str());
  std::fprintf(stderr, "share %s of run %s, read-only, %s; `kiln runs unshare %s` revokes it\n",
               made->share.id.c_str(), run->id.c_str(),
               expires ? ("until " + web::When(expires) + " UTC").c_str() : "never expires",
               made->share.id.c_str());
  return 0;
}

int DoShares(const ShareOptions& o) {
  int exit = 0;
  auto web = OpenWeb(o.config, &exit);
  if (!web) return exit;
  auto shares = web->auth->Shares(o.id);
  if (!shares) return Fail(shares.error(), kInfrastructure);
  if (o.json) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& s : *shares) {
      a.push_back({{"id", s.id},
                   {"run", s.run_id},
                   {"created_by", s.created_by},
                   {"created_ms", s.created_ms},
                   {"expires_ms", s.expires_ms},
                   {"revoked_ms", s.revoked_ms}});
    }
    std::printf("%s\n", ForTerminalJson(a.dump(2)).c_str());
    return 0;
  }
  const int64_t now = NowMs();
  std::printf("%-16s %-28s %-20s %s\n", "SHARE", "RUN", "BY", "STATE");
  for (const auto& s : *shares) {
    std::string state = s.revoked_ms          ? "revoked " + web::When(s.revoked_ms)
                        : s.expires_ms == 0   ? "live, never expires"
                        : s.expires_ms <= now ? "expired " + web::When(s.expires_ms)
                                              : "live until " + web::When(s.expires_ms);
    std::printf("%-16s %-28s %-20s %s\n", s.id.c_str(), ForTerminalLine(s.run_id).c_str(),
                ForTerminalLine(s.created_by).c_str(), state.c_str());
  }
  return 0;
}

int DoUnshare(const ShareOptions& o) {
  int exit = 0;
  auto web = OpenWeb(o.config, &exit);
  if (!web) return exit;
  if (Status st = web->auth->Revoke(o.id, NowMs()); !st.ok()) return Fail(st.error());
  std::printf("%s revoked\n", o.id.c_str());
  return 0;
}

struct HandoffOptions {
  std::string config, id, dir;
};

// A branch at the run's commit with its change committed, in a repository
// of the developer's own, and the transcript beside the work.
int DoHandoff(const HandoffOptions& o) {
  auto cfg = LoadConfig(o.config);
  if (!cfg) return Fail(cfg.error());
  auto st = store::Open(cfg->store);
  if (!st) return Fail(st.error(), kInfrastructure);
  auto run = (*st)->Get(o.id);
  if (!run) return Fail(run.error());
  if (run->commit_sha.empty()) {
    return Fail(
        Error::Invalid("run " + run->id + " has not started: there is no work to hand back"));
  }
  const nlohmann::json diff =
      run->result.is_object() ? run->result.value("diff", nlohmann::json()) : nlohmann::json();
  const std::string dir = o.dir.empty() ? "./" + run->id : o.dir;
  git::Cache cache(cfg->cache_dir);
  auto mirror = cache.Resolve(run->request.repo, run->commit_sha);
  if (!mirror) return Fail(mirror.error().Wrap("the run's repository"), kInfrastructure);
  git::HandoffSpec spec;
  spec.mirror = mirror->mirror_path;
  spec.base = run->commit_sha;
  spec.change_ref = "refs/kiln/runs/" + run->id;  // the pipeline's commit, when it made one
  spec.origin = run->request.repo;
  spec.branch = "kiln/" + run->id;
  spec.message = "kiln " + run->request.role + " run " + run->id + "\n\n" +
                 "The agent's change, handed back by `kiln runs handoff`.\n\nkiln-run: " + run->id +
                 "\n";
  if (diff.is_object()) {
    spec.patch = diff.value("patch", "");
    // What the patch cannot carry is named, not lost quietly (unless the
    // mirror kept the run's own commit, which holds everything).
    std::vector<std::string> missing;
    for (const auto& f : diff.value("files", nlohmann::json::array())) {
      if (f.value("binary", false) || f.value("too_large", false)) {
        missing.push_back(f.value("path", "?"));
      }
    }
    if (diff.value("truncated", false)) missing.push_back("(the patch was cut at its size limit)");
    spec.unpatchable = std::move(missing);
  }
  auto made = git::Handoff(dir, spec);
  if (!made) {
    return Fail(made.error(),
                made.error().code() == Error::Code::kInvalidArgument ? kUsage : kInfrastructure);
  }
  // The transcript, beside the work and out of git's way.
  std::string transcript = dir + "/kiln-transcript.md";
  if (!run->log_path.empty()) {
    // On a fleet, the log may be another host's: fetched here and verified
    // with that host's key first.
    auto here = LogHere(*cfg, **st);
    auto log = here ? here(*run) : Result<std::string>(run->log_path);
    if (!log) return Fail(log.error().Wrap("the transcript"), kInfrastructure);
    auto keys = sessionlog::TrustedKeys(cfg->key_dir);
    std::vector<sessionlog::PublicKey> trusted =
        keys ? *keys : std::vector<sessionlog::PublicKey>{};
    for (auto& key : fleet::KeysOfRunHost(**st, *run, runner::OwnerId(cfg->host_name))) {
      trusted.push_back(std::move(key));
    }
    auto report = audit::Build(*log, trusted);
    if (!report) return Fail(report.error().Wrap("the transcript"), kInfrastructure);
    if (Status w = WriteNewFile(transcript, audit::Markdown(*report), 0644, Sync::kNoFsync);
        !w.ok()) {
      return Fail(w.error(), kInfrastructure);
    }
    const std::string exclude = dir + "/.git/info/exclude";
    auto excluded = ReadFile(exclude);
    if (Status w = WriteNewFile(exclude, (excluded ? *excluded : "") + "/kiln-transcript.md\n",
                                0644, Sync::kNoFsync);
        !w.ok()) {
      return Fail(w.error(), kInfrastructure);
    }
  }
  std::printf("%s: branch %s at %s\n", dir.c_str(), spec.branch.c_str(), made->c_str());
  std::fprintf(stderr,
               "the agent's change is committed on %s (origin %s); the transcript is %s.\n"
               "Carry on: cd %s && git log -p -1\n",
               spec.branch.c_str(), ForTerminalLine(spec.origin).c_str(), transcript.c_str(),
               dir.c_str());
  return 0;
}

}  // namespace

void RegisterShares(CLI::App& runs, int* exit_code) {
  auto o = std::make_shared<ShareOptions>();
  auto* share = runs.add_subcommand(
      "share", "Print a read-only link to a run's page in the web view (steer and cancel refused)");
  share->add_option("id", o->id, "run id")->required();
  share->add_option("--expires", o->expires, "how long the link works: 7d (default), 12h, never");
  auto* shares = runs.add_subcommand("shares", "List share links (of one run, or of all)");
  shares->add_option("id", o->id, "run id");
  auto* unshare = runs.add_subcommand("unshare", "Revoke a share link");
  unshare->add_option("share", o->id, "share id (sh...), as `kiln runs shares` lists it")
      ->required();
  for (CLI::App* cmd : {share, shares, unshare}) {
    cmd->add_option("--config", o->config, "configuration file (default /etc/kiln/kiln.yaml)");
  }
  for (CLI::App* cmd : {share, shares}) cmd->add_flag("--json", o->json, "JSON output");
  auto h = std::make_shared<HandoffOptions>();
  auto* handoff = runs.add_subcommand(
      "handoff",
      "Hand a run's work back: a repository at DIR (default ./RUN) on branch kiln/RUN at the run's "
      "commit with its change committed, and the transcript beside it (kiln-transcript.md)");
  handoff->add_option("id", h->id, "run id")->required();
  handoff->add_option("dir", h->dir, "where (absent or empty; default ./RUN)");
  handoff->add_option("--config", h->config, "configuration file (default /etc/kiln/kiln.yaml)");
  handoff->callback([h, exit_code] { *exit_code = DoHandoff(*h); });
  share->callback([o, exit_code] { *exit_code = DoShare(*o); });
  shares->callback([o, exit_code] { *exit_code = DoShares(*o); });
  unshare->callback([o, exit_code] { *exit_code = DoUnshare(*o); });
}

}  // namespace kiln::controller::cli
