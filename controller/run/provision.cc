#include "controller/run/provision.h"

#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>

#include "base/digest.h"
#include "base/fd.h"
#include "base/mountinfo.h"
#include "controller/images/store.h"
#include "controller/run/event_pump.h"
#include "runtime/spec.h"
#include "sandbox/hostimage.h"
#include "sandbox/state.h"
#include "sandbox/userns.h"

namespace kiln::provision {

using nlohmann::json;
namespace fs = std::filesystem;

// The host image is the host's /usr plus a filtered /etc: its identity is
// the skeleton's fingerprint and the installed packages. Hashing dpkg's
// status file costs milliseconds, so it is cached by size and mtime.
namespace {

// The SHA-256 (hex) of dpkg's package list, or "none". Hashing the list
// (0.7 MiB here) is the most of an image digest, and each `kiln run` is a
// process of its own: the hash is kept in memory and in
// <state>/images/dpkg-status.sha256, keyed by the list's FileVersion, and
// computed again only when the list changes.
std::string PackagesDigest(const std::string& state_dir) {
  const char* status = "/var/lib/dpkg/status";
  const std::string key = FileVersion(status);
  if (key.empty()) return "none";
  static std::mutex mu;
  static std::string cached_key, cached_digest;
  std::lock_guard<std::mutex> lock(mu);
  if (key == cached_key) return cached_digest;
  const std::string file = state_dir + "/images/dpkg-status.sha256";
  auto saved = ReadFile(file);
  if (saved && saved->size() == key.size() + 1 + 64 + 1 && saved->starts_with(key + " ")) {
    cached_digest = saved->substr(key.size() + 1, 64);
  } else {
    auto text = ReadFile(status);
    if (!text) return "none";
    cached_digest = Hex(Sha256Of(*text));
    // A cache: when it cannot be written, the next process hashes again.
    (void)WriteFileAtomic(file, key + " " + cached_digest + "\n", 0644, Sync::kNoFsync);
  }
  cached_key = key;
  return cached_digest;
}

}  // namespace

Result<std::string> HostImageDigest(const std::string& state_dir) {
  KILN_ASSIGN_OR_RETURN(std::string skeleton, sandbox::hostimage::Ensure(state_dir));
  std::string id = "kiln-host-image\n" + fs::path(skeleton).filename().string() + "\n" +
                   PackagesDigest(state_dir);
  return "sha256:" + Hex(Sha256Of(id));
}

uid_t HostUid(const config::Config& c) { return sandbox::userns::kHostIdBase + c.sandbox.uid; }
gid_t HostGid(const config::Config& c) { return sandbox::userns::kHostIdBase + c.sandbox.gid; }

std::string RunPlan::SpecText() const {
  if (!recorded_spec.empty()) return recorded_spec;
  return runtime_spec ? spec::ToJson(*runtime_spec).dump(2) : std::string();
}

json RunPlan::RunStart(const store::Run& run, const git::Resolved& repo) const {
  json secret_names = json::array();
  for (const auto& [name, value] : secrets) secret_names.push_back(name);
  json rules = json::array();
  for (const auto& r : allow) rules.push_back(proxy::RuleText(r));
  json p = {
      {"run_id", run.id},
      {"attempt", run.attempt},
      {"role", run.request.role},
      {"task", run.request.task},
      {"requested_by", run.request.requested_by},
      {"image", {{"name", image}, {"digest", image_digest}}},
      {"repository", {{"url", repo.url}, {"commit", repo.commit}, {"rev", run.request.commit}}},
      {"skill", {{"path", skill.path}, {"sha256", skill.sha256}, {"companions", skill.companions}}},
      {"budgets", runtime_spec ? spec::ToJson(runtime_spec->budgets) : json()},
      {"limits", {{"wall_ms", timeout_ms}}},
      {"secrets", secret_names},
      {"network_allow", rules},
  };
  if (runtime_spec) {
    p["model"] = {{"provider", runtime_spec->model.provider},
                  {"name", runtime_spec->model.name},
                  {"gateway", gateway}};
    // As text: the spec holds fractions (prices, thresholds), which the
    // log's canonical JSON holds only as text anyway.
    std::string text = SpecText();
    p["runtime_spec"] = {{"sha256", Sha256Hex(text)}, {"text", std::move(text)}};
  } else {
    p["command"] = command;
  }
  if (!run.request.context.is_null()) p["context"] = run.request.context;
  if (!replay_of.is_null()) p["replay_of"] = replay_of;
  pump::Sanitise(p);
  return p;
}

namespace {

// The agent's model gateway and kiln-runtime's run spec: the host's model,
// the skill's settings over it, the request's budgets over the skill's.
Status PlanAgent(const runner::Services& s, const store::Run& run, RunPlan* plan_out) {
  const config::Config& cfg = *s.config;
  RunPlan& plan = *plan_out;
  const skill::Skill& sk = plan.skill;
  auto invalid = [&](const spec::Fault& fault) {
    return fault.ToError().Wrap("the run spec for role " + Quote(run.request.role));
  };
  spec::RunSpec rs;
  rs.role = run.request.role;
  rs.skill = sk.body;
  rs.task = run.request.task;
  rs.workspace = "/workspace";
  rs.model.provider = cfg.model.provider;
  rs.model.name = cfg.model.name;
  if (auto fault = spec::ReadModel(sk.model, &rs.model)) return invalid(*fault);
  auto gw = cfg.models.find(rs.model.provider);
  if (gw == cfg.models.end()) {
    return Error::Invalid("skill " + Quote(sk.path) + " uses model provider " +
                          Quote(rs.model.provider) + ", which has no gateway under 'models' in " +
                          cfg.source);
  }
  plan.gateway = gw->first;
  rs.model.provider = gw->second.provider;
  rs.model.base_url = std::string("http://") + kProxyListen + "/gateway/" + gw->first;
  if (auto fault = spec::ReadBudgets(sk.budgets, &rs.budgets)) return invalid(*fault);
  if (auto fault = spec::ReadBudgets(run.request.budgets, &rs.budgets)) return invalid(*fault);
  rs.result_schema = sk.result_schema;
  if (sk.tools) rs.tools = *sk.tools;
  if (auto fault = spec::Check(rs)) return invalid(*fault);
  plan.runtime_spec = std::move(rs);
  return Ok();
}

// Keeps the first time seen in first (0: none yet), whichever thread
// reports first.
void NoteFirst(std::atomic<int64_t>& first, std::chrono::steady_clock::time_point at) {
  int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
  int64_t seen = first.load();
  while ((seen == 0 || ns < seen) && !first.compare_exchange_weak(seen, ns)) {
  }
}

}  // namespace

Result<RunPlan> Plan(const runner::Services& s, const store::Run& run) {
  const config::Config& cfg = *s.config;
  RunPlan plan;
  KILN_ASSIGN_OR_RETURN(plan.skill, skill::Load(cfg.skills_dir, run.request.role));
  const skill::Skill& sk = plan.skill;
  {
    auto secrets = s.vault->Select(sk.secrets);
    if (!secrets) return secrets.error().Wrap("skill " + Quote(sk.path));
    plan.secrets = std::move(*secrets);
  }
  if (sk.mode == skill::Mode::kCommand) {
    const nlohmann::json& ctx = run.request.context;
    plan.command = ctx.is_object() && ctx.contains("command") && ctx["command"].is_string()
                       ? ctx["command"].get<std::string>()
                       : sk.command;
    if (plan.command.empty()) {
      return Error::Invalid("skill " + Quote(sk.path) +
                            " runs a command, but neither it nor the request names one");
    }
  } else {
    KILN_TRY(PlanAgent(s, run, &plan));
  }
  for (const auto& text : cfg.proxy.allow) {
    KILN_ASSIGN_OR_RETURN(proxy::Rule r, proxy::ParseRule(text, "config"));
    plan.allow.push_back(std::move(r));
  }
  for (const auto& text : sk.network_allow) {
    auto r = proxy::ParseRule(text, "skill " + sk.name);
    if (!r) return r.error().Wrap(sk.path + ": 'network.allow'");
    plan.allow.push_back(std::move(*r));
  }
  plan.image = ImageFor(cfg, sk.image, run.request);
  if (plan.image != "host") {
    // A missing image stops the request before it is queued.
    KILN_ASSIGN_OR_RETURN(images::Store store, images::Store::Open(cfg.state_dir));
    if (auto found = store.Lookup(plan.image); !found) {
      const json& ctx = run.request.context;
      bool asked = ctx.is_object() && !ctx.value("image", "").empty();
      return found.error().Wrap(asked               ? "the request's image"
                                : !sk.image.empty() ? sk.path + ": 'image'"
                                                    : "the configuration's sandbox.image");
    }
  }
  plan.timeout_ms = sk.timeout_ms.value_or(cfg.sandbox.timeout_ms);
  return plan;
}

namespace {

// run.start's member at the JSON Pointer ("/repository/commit"), which must
// be a string. Errors name it as "repository.commit".
Result<std::string> RecordedText(const json& start, const std::string& pointer) {
  const json::json_pointer at(pointer);
  std::string name = pointer.substr(1);
  std::replace(name.begin(), name.end(), '/', '.');
  if (!start.contains(at)) return Error::Invalid("the recorded run.start has no " + name);
  if (!start.at(at).is_string()) {
    return Error::Invalid("the recorded run.start's " + name + " is no string");
  }
  return start.at(at).get<std::string>();
}

// A re-run's skill: the given core skill with the companions the recorded
// run had, read again from the repository where the run read them.
Status RespecializeRecorded(const runner::Services& s, const json& start, const skill::Skill& core,
                            const Recorded& rec, RunPlan* plan, spec::RunSpec* rs) {
  if (core.role != plan->skill.role) {
    return Error::Invalid("skill " + Quote(core.path) + " is for role " + Quote(core.role) +
                          ", and the recorded run's role is " + Quote(plan->skill.role));
  }
  if (core.mode != skill::Mode::kAgent) {
    return Error::Invalid("skill " + Quote(core.path) + " runs a command, not an agent");
  }
  std::vector<std::pair<std::string, std::string>> companions;
  if (rec.companions) {
    companions = *rec.companions;
  } else if (!plan->skill.companions.empty()) {
    KILN_ASSIGN_OR_RETURN(std::string url, RecordedText(start, "/repository/url"));
    KILN_ASSIGN_OR_RETURN(std::string commit, RecordedText(start, "/repository/commit"));
    KILN_ASSIGN_OR_RETURN(git::Resolved repo, s.cache->Resolve(url, commit));
    const json base = start.value("context", json::object()).value("base_sha", json());
    std::string at = base.is_string() ? base.get<std::string>() : repo.commit;
    for (const std::string& path : plan->skill.companions) {
      KILN_ASSIGN_OR_RETURN(auto text, git::ReadFileAt(repo.mirror_path, at, path));
      if (!text) return Error::NotFound("the recorded companion skill " + Quote(path) + " is gone");
      companions.emplace_back(path, std::move(*text));
    }
  }
  KILN_ASSIGN_OR_RETURN(plan->skill, skill::Specialize(core, companions));
  rs->skill = plan->skill.body;
  rs->result_schema = plan->skill.result_schema;
  if (plan->skill.tools) rs->tools = *plan->skill.tools;
  return Ok();
}

}  // namespace

Result<RunPlan> PlanRecorded(const runner::Services& s, const Recorded& rec) {
  const json& start = rec.start;
  RunPlan plan;
  KILN_ASSIGN_OR_RETURN(plan.skill.role, RecordedText(start, "/role"));
  KILN_ASSIGN_OR_RETURN(plan.skill.path, RecordedText(start, "/skill/path"));
  KILN_ASSIGN_OR_RETURN(plan.skill.sha256, RecordedText(start, "/skill/sha256"));
  plan.skill.name = plan.skill.role;
  const json& companions = start.at("skill").value("companions", json::array());
  if (companions.is_array()) {
    for (const auto& c : companions) {
      if (c.is_string()) plan.skill.companions.push_back(c.get<std::string>());
    }
  }
  std::vector<std::string> names;
  if (const json& secrets = start.value("secrets", json()); secrets.is_array()) {
    for (const auto& n : secrets) {
      if (n.is_string()) names.push_back(n.get<std::string>());
    }
  }
  {
    auto secrets = s.vault->Select(names);
    if (!secrets) return secrets.error().Wrap("the recorded run's secrets");
    plan.secrets = std::move(*secrets);
  }
  if (const json& allow = start.value("network_allow", json()); allow.is_array()) {
    for (const auto& r : allow) {
      std::string text = r.is_string() ? r.get<std::string>() : "";
      // Logs before the rules were recorded as ParseRule reads them wrote
      // "host:0" for "80 and 443".
      if (text.ends_with(":0")) text.resize(text.size() - 2);
      auto rule = proxy::ParseRule(text, "recorded");
      if (!rule) return rule.error().Wrap("the recorded network_allow");
      plan.allow.push_back(std::move(*rule));
    }
  }
  KILN_ASSIGN_OR_RETURN(plan.image, RecordedText(start, "/image/name"));
  plan.required_image = rec.image_digest;
  const json& limits = start.value("limits", json::object());
  plan.timeout_ms = limits.is_object() ? limits.value("wall_ms", uint64_t{0}) : 0;
  if (plan.timeout_ms == 0) plan.timeout_ms = s.config->sandbox.timeout_ms;
  plan.replay_of = rec.replay_of;
  if (start.contains("command")) {
    KILN_ASSIGN_OR_RETURN(plan.command, RecordedText(start, "/command"));
    plan.skill.mode = skill::Mode::kCommand;
    if (plan.command.empty()) return Error::Invalid("the recorded run.start has an empty command");
    return plan;
  }
  if (!start.contains("runtime_spec")) {
    return Error::Invalid(
        "the recorded run.start holds no runtime_spec: the log was written by a kiln that did not "
        "record the agent's spec, and its run cannot be provisioned again");
  }
  KILN_ASSIGN_OR_RETURN(std::string text, RecordedText(start, "/runtime_spec/text"));
  KILN_ASSIGN_OR_RETURN(std::string sha, RecordedText(start, "/runtime_spec/sha256"));
  if (Sha256Hex(text) != sha) {
    return Error::Invalid("the recorded runtime_spec's text does not have its recorded sha256 " +
                          sha);
  }
  KILN_ASSIGN_OR_RETURN(spec::RunSpec rs, spec::ParseText(text, "the recorded runtime_spec"));
  plan.skill.body = rs.skill;
  plan.skill.result_schema = rs.result_schema;
  KILN_ASSIGN_OR_RETURN(plan.gateway, RecordedText(start, "/model/gateway"));
  if (!rec.live) {
    plan.replay_gateway = proxy::Gateway{plan.gateway, rec.model_upstream, {}, ""};
    plan.runtime_spec = std::move(rs);
    plan.recorded_spec = std::move(text);
    return plan;
  }
  if (s.config->models.count(plan.gateway) == 0) {
    return Error::Invalid("the recorded run used model gateway " + Quote(plan.gateway) +
                          ", which has no entry under 'models' in " + s.config->source);
  }
  if (rec.skill) KILN_TRY(RespecializeRecorded(s, start, *rec.skill, rec, &plan, &rs));
  if (!rec.model.empty()) rs.model.name = rec.model;
  if (auto fault = spec::Check(rs)) return fault->ToError().Wrap("the re-run's spec");
  plan.runtime_spec = std::move(rs);
  return plan;
}

Result<std::vector<std::pair<std::string, std::string>>> CompanionsAt(const std::string& mirror,
                                                                      const std::string& commit,
                                                                      const std::string& dir,
                                                                      const std::string& role) {
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, git::ListDirAt(mirror, commit, dir));
  std::vector<std::pair<std::string, std::string>> mine;
  for (const auto& name : names) {
    std::string path = dir + "/" + name + "/SKILL.md";
    KILN_ASSIGN_OR_RETURN(auto text, git::ReadFileAt(mirror, commit, path));
    if (!text) continue;
    KILN_ASSIGN_OR_RETURN(skill::Skill companion, skill::ParseCompanion(*text, path));
    if (companion.specializes == role) mine.emplace_back(path, std::move(*text));
  }
  return mine;
}

Status AddCompanions(const runner::Services& s, const store::Run& run, const git::Resolved& repo,
                     RunPlan* plan) {
  if (plan->skill.mode == skill::Mode::kCommand) return Ok();
  // A pull request's runs (review, verify) take the guidance of its base,
  // never of its head: the author does not write the reviewer's instructions.
  const json& ctx = run.request.context;
  const std::string at = ctx.is_object() && ctx.contains("base_sha") && ctx["base_sha"].is_string()
                             ? ctx["base_sha"].get<std::string>()
                             : repo.commit;
  // The forge's setting for the repository (a relative path, no "..").
  std::string dir = ".kiln/skills";
  if (ctx.is_object() && ctx.contains("skills_dir") && ctx["skills_dir"].is_string()) {
    std::string wanted = ctx["skills_dir"].get<std::string>();
    if (wanted.empty() || wanted[0] == '/' ||
        ("/" + wanted + "/").find("/../") != std::string::npos) {
      return Error::Invalid("skills_dir " + Quote(wanted) +
                            " must be a path inside the repository");
    }
    dir = wanted;
  }
  KILN_ASSIGN_OR_RETURN(auto mine, CompanionsAt(repo.mirror_path, at, dir, plan->skill.role));
  if (mine.empty()) return Ok();
  KILN_ASSIGN_OR_RETURN(plan->skill, skill::Specialize(plan->skill, mine));
  return PlanAgent(s, run, plan);
}

Status Materialise(const runner::Services& s, const store::Run& run, const RunPlan& plan,
                   const git::Resolved& repo, Resources* res, sessionlog::Writer* log,
                   runner::Phases* phases) {
  const config::Config& cfg = *s.config;
  res->run_dir = runner::RunDir(cfg, run);
  std::error_code ec;
  fs::create_directories(fs::path(res->run_dir).parent_path(), ec);
  if (::mkdir(res->run_dir.c_str(), 0755) != 0) {
    return Error::Sys("mkdir(" + Quote(res->run_dir) + ")", errno);
  }
  phases->Lap("run_dir");
  KILN_ASSIGN_OR_RETURN(std::string tree, s.cache->Tree(repo, HostUid(cfg), HostGid(cfg)));
  phases->Lap("tree");
  KILN_ASSIGN_OR_RETURN(res->workspace,
                        git::MountWorkspace(tree, res->run_dir, HostUid(cfg), HostGid(cfg)));
  phases->Lap("workspace_mount");
  if (!plan.secrets.empty()) {
    std::string dir = res->run_dir + "/secrets";
    if (::mkdir(dir.c_str(), 0700) != 0) return Error::Sys("mkdir(" + Quote(dir) + ")", errno);
    KILN_TRY(
        secrets::Mount(dir, plan.secrets, HostUid(cfg), HostGid(cfg), cfg.sandbox.secrets_bytes));
    res->secrets_mounted = true;
    phases->Lap("secrets");
  }
  std::string kiln_dir = res->run_dir + "/kiln";
  if (::mkdir(kiln_dir.c_str(), 0755) != 0) {
    return Error::Sys("mkdir(" + Quote(kiln_dir) + ")", errno);
  }
  if (plan.runtime_spec) {
    KILN_TRY(WriteNewFile(kiln_dir + "/spec.json", plan.SpecText(), 0444, Sync::kNoFsync));
  }
  phases->Lap("spec");

  proxy::Policy policy;
  policy.allow = plan.allow;
  policy.allow_private_addresses = cfg.proxy.allow_private_addresses;
  policy.connect_timeout_ms = cfg.proxy.connect_timeout_ms;
  policy.idle_timeout_ms = cfg.proxy.idle_timeout_ms;
  // A replay's model is its recording, behind its one gateway.
  static const std::map<std::string, config::ModelGateway> kNone;
  if (plan.replay_gateway) policy.gateways.push_back(*plan.replay_gateway);
  for (const auto& [name, m] : plan.replay_gateway ? kNone : cfg.models) {
    proxy::Gateway g{name, m.upstream, {}, m.ca_file};
    const char* key = m.api_key_env.empty() ? nullptr : std::getenv(m.api_key_env.c_str());
    if (key && *key) {
      if (m.provider == "anthropic") {
        g.headers = {{"x-api-key", key}};
      } else {
        g.headers = {{"authorization", std::string("Bearer ") + key}};
      }
      // The key never enters the sandbox, but redact it should a reply echo it.
      if (log) KILN_TRY(log->AddSecret(m.api_key_env, key));
    }
    policy.gateways.push_back(std::move(g));
  }
  // Nothing goes out that the log could not record.
  policy.refuse = [log]() -> std::string {
    if (!log || !log->failed()) return "";
    return "the run's session log cannot be written (" + log->failure() + ")";
  };
  res->proxy_requests = std::make_shared<std::atomic<uint64_t>>(0);
  res->first_model_request = std::make_shared<std::atomic<int64_t>>(0);
  auto counter = res->proxy_requests;
  auto first = res->first_model_request;
  auto endpoint = s.proxy->Open(kiln_dir + "/proxy.sock", std::move(policy),
                                [log, counter, first](const proxy::Request& r) {
                                  ++*counter;
                                  if (!r.gateway.empty()) NoteFirst(*first, r.started);
                                  if (!log) return;
                                  json p = {{"method", r.method},
                                            {"host", r.host},
                                            {"port", r.port},
                                            {"path", r.path},
                                            {"gateway", r.gateway},
                                            {"status", r.status},
                                            {"bytes_sent", r.bytes_sent},
                                            {"bytes_received", r.bytes_received},
                                            {"decision", r.allowed ? "allowed" : "denied"},
                                            {"reason", r.reason},
                                            {"duration_ms", r.duration_ms}};
                                  (void)log->Append("proxy.request", p);
                                });
  if (!endpoint) return endpoint.error().Wrap("opening the proxy endpoint");
  res->endpoint = std::move(*endpoint);
  phases->Lap("proxy_endpoint");
  return Ok();
}

std::string ImageFor(const config::Config& cfg, const std::string& skill_image,
                     const store::RunRequest& request) {
  const json& ctx = request.context;
  std::string asked = ctx.is_object() ? ctx.value("image", "") : "";
  return !asked.empty() ? asked : !skill_image.empty() ? skill_image : cfg.sandbox.image;
}

Status ResolveImage(const config::Config& cfg, RunPlan* plan, images::SealWatch* seals) {
  const std::string& required = plan->required_image;
  std::string host;  // the host image's digest, when it was needed
  if (plan->image == "host" || !required.empty()) {
    KILN_ASSIGN_OR_RETURN(host, HostImageDigest(cfg.state_dir));
    if (plan->image == "host" && required.empty()) {
      plan->image_digest = host;
      return Ok();
    }
    if (required == host) {  // a replay on the host image, whatever the original ran on
      plan->image = "host";
      plan->image_digest = host;
      return Ok();
    }
  }
  KILN_ASSIGN_OR_RETURN(images::Store store, images::Store::Open(cfg.state_dir));
  auto img = store.Resolve(required.empty() ? plan->image : required, seals);
  if (!img) {
    if (img.error().code() != Error::Code::kNotFound || required.empty()) return img.error();
    return Error::NotFound(
        "image " + required + " is not on this host (" +
        (plan->image == "host" ? "its host image is " + host : "nor in its image store") + ")");
  }
  plan->image_digest = img->digest;
  plan->layers = img->layer_dirs;
  plan->image_config = img->manifest.value("config", json::object());
  KILN_ASSIGN_OR_RETURN(plan->runtime_libs,
                        EnsureRuntimeLibs(cfg.state_dir, {cfg.runtime_binary, cfg.forward_binary}));
  return Ok();
}

sandbox::Spec SandboxSpec(const runner::Services& s, const store::Run& run, const RunPlan& plan,
                          const Resources& res, int events_fd, int steer_fd) {
  const config::Config& cfg = *s.config;
  sandbox::Spec spec;
  spec.id = runner::SandboxId(run);
  if (plan.layers.empty()) {
    spec.image = plan.image;
  } else {
    spec.layers = plan.layers;
    for (const json& e : plan.image_config.value("env", json::array())) {
      if (e.is_string()) spec.env.push_back(e.get<std::string>());
    }
  }
  spec.state_dir = cfg.state_dir;
  spec.cgroup_parent = cfg.sandbox.cgroup_parent;
  spec.workspace = res.workspace.merged;
  std::string bin = kBinDir;
  spec.binds.push_back({res.run_dir + "/kiln", kKilnDir, true});
  spec.binds.push_back({cfg.runtime_binary, bin + "/kiln-runtime", true});
  spec.binds.push_back({cfg.forward_binary, bin + "/kiln-proxy-forward", true});
  if (res.secrets_mounted) spec.binds.push_back({res.run_dir + "/secrets", kSecretsDir, true});
  const RuntimeLibs& libs = plan.runtime_libs;
  if (!libs.dir.empty()) spec.binds.push_back({libs.dir, kLibDir, true});
  std::string proxy_url = std::string("http://") + kProxyListen;
  for (const char* name : {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}) {
    spec.env.push_back(std::string(name) + "=" + proxy_url);
  }
  spec.env.push_back("NO_PROXY=127.0.0.1,localhost");
  spec.env.push_back("no_proxy=127.0.0.1,localhost");
  spec.uid = cfg.sandbox.uid;
  spec.gid = cfg.sandbox.gid;
  spec.limits.memory_bytes = cfg.sandbox.memory_bytes;
  spec.limits.pids = cfg.sandbox.pids;
  spec.limits.cpus = cfg.sandbox.cpus;
  spec.limits.timeout_ms = plan.timeout_ms;
  spec.limits.grace_ms = cfg.sandbox.grace_ms;
  spec.limits.rootfs_bytes = cfg.sandbox.rootfs_bytes;
  spec.pass_fds = {events_fd, steer_fd};
  spec.argv = ThroughLoader(libs, {bin + "/kiln-proxy-forward", "--listen", kProxyListen,
                                   "--socket", std::string(kKilnDir) + "/proxy.sock", "--"});
  if (!plan.command.empty()) {
    // No event or steering pipe: only kiln-runtime writes events, and a
    // command could forge them.
    spec.pass_fds.clear();
    spec.argv.insert(spec.argv.end(), {"/bin/sh", "-c", plan.command});
    return spec;
  }
  std::vector<std::string> runtime = ThroughLoader(
      libs, {bin + "/kiln-runtime", "--spec", std::string(kKilnDir) + "/spec.json", "--events-fd",
             std::to_string(events_fd), "--steer-fd", std::to_string(steer_fd)});
  spec.argv.insert(spec.argv.end(), runtime.begin(), runtime.end());
  return spec;
}

Status Release(const config::Config& cfg, const store::Run& run, Resources* res,
               runner::Phases* phases) {
  auto lap = [phases](std::string_view name) {
    if (phases) phases->Lap(name);
  };
  if (res->run_dir.empty()) res->run_dir = runner::RunDir(cfg, run);
  res->endpoint.reset();
  lap("teardown_proxy");
  Status first = Ok();
  auto keep = [&](Status st) {
    if (!st.ok() && first.ok()) first = st;
  };
  keep(git::RemoveWorkspace(res->run_dir));
  lap("teardown_workspace");
  keep(mountinfo::UnmountAll(res->run_dir + "/secrets"));
  res->secrets_mounted = false;
  res->workspace = {};
  if (!first.ok()) return first;  // never walk into something still mounted
  std::error_code ec;
  fs::remove_all(res->run_dir, ec);
  lap("teardown_run_dir");
  if (ec) return Error::Sys("removing " + Quote(res->run_dir), ec.value());
  return Ok();
}

Status ResolvePaths(config::Config* c) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Error::Sys("readlink('/proc/self/exe')", ec.value());
  fs::path dir = self.parent_path();
  auto pick = [&](std::string* field, const char* name,
                  std::initializer_list<fs::path> candidates) -> Status {
    if (field->empty()) {
      for (const fs::path& p : candidates) {
        if (::access(p.c_str(), X_OK) == 0) {
          *field = fs::weakly_canonical(p).string();
          break;
        }
      }
    }
    if (field->empty() || ::access(field->c_str(), X_OK) != 0) {
      return Error::NotFound(std::string(name) + " not found" +
                             (field->empty() ? " beside " + Quote(dir.string())
                                             : ": " + Quote(*field) + " is not executable") +
                             "; set it in the configuration");
    }
    return Ok();
  };
  // Runs start `kiln sandbox run`: the lean binary beside this one.
  KILN_TRY(pick(&c->kiln_binary, "kiln", {dir / "kiln"}));
  KILN_TRY(pick(&c->runtime_binary, "kiln-runtime",
                {dir / "kiln-runtime", dir / "../runtime/kiln-runtime"}));
  KILN_TRY(pick(&c->forward_binary, "kiln-proxy-forward",
                {dir / "kiln-proxy-forward", dir / "proxy/kiln-proxy-forward"}));
  for (auto [field, name] : {std::pair{&c->skills_dir, "skills"}, {&c->images_dir, "images"}}) {
    if (!field->empty()) continue;
    for (const fs::path& p : {dir / "../share/kiln" / name, fs::path(KILN_SOURCE_DIR) / name}) {
      if (fs::is_directory(p, ec)) {
        *field = fs::weakly_canonical(p).string();
        break;
      }
    }
  }
  return Ok();
}

}  // namespace kiln::provision
