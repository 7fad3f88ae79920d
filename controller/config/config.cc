#include "controller/config/config.h"

#include <algorithm>
#include <climits>
#include <iterator>
#include <regex>

#include "base/cron.h"
#include "base/fd.h"
#include "controller/config/names.h"
#include "controller/config/yaml_fields.h"
#include "controller/store/postgres.h"

namespace kiln::config {
namespace {

using yaml::Fields;

// Assigns *out when the field is present.
template <typename T, typename U>
Status Set(Result<std::optional<U>> r, T* out) {
  if (!r) return std::move(r).error();
  if (*r) *out = static_cast<T>(**r);
  return Ok();
}

Status PositiveInt(Fields& f, const std::string& key, int* out) {
  KILN_ASSIGN_OR_RETURN(auto v, f.Uint(key));
  if (!v) return Ok();
  if (*v == 0 || *v > INT_MAX) return f.Fail(key, "must be a positive integer");
  *out = static_cast<int>(*v);
  return Ok();
}

// A limit that "max" or "none" turns off.
Status OptionalLimit(Fields& f, const std::string& key, bool size, std::optional<uint64_t>* out) {
  if (!f.Has(key)) return Ok();
  Fields probe = f;
  KILN_ASSIGN_OR_RETURN(auto text, probe.String(key));
  if (text && (*text == "max" || *text == "none")) {
    (void)f.String(key);
    out->reset();
    return Ok();
  }
  KILN_ASSIGN_OR_RETURN(auto v, size ? f.Size(key) : f.Uint(key));
  if (v) *out = *v;
  return Ok();
}

Status ReadSandbox(Fields& f, Config& c) {
  auto& s = c.sandbox;
  KILN_TRY(Set(f.String("image"), &s.image));
  KILN_TRY(Set(f.Uint("uid"), &s.uid));
  KILN_TRY(Set(f.Uint("gid"), &s.gid));
  if (s.uid > 65535 || s.gid > 65535) {
    return f.Fail(s.uid > 65535 ? "uid" : "gid",
                  "must be at most 65535 (the sandbox maps 0-65535)");
  }
  KILN_TRY(OptionalLimit(f, "memory", true, &s.memory_bytes));
  KILN_TRY(OptionalLimit(f, "pids", false, &s.pids));
  KILN_ASSIGN_OR_RETURN(auto cpus, f.Number("cpus"));
  if (cpus) {
    if (*cpus <= 0) return f.Fail("cpus", "must be a positive number of cores");
    s.cpus = *cpus;
  }
  KILN_TRY(Set(f.Duration("timeout"), &s.timeout_ms));
  KILN_TRY(Set(f.Duration("grace"), &s.grace_ms));
  KILN_TRY(Set(f.Size("rootfs_size"), &s.rootfs_bytes));
  KILN_TRY(Set(f.Size("secrets_size"), &s.secrets_bytes));
  KILN_TRY(Set(f.String("cgroup_parent"), &s.cgroup_parent));
  if (s.cgroup_parent.empty() || s.cgroup_parent.front() == '/' ||
      s.cgroup_parent.find("..") != std::string::npos) {
    return f.Fail("cgroup_parent", "must be a relative cgroup path without '..'");
  }
  return f.Finish();
}

Status ReadProxy(Fields& f, Config& c) {
  KILN_TRY(Set(f.Strings("allow"), &c.proxy.allow));
  KILN_TRY(Set(f.Bool("allow_private_addresses"), &c.proxy.allow_private_addresses));
  KILN_TRY(Set(f.Duration("connect_timeout"), &c.proxy.connect_timeout_ms));
  KILN_TRY(Set(f.Duration("idle_timeout"), &c.proxy.idle_timeout_ms));
  return f.Finish();
}

Status ReadModels(Fields& f, Config& c) {
  for (const std::string& name : f.Keys()) {
    if (!names::IsGateway(name)) {
      return f.Fail(name, "is not a gateway name (lower-case letters, digits and '-')");
    }
    KILN_ASSIGN_OR_RETURN(auto m, f.Map(name));
    if (!m) return f.Fail(name, "must be a mapping with upstream and api_key_env");
    ModelGateway g = c.models.count(name) ? c.models[name] : ModelGateway{name, "", "", ""};
    KILN_TRY(Set(m->String("provider"), &g.provider));
    KILN_TRY(Set(m->String("upstream"), &g.upstream));
    KILN_TRY(Set(m->String("api_key_env"), &g.api_key_env));
    KILN_TRY(Set(m->String("ca_file"), &g.ca_file));
    KILN_TRY(m->Finish());
    if (g.provider != "anthropic" && g.provider != "openai") {
      return m->Fail("provider", "must be anthropic or openai, not " + Quote(g.provider));
    }
    if (g.upstream.rfind("http://", 0) != 0 && g.upstream.rfind("https://", 0) != 0) {
      return m->Fail("upstream", "must be an http:// or https:// URL, not " + Quote(g.upstream));
    }
    c.models[name] = g;
  }
  return Ok();
}

void FillDerived(Config& c) {
  if (c.store.empty()) c.store = c.state_dir + "/kiln.db";
  if (c.cache_dir.empty()) c.cache_dir = c.state_dir + "/cache";
  if (c.log_dir.empty()) c.log_dir = c.state_dir + "/logs";
  if (c.key_dir.empty()) c.key_dir = c.state_dir + "/keys";
  if (c.concurrency.host_max_runs == 0) c.concurrency.host_max_runs = c.concurrency.max_runs;
}

// "owner/name": one '/', neither side empty.
bool IsRepoName(const std::string& s) {
  size_t slash = s.find('/');
  return slash != std::string::npos && slash > 0 && slash + 1 < s.size() &&
         s.find('/', slash + 1) == std::string::npos;
}

Status ReadGitHubRepo(Fields& r, github::RepoSettings& out) {
  KILN_TRY(Set(r.Strings("trusted_users"), &out.trusted_users));
  KILN_TRY(Set(r.Strings("trusted_teams"), &out.trusted_teams));
  for (const auto& team : out.trusted_teams) {
    if (!IsRepoName(team)) {
      return r.Fail("trusted_teams", "entry " + Quote(team) + " is not of the form org/team-slug");
    }
  }
  if (auto m = r.Map("labels"); !m) {
    return std::move(m).error();
  } else if (*m) {
    Fields& l = **m;
    for (const auto& key : l.Keys()) {
      const auto& known = names::kPipelineLabels;
      if (std::find(std::begin(known), std::end(known), key) == std::end(known)) {
        return l.Fail(key,
                      "is not one of kiln's labels (triaged, needs-info, duplicate, bug, "
                      "enhancement, documentation, blocked, ready-to-spec, plan-approved)");
      }
      KILN_ASSIGN_OR_RETURN(auto name, l.String(key));
      if (!name || name->empty()) return l.Fail(key, "must name a label");
      out.labels[key] = *name;
    }
    KILN_TRY(l.Finish());
  }
  KILN_TRY(Set(r.String("skills_dir"), &out.skills_dir));
  if (out.skills_dir.empty() || out.skills_dir[0] == '/' ||
      ("/" + out.skills_dir + "/").find("/../") != std::string::npos) {
    return r.Fail("skills_dir", "must be a relative path inside the repository");
  }
  KILN_TRY(Set(r.Bool("draft"), &out.draft));
  return r.Finish();
}

Status ReadGitHub(Fields& g, github::Settings& out) {
  KILN_TRY(Set(g.String("api_url"), &out.api_url));
  if (out.api_url.rfind("https://", 0) != 0) {
    return g.Fail("api_url", "must be an https:// URL, not " + Quote(out.api_url));
  }
  KILN_TRY(Set(g.String("ca_file"), &out.ca_file));
  KILN_TRY(Set(g.String("app_id"), &out.app_id));
  KILN_TRY(Set(g.String("private_key_file"), &out.private_key_file));
  KILN_TRY(Set(g.String("token_file"), &out.token_file));
  KILN_TRY(Set(g.String("webhook_secret_file"), &out.webhook_secret_file));
  const bool app = !out.app_id.empty() || !out.private_key_file.empty();
  if (app && !out.token_file.empty()) {
    return g.Fail("token_file", "and app_id/private_key_file exclude each other: pick one");
  }
  if (app && (out.app_id.empty() || out.private_key_file.empty())) {
    return g.Fail(out.app_id.empty() ? "app_id" : "private_key_file",
                  "is needed too: a GitHub App takes app_id and private_key_file");
  }
  if (!app && out.token_file.empty()) {
    return g.Fail("", "needs app_id and private_key_file (a GitHub App) or token_file");
  }
  if (out.webhook_secret_file.empty()) return g.Fail("webhook_secret_file", "is required");
  for (const char* key : {"ca_file", "private_key_file", "token_file", "webhook_secret_file"}) {
    Fields probe = g;
    KILN_ASSIGN_OR_RETURN(auto v, probe.String(key));
    if (v && !v->empty() && v->front() != '/') return g.Fail(key, "must be an absolute path");
  }
  if (auto m = g.Map("repos"); !m) {
    return std::move(m).error();
  } else if (*m) {
    Fields& repos = **m;
    for (const auto& name : repos.Keys()) {
      if (!IsRepoName(name)) return repos.Fail(name, "is not of the form owner/name");
      KILN_ASSIGN_OR_RETURN(auto r, repos.Map(name));
      github::RepoSettings settings;
      if (r) KILN_TRY(ReadGitHubRepo(*r, settings));
      out.repos[name] = std::move(settings);
    }
    KILN_TRY(repos.Finish());
  }
  return g.Finish();
}

// replay.normalise: each rule's pattern must compile, as the replay will
// compile it.
Status ReadReplay(Fields& f, Config& c) {
  auto rules = f.List("normalise");
  if (!rules) return std::move(rules).error();
  for (Fields& r : rules->value_or(std::vector<Fields>())) {
    Config::NormaliseRule rule;
    KILN_TRY(Set(r.String("pattern"), &rule.pattern));
    KILN_TRY(Set(r.String("replace"), &rule.replace));
    KILN_TRY(r.Finish());
    if (rule.pattern.empty()) return r.Fail("pattern", "must be given and not empty");
    try {
      std::regex compiled(rule.pattern);
    } catch (const std::regex_error& e) {
      return r.Fail("pattern",
                    "is not a valid regular expression (" + Quote(rule.pattern) + "): " + e.what());
    }
    rule.where = r.Where();
    c.replay.normalise.push_back(std::move(rule));
  }
  return f.Finish();
}

// schedules[].improve: the improver for a role of a forge repository.
Status ReadImprove(Fields& f, Config::Schedule& sc) {
  KILN_TRY(Set(f.String("role"), &sc.improve.role));
  KILN_TRY(Set(f.String("repo"), &sc.improve.repo));
  KILN_TRY(Set(f.Duration("lookback"), &sc.improve.lookback_ms));
  KILN_TRY(PositiveInt(f, "tasks", &sc.improve.tasks));
  KILN_TRY(f.Finish());
  if (!names::IsRole(sc.improve.role) || sc.improve.role == "improve" ||
      sc.improve.role == "verify") {
    return f.Fail("role",
                  "must be triage, spec, implement or review (a role with an agent "
                  "whose guidance can change), not " +
                      Quote(sc.improve.role));
  }
  if (sc.improve.repo.empty())
    return f.Fail("repo", "must name the forge repository, e.g. acme/app");
  if (sc.improve.lookback_ms == 0) return f.Fail("lookback", "must be positive");
  if (sc.improve.tasks > 20) return f.Fail("tasks", "must be at most 20");
  return Ok();
}

// schedules: each entry's cron expression and time zone are parsed here, as
// the scheduler will parse them, so that a mistake stops the daemon's start
// with the line it is on.
Status ReadSchedules(Fields& f, Config& c) {
  auto entries = f.List("schedules");
  if (!entries) return std::move(entries).error();
  for (Fields& e : entries->value_or(std::vector<Fields>())) {
    Config::Schedule sc;
    KILN_TRY(Set(e.String("name"), &sc.name));
    if (!names::IsRole(sc.name)) {
      return e.Fail("name",
                    "must be given, lower case letters, digits and '-', not " + Quote(sc.name));
    }
    for (const Config::Schedule& other : c.schedules) {
      if (other.name == sc.name) {
        return e.Fail("name",
                      Quote(sc.name) + " is already the name of the schedule at " + other.where);
      }
    }
    KILN_TRY(Set(e.String("cron"), &sc.cron));
    KILN_TRY(Set(e.String("time_zone"), &sc.time_zone));
    KILN_TRY(Set(e.Duration("jitter"), &sc.jitter_ms));
    if (auto parsed = cron::Schedule::Parse(sc.cron); !parsed) {
      return e.Fail("cron", parsed.error().message());
    }
    if (auto parsed = cron::Schedule::Parse(sc.cron, sc.time_zone); !parsed) {
      return e.Fail("time_zone", parsed.error().message());
    }
    auto run = e.Map("run");
    if (!run) return std::move(run).error();
    auto improve = e.Map("improve");
    if (!improve) return std::move(improve).error();
    if (*run && *improve)
      return e.Fail("improve", "and 'run' are both given; a schedule starts one");
    if (*improve) {
      KILN_TRY(ReadImprove(**improve, sc));
      KILN_TRY(e.Finish());
      sc.where = e.Where();
      c.schedules.push_back(std::move(sc));
      continue;
    }
    if (!*run) {
      return e.Fail("run",
                    "is missing: what the schedule starts (run: role, repo, task; or "
                    "improve: role, repo)");
    }
    Fields& r = **run;
    KILN_TRY(Set(r.String("role"), &sc.run.role));
    KILN_TRY(Set(r.String("repo"), &sc.run.repo));
    KILN_TRY(Set(r.String("commit"), &sc.run.commit));
    KILN_TRY(Set(r.String("task"), &sc.run.task));
    KILN_ASSIGN_OR_RETURN(auto priority, r.Uint("priority"));
    if (priority) {
      if (*priority > 1000) return r.Fail("priority", "must be at most 1000");
      sc.run.priority = static_cast<int>(*priority);
    }
    KILN_ASSIGN_OR_RETURN(auto budgets, r.Map("budgets"));
    if (budgets) {
      for (const std::string& key : budgets->Keys()) {
        KILN_ASSIGN_OR_RETURN(auto v, budgets->Uint(key));
        sc.run.budgets[key] = *v;
      }
      KILN_TRY(budgets->Finish());
    }
    KILN_TRY(r.Finish());
    if (!names::IsRole(sc.run.role))
      return r.Fail("role", "must name a role, not " + Quote(sc.run.role));
    for (auto [key, value] : {std::pair{"repo", &sc.run.repo}, std::pair{"commit", &sc.run.commit},
                              std::pair{"task", &sc.run.task}}) {
      if (value->empty()) return r.Fail(key, "must be given and not empty");
    }
    KILN_TRY(e.Finish());
    sc.where = e.Where();
    c.schedules.push_back(std::move(sc));
  }
  return Ok();
}

Status ReadTop(Fields& f, Config& c) {
  KILN_TRY(Set(f.String("state_dir"), &c.state_dir));
  KILN_TRY(Set(f.String("store"), &c.store));
  KILN_TRY(Set(f.String("cache_dir"), &c.cache_dir));
  KILN_TRY(Set(f.String("log_dir"), &c.log_dir));
  KILN_TRY(Set(f.String("key_dir"), &c.key_dir));
  KILN_TRY(Set(f.String("skills_dir"), &c.skills_dir));
  KILN_TRY(Set(f.String("images_dir"), &c.images_dir));
  KILN_TRY(Set(f.String("secrets_file"), &c.secrets_file));
  KILN_TRY(Set(f.String("host_name"), &c.host_name));
  if (!c.host_name.empty() && !names::IsHostName(c.host_name)) {
    return f.Fail("host_name",
                  "must be up to 64 letters, digits, '-', '.' or '_', not " + Quote(c.host_name));
  }
  for (const char* key : {"state_dir", "store", "cache_dir", "log_dir", "key_dir"}) {
    Fields probe = f;
    KILN_ASSIGN_OR_RETURN(auto v, probe.String(key));
    // The store may also be a PostgreSQL database shared by a fleet.
    if (v && std::string_view(key) == "store" && store::pg::IsUrl(*v)) continue;
    if (v && (v->empty() || v->front() != '/')) {
      return f.Fail(key, std::string_view(key) == "store"
                             ? "must be an absolute path or a postgres:// URL"
                             : "must be an absolute path");
    }
  }
  if (auto m = f.Map("concurrency"); !m) {
    return std::move(m).error();
  } else if (*m) {
    KILN_TRY(PositiveInt(**m, "max_runs", &c.concurrency.max_runs));
    KILN_TRY(PositiveInt(**m, "max_runs_per_repo", &c.concurrency.max_runs_per_repo));
    KILN_TRY(PositiveInt(**m, "host_max_runs", &c.concurrency.host_max_runs));
    KILN_TRY(Set((*m)->Duration("lease"), &c.concurrency.lease_ms));
    if (c.concurrency.lease_ms != 0 && c.concurrency.lease_ms < 3'000) {
      return (*m)->Fail("lease", "must be 0 (no leases) or at least 3s, not " +
                                     std::to_string(c.concurrency.lease_ms) + "ms");
    }
    KILN_TRY((*m)->Finish());
  }
  if (auto m = f.Map("retry"); !m) {
    return std::move(m).error();
  } else if (*m) {
    KILN_TRY(PositiveInt(**m, "max_attempts", &c.retry.max_attempts));
    KILN_TRY(Set((*m)->Duration("initial_backoff"), &c.retry.initial_backoff_ms));
    KILN_TRY(Set((*m)->Duration("max_backoff"), &c.retry.max_backoff_ms));
    KILN_TRY((*m)->Finish());
  }
  KILN_TRY(Set(f.String("recovery"), &c.recovery));
  if (c.recovery != "requeue" && c.recovery != "fail") {
    return f.Fail("recovery", "must be requeue or fail, not " + Quote(c.recovery));
  }
  if (auto m = f.Map("sandbox"); !m) {
    return std::move(m).error();
  } else if (*m) {
    KILN_TRY(ReadSandbox(**m, c));
  }
  if (auto m = f.Map("proxy"); !m) {
    return std::move(m).error();
  } else if (*m) {
    KILN_TRY(ReadProxy(**m, c));
  }
  if (auto m = f.Map("models"); !m) {
    return std::move(m).error();
  } else if (*m) {
    KILN_TRY(ReadModels(**m, c));
  }
  if (auto m = f.Map("model"); !m) {
    return std::move(m).error();
  } else if (*m) {
    KILN_TRY(Set((*m)->String("provider"), &c.model.provider));
    KILN_TRY(Set((*m)->String("name"), &c.model.name));
    KILN_TRY((*m)->Finish());
    if (c.models.count(c.model.provider) == 0) {
      return (*m)->Fail("provider", "names no gateway under models: " + Quote(c.model.provider));
    }
  }
  if (auto m = f.Map("result"); !m) {
    return std::move(m).error();
  } else if (*m) {
    KILN_TRY(Set((*m)->Size("max_file_bytes"), &c.result.max_file_bytes));
    KILN_TRY(Set((*m)->Size("max_patch_bytes"), &c.result.max_patch_bytes));
    KILN_TRY((*m)->Finish());
  }
  if (auto m = f.Map("replay"); !m) {
    return std::move(m).error();
  } else if (*m) {
    KILN_TRY(ReadReplay(**m, c));
  }
  if (auto m = f.Map("pipeline"); !m) {
    return std::move(m).error();
  } else if (*m) {
    Fields& p = **m;
    KILN_TRY(Set(p.Bool("enabled"), &c.pipeline.enabled));
    KILN_TRY(Set(p.String("forge"), &c.pipeline.forge));
    if (c.pipeline.forge != "local" && c.pipeline.forge != "github") {
      return p.Fail("forge", "must be local or github, not " + Quote(c.pipeline.forge));
    }
    KILN_TRY(Set(p.String("bot"), &c.pipeline.bot));
    if (c.pipeline.bot.empty()) return p.Fail("bot", "must not be empty");
    KILN_TRY(Set(p.Strings("trusted_users"), &c.pipeline.trusted_users));
    KILN_TRY(Set(p.String("api_listen"), &c.pipeline.api_listen));
    KILN_TRY(Set(p.String("web_url"), &c.pipeline.web_url));
    std::string& url = c.pipeline.web_url;
    if (!url.empty() && !url.starts_with("http://") && !url.starts_with("https://")) {
      return p.Fail("web_url", "must be an http:// or https:// URL, not " + Quote(url));
    }
    while (url.ends_with("/")) url.pop_back();
    KILN_TRY(p.Finish());
  }
  if (auto m = f.Map("github"); !m) {
    return std::move(m).error();
  } else if (*m) {
    KILN_TRY(ReadGitHub(**m, c.github));
  }
  if (c.pipeline.forge == "github") {
    if (!f.Has("github"))
      return f.Fail("pipeline", "forge is github but there is no github: section");
    if (c.github.repos.empty()) return f.Fail("github", "names no repositories (github.repos)");
  }
  KILN_TRY(ReadSchedules(f, c));
  KILN_TRY(Set(f.String("metrics_listen"), &c.metrics_listen));
  KILN_TRY(Set(f.Duration("poll_interval"), &c.poll_interval_ms));
  if (c.poll_interval_ms == 0) return f.Fail("poll_interval", "must be positive");
  KILN_TRY(Set(f.String("runtime_binary"), &c.runtime_binary));
  KILN_TRY(Set(f.String("forward_binary"), &c.forward_binary));
  KILN_TRY(Set(f.String("kiln_binary"), &c.kiln_binary));
  return f.Finish();
}

}  // namespace

Config Defaults() {
  Config c;
  c.models["anthropic"] = {"anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY", ""};
  c.models["openai"] = {"openai", "https://api.openai.com/v1", "OPENAI_API_KEY", ""};
  FillDerived(c);
  return c;
}

Result<Config> Parse(std::string_view text, const std::string& source) {
  Config c = Defaults();
  c.store.clear();
  c.cache_dir.clear();
  c.log_dir.clear();
  c.key_dir.clear();
  c.concurrency.host_max_runs = 0;
  c.source = source;
  KILN_ASSIGN_OR_RETURN(YAML::Node root, yaml::Load(text, source));
  if (root.IsDefined() && !root.IsNull()) {
    if (!root.IsMap()) return Error::Invalid(source + ": the configuration must be a mapping");
    Fields f(root, source, "");
    KILN_TRY(ReadTop(f, c));
  }
  FillDerived(c);
  return c;
}

Result<Config> Load(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) return text.error().Wrap("reading the configuration");
  return Parse(*text, path);
}

std::string WebUrl(const Config& config) {
  if (!config.pipeline.web_url.empty()) return config.pipeline.web_url;
  return "http://" + config.pipeline.api_listen;
}

}  // namespace kiln::config
