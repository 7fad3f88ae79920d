// The controller's configuration: one YAML file (`kiln serve --config FILE`,
// `kiln run --config FILE`), every field optional, documented field by field
// with its default in docs/configuration.md (config_test.cc checks that the
// defaults there are these).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "controller/config/github_settings.h"

namespace kiln::config {

// A model gateway of the egress proxy: the runtime's requests to
// http://127.0.0.1:3128/gateway/<name> go to upstream with the API key added.
struct ModelGateway {
  std::string provider;     // "anthropic" or "openai"; the map key by default
  std::string upstream;     // base URL
  std::string api_key_env;  // the controller's environment variable holding the key
  std::string ca_file;      // https upstreams: CAs to trust; empty: the system's
};

struct Config {
  std::string source = "(defaults)";  // the file read, for messages

  std::string state_dir = "/var/lib/kiln";  // runs, logs, caches, the store
  // This host's name among the hosts sharing a store (a fleet): it prefixes
  // the owner of every run it claims. "": the machine's host name.
  std::string host_name;
  std::string store;         // SQLite file (default <state_dir>/kiln.db) or postgres:// URL
  std::string cache_dir;     // mirrors and trees; default <state_dir>/cache
  std::string log_dir;       // session logs; default <state_dir>/logs
  std::string key_dir;       // signing key; default <state_dir>/keys
  std::string skills_dir;    // default: the skills/ folder of the installation or checkout
  std::string images_dir;    // image recipes; default: the images/ folder, likewise
  std::string secrets_file;  // YAML NAME: VALUE, mode 0600 or stricter; empty: none

  struct {
    int max_runs = 4;           // runs at once on all hosts of the store
    int max_runs_per_repo = 2;  // runs of one repository at once, likewise
    int host_max_runs = 0;      // runs at once on this host; unset: max_runs
    // A claimed run's lease (docs/store.md, "Leases and fencing"): renewed
    // every third of it while the run runs; a run whose lease ran out is
    // rescued by any host of the store under `recovery`. 0: no leases.
    uint64_t lease_ms = 60'000;
  } concurrency;

  struct {
    int max_attempts = 3;  // attempts for infrastructure failures
    uint64_t initial_backoff_ms = 5'000;
    uint64_t max_backoff_ms = 300'000;
  } retry;

  // What `kiln serve` does with a run it finds running at start-up whose
  // owner died: "requeue" (counts as an infrastructure failure, under the
  // retry policy) or "fail".
  std::string recovery = "requeue";

  struct {
    std::string image = "host";
    uint32_t uid = 1000;
    uint32_t gid = 1000;
    std::optional<uint64_t> memory_bytes = 4ull << 30;
    std::optional<uint64_t> pids = 1024;
    std::optional<double> cpus;
    uint64_t timeout_ms = 3'600'000;
    uint64_t grace_ms = 10'000;
    uint64_t rootfs_bytes = 2ull << 30;
    uint64_t secrets_bytes = 1 << 20;  // the /run/secrets tmpfs
    std::string cgroup_parent = "kiln";
  } sandbox;

  struct {
    std::vector<std::string> allow;  // rules for every run ("pypi.org:443", "*.debian.org")
    bool allow_private_addresses = false;
    uint64_t connect_timeout_ms = 10'000;
    uint64_t idle_timeout_ms = 300'000;
  } proxy;

  std::map<std::string, ModelGateway> models;  // by gateway name

  struct {
    std::string provider = "anthropic";  // default gateway for skills that name none
    std::string name = "claude-sonnet-4-5";
  } model;

  struct {
    uint64_t max_file_bytes = 1 << 20;
    uint64_t max_patch_bytes = 16 << 20;
  } result;

  // kiln replay (docs/replay.md): rules that hide volatile text before a
  // replay compares what its tools printed with the recording, tried after
  // the built-in ones.
  struct NormaliseRule {
    std::string pattern;  // ECMAScript regular expression (std::regex)
    std::string replace;  // its placeholder; $1.. name groups
    std::string where;    // "FILE:LINE" of the rule, for the report
  };
  struct {
    std::vector<NormaliseRule> normalise;
  } replay;

  // Scheduled runs started by `kiln serve` (docs/schedules.md). Checked when
  // the file is read: the name, the cron expression and the time zone.
  struct Schedule {
    std::string name;               // [a-z0-9][a-z0-9-]{0,63}, unique
    std::string cron;               // 5 fields or @hourly, @daily, ...
    std::string time_zone = "UTC";  // IANA name
    uint64_t jitter_ms = 0;         // each tick is delayed by a fixed part of this
    // What a tick starts: a run of a role (run), or the improver for a role
    // (improve, docs/improver.md); exactly one of the two.
    struct {
      std::string role;
      std::string repo;             // URL or path, as `kiln run --repo`
      std::string commit = "HEAD";  // resolved when the tick fires
      std::string task;
      int priority = 0;
      std::map<std::string, uint64_t> budgets;  // role budget overrides
    } run;
    struct {
      std::string role;                          // whose companion skill it proposes to change
      std::string repo;                          // the forge repository ("acme/app")
      uint64_t lookback_ms = 7 * 86'400'000ull;  // the signals' window
      int tasks = 5;  // past tasks re-run with the old and the new guidance
    } improve;
    bool improves() const { return !improve.role.empty(); }
    std::string where;  // "FILE:LINE" of the entry, for messages
  };
  std::vector<Schedule> schedules;

  // The factory pipeline (docs/pipeline.md) and the forge it works with.
  struct {
    bool enabled = true;                     // `kiln serve` takes forge events
    std::string forge = "local";             // local (embedded) | github (the github: section)
    std::string bot = "kiln";                // the user kiln's forge writes appear as
    std::vector<std::string> trusted_users;  // may start expensive roles everywhere
    // kiln serve's one HTTP listener (docs/web.md): the web view, the runs
    // API, the local forge's API or GitHub's webhooks; "" turns it off.
    std::string api_listen = "127.0.0.1:9465";
    // The web view's address as people reach it (a proxy in front, say),
    // for the links kiln writes: progress comments, share links, html_url.
    // Default: http://<api_listen>.
    std::string web_url;
  } pipeline;

  // The GitHub adapter (docs/github.md), used when pipeline.forge is github.
  github::Settings github;

  std::string metrics_listen = "127.0.0.1:9464";  // "" turns /metrics off
  uint64_t poll_interval_ms = 250;                // queue and cancel polling

  // Binaries; defaults: beside the running kiln executable.
  std::string runtime_binary;
  std::string forward_binary;
  std::string kiln_binary;
};

// The web view's base URL, without a trailing slash: pipeline.web_url, or
// http://<pipeline.api_listen>.
std::string WebUrl(const Config& config);

// Reads and checks FILE. Errors read "FILE:LINE: 'field' <what is wrong>".
Result<Config> Load(const std::string& path);
Result<Config> Parse(std::string_view text, const std::string& source);
// The defaults, with the derived paths filled in.
Config Defaults();

}  // namespace kiln::config
