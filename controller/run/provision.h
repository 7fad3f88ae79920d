// Provisioning a run: what it will get (Plan: the skill, the scoped secrets,
// the run spec for kiln-runtime, the egress rules, the image digest), the
// resources made for it (Materialise: the workspace, the secrets tmpfs, the
// /run/kiln directory with the spec and the proxy socket), the sandbox it runs
// in (SandboxSpec), and their release (Release), in reverse order.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/config/skill.h"
#include "controller/git/git.h"
#include "controller/git/write.h"
#include "controller/proxy/proxy.h"
#include "controller/run/phases.h"
#include "controller/run/runtime_libs.h"
#include "controller/run/services.h"
#include "controller/sessionlog/writer.h"
#include "runtime/spec.h"
#include "sandbox/spec.h"

namespace kiln::provision {

// Where the controller's pieces appear inside the sandbox.
inline constexpr char kProxyListen[] = "127.0.0.1:3128";
inline constexpr char kKilnDir[] = "/run/kiln";  // spec.json, proxy.sock
inline constexpr char kBinDir[] = "/opt/kiln/bin";
inline constexpr char kSecretsDir[] = "/run/secrets";

struct RunPlan {
  skill::Skill skill;
  std::map<std::string, std::string> secrets;  // name -> value
  std::string gateway;                         // models.<name> the runtime talks to
  std::optional<spec::RunSpec> runtime_spec;   // kiln-runtime's; none for a command skill
  // Command skills (verify): the shell command kiln runs in the sandbox
  // instead of an agent. The request's context.command wins over the skill's.
  std::string command;
  std::vector<proxy::Rule> allow;  // config rules, then the skill's
  std::string image;               // "host", or a name or digest in the image store
  std::string image_digest;        // "sha256:<hex>", filled when the run starts (ResolveImage)
  // A store image's, filled by ResolveImage: its layer directories (bottom
  // first), its config ({env, workdir, user}) and kiln's programs' libraries.
  std::vector<std::string> layers;
  nlohmann::json image_config;
  RuntimeLibs runtime_libs;
  uint64_t timeout_ms = 0;

  // A replay (PlanRecorded): the recorded spec.json, given byte for byte;
  // the gateway that stands in for the model (the run's only one); the
  // image digest the run must get; and what run.start says of the original.
  std::string recorded_spec;
  std::optional<proxy::Gateway> replay_gateway;
  std::string required_image;
  nlohmann::json replay_of;

  // The run.start payload (no secret values: names only).
  nlohmann::json RunStart(const store::Run& run, const git::Resolved& repo) const;
  // kiln-runtime's spec.json, byte for byte ("" for a command skill): what
  // the sandbox is given and what run.start records, so that a replay can
  // give the same.
  std::string SpecText() const;
};

// A run provisioned again from a recorded one (kiln replay): what the plan
// takes from the original's run.start instead of today's skills and
// configuration.
struct Recorded {
  nlohmann::json start;        // the original's run.start payload
  std::string model_upstream;  // the base URL that answers for the model
  std::string image_digest;    // the image the replay must run on
  nlohmann::json replay_of;    // recorded in the replay's run.start
  // A re-run (kiln replay --rerun): the configuration's gateway answers
  // (a live or scripted model; model_upstream unused), and the role's skill
  // (with the recorded run's companions) or the model's name may differ.
  // The recorded budgets, task and tools stay.
  bool live = false;
  std::optional<skill::Skill> skill;
  // With skill: these companions instead of the recorded run's (the
  // improver compares the old guidance with the new).
  std::optional<std::vector<std::pair<std::string, std::string>>> companions;
  std::string model;
  // Called by the runner just before the sandbox starts, with a function
  // that passes a message to the agent at once and records it (as `kiln
  // runs steer` would, without the wait for the next poll; a message passed
  // before the start reaches the agent's first request), and with null
  // before the sandbox's pipes close. A replay sends the recorded steering
  // with it.
  using SteerFn = std::function<void(const std::string& from, const std::string& message)>;
  std::function<void(SteerFn)> steer_ready;
};

// The plan of a replay: the recorded spec (skill text, model, budgets,
// tools) checked against its recorded hash, the recorded secret names with
// today's values, the recorded egress rules, timeout and command. A re-run's
// spec is the recorded one with its skill and model replaced as asked. An
// error names what the recording lacks or what this host does not have.
Result<RunPlan> PlanRecorded(const runner::Services& services, const Recorded& recorded);

// The host image's digest: SHA-256 over its /etc fingerprint and dpkg's
// package list. Builds the image's skeleton when missing and hashes the
// package list (once per process while it is unchanged): work for the start
// of a run, not for checking a request.
Result<std::string> HostImageDigest(const std::string& state_dir);

// The image a run of request gets: the request's (context.image), else its
// skill's (skill_image), else the configuration's sandbox.image.
std::string ImageFor(const config::Config& config, const std::string& skill_image,
                     const store::RunRequest& request);

// Fills the plan's image digest (and for a store image its layers, config
// and runtime libraries): the host image, or the store's image by name, or
// by the digest a replay requires. A store image whose layers changed since
// they were stored is refused (kCorruption); a required digest that is not
// here is kNotFound, naming what is.
Status ResolveImage(const config::Config& config, RunPlan* plan,
                    images::SealWatch* seals = nullptr);

// Everything that can be decided without touching the repository: an
// unknown role, an unknown secret, a bad budget override, a model provider
// without a gateway are errors here.
Result<RunPlan> Plan(const runner::Services& services, const store::Run& run);

// Appends the repository's companion skills for the run's role
// (`.kiln/skills/<name>/SKILL.md` whose `specializes` names the role, read at
// the resolved commit, or at a pull request's base for review and verify) to
// the plan's skill and rebuilds the runtime spec. Command skills take none. A
// companion that does not parse fails the run, naming its file and line.
Status AddCompanions(const runner::Services& services, const store::Run& run,
                     const git::Resolved& repo, RunPlan* plan);

// The companion skills of role in the repository mirror at commit: each
// <dir>/<name>/SKILL.md whose `specializes` is role, as (path, text) in path
// order. One that does not parse is an error naming its file and line.
Result<std::vector<std::pair<std::string, std::string>>> CompanionsAt(const std::string& mirror,
                                                                      const std::string& commit,
                                                                      const std::string& dir,
                                                                      const std::string& role);

struct Resources {
  std::string run_dir;
  git::Workspace workspace;
  bool secrets_mounted = false;
  std::unique_ptr<proxy::Endpoint> endpoint;
  std::shared_ptr<std::atomic<uint64_t>> proxy_requests;
  // When the first request to a model gateway reached the proxy, in
  // steady_clock nanoseconds; 0 until then.
  std::shared_ptr<std::atomic<int64_t>> first_model_request;
};

// Creates the run's resources in res (so that Release can undo a partial
// result). Proxy requests are appended to log as `proxy.request` records.
// Each step ends a phase of phases: run_dir, tree, workspace_mount,
// secrets (when the run has any), spec, proxy_endpoint.
Status Materialise(const runner::Services& services, const store::Run& run, const RunPlan& plan,
                   const git::Resolved& repo, Resources* res, sessionlog::Writer* log,
                   runner::Phases* phases);

// The sandbox for the run: kiln-proxy-forward then kiln-runtime, the
// workspace, /run/kiln and /run/secrets read-only, the proxy variables.
sandbox::Spec SandboxSpec(const runner::Services& services, const store::Run& run,
                          const RunPlan& plan, const Resources& res, int events_fd, int steer_fd);

// Closes the endpoint, unmounts the workspace and the secrets, removes the
// run directory. Idempotent; safe on a partial or empty res (res->run_dir
// empty: derived from the run).
// Each step ends a phase of phases, when given: teardown_proxy,
// teardown_workspace, teardown_run_dir.
Status Release(const config::Config& config, const store::Run& run, Resources* res,
               runner::Phases* phases = nullptr);

// Fills config's kiln, runtime and forward binaries and skills directory when
// unset: beside this kiln executable (an installation) or in the build tree
// and checkout, and checks that each binary is executable.
Status ResolvePaths(config::Config* config);

// The uid and gid a sandbox's uid/gid have on the host (root mode).
uid_t HostUid(const config::Config& config);
gid_t HostGid(const config::Config& config);

}  // namespace kiln::provision
