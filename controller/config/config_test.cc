#include "controller/config/config.h"

#include <gtest/gtest.h>

#include "base/fd.h"

namespace kiln::config {
namespace {

// The defaults block of docs/configuration.md is what kiln uses.
TEST(Config, DocumentedDefaultsAreTheDefaults) {
  auto doc = ReadFile(std::string(KILN_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(doc.ok()) << doc.error().message();
  size_t begin = doc->find("<!-- defaults:begin -->\n```yaml\n");
  size_t end = doc->find("```\n<!-- defaults:end -->");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  begin = doc->find("```yaml\n", begin) + 8;
  auto parsed = Parse(doc->substr(begin, end - begin), "docs/configuration.md");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  Config d = Defaults();
  const Config& c = *parsed;
  EXPECT_EQ(c.state_dir, d.state_dir);
  EXPECT_EQ(c.store, d.store);
  EXPECT_EQ(c.cache_dir, d.cache_dir);
  EXPECT_EQ(c.log_dir, d.log_dir);
  EXPECT_EQ(c.key_dir, d.key_dir);
  EXPECT_EQ(c.skills_dir, d.skills_dir);
  EXPECT_EQ(c.secrets_file, d.secrets_file);
  EXPECT_EQ(c.host_name, d.host_name);
  EXPECT_EQ(c.concurrency.max_runs, d.concurrency.max_runs);
  EXPECT_EQ(c.concurrency.max_runs_per_repo, d.concurrency.max_runs_per_repo);
  EXPECT_EQ(c.concurrency.host_max_runs, d.concurrency.host_max_runs);
  EXPECT_EQ(c.retry.max_attempts, d.retry.max_attempts);
  EXPECT_EQ(c.retry.initial_backoff_ms, d.retry.initial_backoff_ms);
  EXPECT_EQ(c.retry.max_backoff_ms, d.retry.max_backoff_ms);
  EXPECT_EQ(c.recovery, d.recovery);
  EXPECT_EQ(c.sandbox.image, d.sandbox.image);
  EXPECT_EQ(c.sandbox.uid, d.sandbox.uid);
  EXPECT_EQ(c.sandbox.gid, d.sandbox.gid);
  EXPECT_EQ(c.sandbox.memory_bytes, d.sandbox.memory_bytes);
  EXPECT_EQ(c.sandbox.pids, d.sandbox.pids);
  EXPECT_EQ(c.sandbox.cpus, d.sandbox.cpus);
  EXPECT_EQ(c.sandbox.timeout_ms, d.sandbox.timeout_ms);
  EXPECT_EQ(c.sandbox.grace_ms, d.sandbox.grace_ms);
  EXPECT_EQ(c.sandbox.rootfs_bytes, d.sandbox.rootfs_bytes);
  EXPECT_EQ(c.sandbox.secrets_bytes, d.sandbox.secrets_bytes);
  EXPECT_EQ(c.sandbox.cgroup_parent, d.sandbox.cgroup_parent);
  EXPECT_EQ(c.proxy.allow, d.proxy.allow);
  EXPECT_EQ(c.proxy.allow_private_addresses, d.proxy.allow_private_addresses);
  EXPECT_EQ(c.proxy.connect_timeout_ms, d.proxy.connect_timeout_ms);
  EXPECT_EQ(c.proxy.idle_timeout_ms, d.proxy.idle_timeout_ms);
  ASSERT_EQ(c.models.size(), d.models.size());
  for (const auto& [name, g] : d.models) {
    ASSERT_TRUE(c.models.count(name)) << name;
    EXPECT_EQ(c.models.at(name).provider, g.provider);
    EXPECT_EQ(c.models.at(name).upstream, g.upstream);
    EXPECT_EQ(c.models.at(name).api_key_env, g.api_key_env);
    EXPECT_EQ(c.models.at(name).ca_file, g.ca_file);
  }
  EXPECT_EQ(c.replay.normalise.size(), d.replay.normalise.size());
  EXPECT_EQ(c.model.provider, d.model.provider);
  EXPECT_EQ(c.model.name, d.model.name);
  EXPECT_EQ(c.result.max_file_bytes, d.result.max_file_bytes);
  EXPECT_EQ(c.result.max_patch_bytes, d.result.max_patch_bytes);
  EXPECT_EQ(c.pipeline.enabled, d.pipeline.enabled);
  EXPECT_EQ(c.pipeline.forge, d.pipeline.forge);
  EXPECT_EQ(c.pipeline.bot, d.pipeline.bot);
  EXPECT_EQ(c.pipeline.trusted_users, d.pipeline.trusted_users);
  EXPECT_EQ(c.pipeline.api_listen, d.pipeline.api_listen);
  EXPECT_EQ(c.metrics_listen, d.metrics_listen);
  EXPECT_EQ(c.poll_interval_ms, d.poll_interval_ms);
  EXPECT_EQ(c.runtime_binary, d.runtime_binary);
  EXPECT_EQ(c.forward_binary, d.forward_binary);
  EXPECT_EQ(c.kiln_binary, d.kiln_binary);
}

TEST(Config, EmptyFileIsTheDefaults) {
  auto c = Parse("", "empty.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->store, "/var/lib/kiln/kiln.db");
  EXPECT_EQ(c->concurrency.max_runs, 4);
  EXPECT_EQ(c->concurrency.lease_ms, 60'000u);
}

TEST(Config, DerivedPathsFollowStateDir) {
  auto c = Parse("state_dir: /srv/kiln\nlog_dir: /logs\n", "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->store, "/srv/kiln/kiln.db");
  EXPECT_EQ(c->cache_dir, "/srv/kiln/cache");
  EXPECT_EQ(c->log_dir, "/logs");
  EXPECT_EQ(c->key_dir, "/srv/kiln/keys");
}

// A host of a fleet may run fewer than the fleet's limit: a small runner
// beside large ones.
TEST(Config, AHostsOwnLimitIsReadApartFromTheFleets) {
  auto c = Parse("concurrency: {max_runs: 12, host_max_runs: 2}\n", "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->concurrency.max_runs, 12);
  EXPECT_EQ(c->concurrency.host_max_runs, 2);
}

TEST(Config, ValuesAreRead) {
  auto c = Parse(R"(concurrency: {max_runs: 8, max_runs_per_repo: 1, lease: 2m}
retry: {max_attempts: 5, initial_backoff: 250ms, max_backoff: 1m}
recovery: fail
sandbox: {memory: max, pids: 64, cpus: 1.5, timeout: 90s, uid: 2000}
proxy: {allow: ["pypi.org:443", "*.debian.org"], allow_private_addresses: true}
models:
  anthropic: {upstream: "http://127.0.0.1:8080"}
  local: {provider: openai, upstream: "http://127.0.0.1:9000/v1", api_key_env: LOCAL_KEY}
model: {provider: local, name: qwen}
metrics_listen: ""
)",
                 "t.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->concurrency.max_runs, 8);
  EXPECT_EQ(c->concurrency.max_runs_per_repo, 1);
  EXPECT_EQ(c->concurrency.host_max_runs, 8) << "unset: the fleet's max_runs";
  EXPECT_EQ(c->concurrency.lease_ms, 120'000u);
  EXPECT_EQ(c->retry.max_attempts, 5);
  EXPECT_EQ(c->retry.initial_backoff_ms, 250u);
  EXPECT_EQ(c->retry.max_backoff_ms, 60'000u);
  EXPECT_EQ(c->recovery, "fail");
  EXPECT_FALSE(c->sandbox.memory_bytes.has_value());
  EXPECT_EQ(c->sandbox.pids, 64u);
  EXPECT_EQ(c->sandbox.cpus, 1.5);
  EXPECT_EQ(c->sandbox.timeout_ms, 90'000u);
  EXPECT_EQ(c->sandbox.uid, 2000u);
  EXPECT_EQ(c->proxy.allow, (std::vector<std::string>{"pypi.org:443", "*.debian.org"}));
  EXPECT_TRUE(c->proxy.allow_private_addresses);
  EXPECT_EQ(c->models.at("anthropic").upstream, "http://127.0.0.1:8080");
  EXPECT_EQ(c->models.at("anthropic").api_key_env, "ANTHROPIC_API_KEY");  // merged
  EXPECT_EQ(c->models.at("local").provider, "openai");
  EXPECT_EQ(c->model.provider, "local");
  EXPECT_EQ(c->metrics_listen, "");
}

struct Bad {
  const char* yaml;
  const char* message;  // the error contains this
};

class BadConfig : public ::testing::TestWithParam<Bad> {};

TEST_P(BadConfig, NamesFileLineAndField) {
  auto c = Parse(GetParam().yaml, "/etc/kiln/kiln.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find(GetParam().message), std::string::npos) << c.error().message();
  EXPECT_EQ(c.error().message().rfind("/etc/kiln/kiln.yaml", 0), 0u) << c.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Config, BadConfig,
    ::testing::Values(
        Bad{"concurrency:\n  max_runs: four\n", ":2: 'concurrency.max_runs' must be"},
        Bad{"concurrency:\n  max_runs: 0\n", "'concurrency.max_runs' must be a positive"},
        Bad{"concurrency:\n  host_max_runs: -2\n",
            ":2: 'concurrency.host_max_runs' must be a non-negative integer"},
        Bad{"concurrency:\n  lease: 2s\n",
            ":2: 'concurrency.lease' must be 0 (no leases) or at least 3s, not 2000ms"},
        Bad{"concurrency: {lease: soon}\n", "'concurrency.lease' must be a duration"},
        Bad{"sandbox:\n  memroy: 4G\n", ":2: 'sandbox.memroy' is not a known field"},
        Bad{"sandbox: {memory: lots}\n", "'sandbox.memory' must be a size"},
        Bad{"sandbox: {timeout: soon}\n", "'sandbox.timeout' must be a duration"},
        Bad{"sandbox: {uid: 70000}\n", "'sandbox.uid' must be at most 65535"},
        Bad{"sandbox: {cgroup_parent: ../x}\n", "'sandbox.cgroup_parent' must be a relative"},
        Bad{"recovery: maybe\n", "'recovery' must be requeue or fail"},
        Bad{"state_dir: relative/path\n", "'state_dir' must be an absolute path"},
        Bad{"store: kiln.db\n", "'store' must be an absolute path or a postgres:// URL"},
        Bad{"host_name: a/b\n", "'host_name' must be up to 64 letters, digits"},
        Bad{"store: mysql://db/kiln\n", "'store' must be an absolute path or a postgres:// URL"},
        Bad{"proxy: {allow: pypi.org}\n", "'proxy.allow' must be a list"},
        Bad{"proxy: {allow_private_addresses: yes please}\n", "must be true or false"},
        Bad{"models: {anthropic: {upstream: ftp://x}}\n", "'models.anthropic.upstream' must be"},
        Bad{"models: {Bad_Name: {upstream: http://x}}\n", "is not a gateway name"},
        Bad{"models: {local: {upstream: http://x}}\n", "'models.local.provider' must be"},
        Bad{"model: {provider: nowhere}\n", "names no gateway"},
        Bad{"concurrency: 3\n", "'concurrency' must be a mapping"},
        Bad{"- a\n- b\n", "must be a mapping"},
        Bad{"sandbox: {memory: 4G\n", "/etc/kiln/kiln.yaml:"},
        Bad{"poll_interval: 0ms\n", "'poll_interval' must be positive"},
        Bad{"recovery: fail\nsandbox: {uid: 1}\nrecovery: requeue\n",
            ":3: 'recovery' is given twice"},
        Bad{"pipeline: {forge: gitlab}\n", "'pipeline.forge' must be local or github"},
        Bad{"pipeline: {forge: github}\n", "forge is github but there is no github: section"},
        Bad{"github: {token_file: /t, webhook_secret_file: /s, api_url: http://ghe}\n",
            "'github.api_url' must be an https:// URL"},
        Bad{"github: {webhook_secret_file: /s}\n",
            "needs app_id and private_key_file (a GitHub App) or token_file"},
        Bad{"github: {app_id: '1', webhook_secret_file: /s}\n",
            "'github.private_key_file' is needed too"},
        Bad{"github: {app_id: '1', private_key_file: /k, token_file: /t, webhook_secret_file: "
            "/s}\n",
            "exclude each other"},
        Bad{"github: {token_file: /t}\n", "'github.webhook_secret_file' is required"},
        Bad{"github: {token_file: t, webhook_secret_file: /s}\n",
            "'github.token_file' must be an absolute path"},
        Bad{"github:\n  token_file: /t\n  webhook_secret_file: /s\n  repos:\n    acme: {}\n",
            ":5: 'github.repos.acme' is not of the form owner/name"},
        Bad{"github:\n  token_file: /t\n  webhook_secret_file: /s\n  repos:\n"
            "    acme/w: {labels: {ready-to-spek: go}}\n",
            "'github.repos.acme/w.labels.ready-to-spek' is not one of kiln's labels"},
        Bad{"github:\n  token_file: /t\n  webhook_secret_file: /s\n  repos:\n"
            "    acme/w: {skills_dir: ../x}\n",
            "'github.repos.acme/w.skills_dir' must be a relative path"},
        Bad{"github:\n  token_file: /t\n  webhook_secret_file: /s\n  repos:\n"
            "    acme/w: {trusted_teams: [core]}\n",
            "entry 'core' is not of the form org/team-slug"},
        Bad{"pipeline: {forge: github}\ngithub: {token_file: /t, webhook_secret_file: /s}\n",
            "'github' names no repositories"}));

// A fleet's hosts share one PostgreSQL store, named by its URL.
TEST(Config, TheStoreMayBeAPostgresUrl) {
  for (const char* url :
       {"postgres://kiln:pw@db.example:5432/kiln?sslmode=require", "postgresql://db/kiln"}) {
    auto c = Parse(std::string("store: \"") + url + "\"\n", "kiln.yaml");
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->store, url);
  }
}

TEST(Config, GitHubIsRead) {
  auto c = Parse(R"(pipeline: {forge: github, bot: "kiln-factory[bot]"}
github:
  api_url: https://ghe.example/api/v3
  ca_file: /etc/kiln/ghe-ca.pem
  app_id: "4242"
  private_key_file: /etc/kiln/app.pem
  webhook_secret_file: /etc/kiln/webhook-secret
  repos:
    acme/widgets:
      trusted_users: [alice]
      trusted_teams: [acme/core]
      labels: {ready-to-spec: "kiln: ready"}
      skills_dir: tools/kiln-skills
      draft: true
    acme/other: {}
)",
                 "kiln.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->pipeline.forge, "github");
  EXPECT_EQ(c->pipeline.bot, "kiln-factory[bot]");
  EXPECT_EQ(c->github.api_url, "https://ghe.example/api/v3");
  EXPECT_EQ(c->github.app_id, "4242");
  ASSERT_EQ(c->github.repos.size(), 2u);
  const auto& w = c->github.repos.at("acme/widgets");
  EXPECT_EQ(w.trusted_users, std::vector<std::string>{"alice"});
  EXPECT_EQ(w.trusted_teams, std::vector<std::string>{"acme/core"});
  EXPECT_EQ(w.labels.at("ready-to-spec"), "kiln: ready");
  EXPECT_EQ(w.skills_dir, "tools/kiln-skills");
  EXPECT_TRUE(w.draft);
  EXPECT_EQ(c->github.repos.at("acme/other").skills_dir, ".kiln/skills");
  EXPECT_FALSE(c->github.repos.at("acme/other").draft);
}

TEST(Config, MissingFileIsAnError) {
  auto c = Load("/nonexistent/kiln.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find("/nonexistent/kiln.yaml"), std::string::npos);
}

// replay.normalise: each rule is read with where it is, and a pattern that
// does not compile is refused naming the file, the line and the rule.
TEST(Config, ReplayNormalisationRules) {
  auto c = Parse("replay:\n  normalise:\n    - {pattern: 'build \\d+', replace: 'build <n>'}\n",
                 "kiln.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_EQ(c->replay.normalise.size(), 1u);
  EXPECT_EQ(c->replay.normalise[0].pattern, "build \\d+");
  EXPECT_EQ(c->replay.normalise[0].replace, "build <n>");
  EXPECT_EQ(c->replay.normalise[0].where, "kiln.yaml:3");
  struct Case {
    const char* yaml;
    const char* message;
  } cases[] = {
      {"replay:\n  normalise:\n    - {replace: x}\n    - {pattern: '(a', replace: x}\n",
       "kiln.yaml:3: 'replay.normalise[0].pattern' must be given and not empty"},
      {"replay:\n  normalise:\n    - {pattern: a, replace: x}\n    - {pattern: '(a', replace: x}\n",
       "kiln.yaml:4: 'replay.normalise[1].pattern' is not a valid regular expression ('(a'): "},
      {"replay:\n  normalise:\n    - {pattern: a, with: x}\n",
       "kiln.yaml:3: 'replay.normalise[0].with' is not a known field"},
      {"replay:\n  normalise: {pattern: a}\n", "kiln.yaml:2: 'replay.normalise' must be a list"},
      {"replay:\n  normalise:\n    - a\n", "kiln.yaml:3: 'replay.normalise[0]' must be a mapping"},
      {"replay:\n  normalize: []\n", "kiln.yaml:2: 'replay.normalize' is not a known field"},
  };
  for (const Case& k : cases) {
    auto bad = Parse(k.yaml, "kiln.yaml");
    ASSERT_FALSE(bad.ok()) << k.yaml;
    EXPECT_TRUE(bad.error().message().starts_with(k.message)) << bad.error().message();
  }
}

// schedules: read with where each is; a bad cron expression or time zone,
// or a bad run, is refused naming the file, the line and the field.
TEST(Config, Schedules) {
  auto c = Parse(R"(schedules:
  - name: nightly-triage
    cron: "0 3 * * MON-FRI"
    time_zone: Europe/Berlin
    jitter: 5m
    run:
      role: triage
      repo: /srv/repo.git
      commit: main
      task: look again at the open issues
      priority: 5
      budgets: {max_turns: 10}
)",
                 "kiln.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_EQ(c->schedules.size(), 1u);
  const Config::Schedule& s = c->schedules[0];
  EXPECT_EQ(s.name, "nightly-triage");
  EXPECT_EQ(s.cron, "0 3 * * MON-FRI");
  EXPECT_EQ(s.time_zone, "Europe/Berlin");
  EXPECT_EQ(s.jitter_ms, 300'000u);
  EXPECT_EQ(s.run.role, "triage");
  EXPECT_EQ(s.run.repo, "/srv/repo.git");
  EXPECT_EQ(s.run.commit, "main");
  EXPECT_EQ(s.run.task, "look again at the open issues");
  EXPECT_EQ(s.run.priority, 5);
  EXPECT_EQ(s.run.budgets.at("max_turns"), 10u);
  EXPECT_EQ(s.where, "kiln.yaml:2");
  EXPECT_FALSE(s.improves());

  auto improve = Parse(R"(schedules:
  - name: improve-triage
    cron: "@weekly"
    improve: {role: triage, repo: acme/app, lookback: 14d, tasks: 3}
)",
                       "kiln.yaml");
  ASSERT_TRUE(improve.ok()) << improve.error().message();
  const Config::Schedule& i = improve->schedules[0];
  EXPECT_TRUE(i.improves());
  EXPECT_EQ(i.improve.role, "triage");
  EXPECT_EQ(i.improve.repo, "acme/app");
  EXPECT_EQ(i.improve.lookback_ms, 14 * 86'400'000ull);
  EXPECT_EQ(i.improve.tasks, 3);

  const std::string run = "    run: {role: triage, repo: /r, task: t}\n";
  struct Case {
    std::string yaml;
    const char* message;
  } cases[] = {
      {"schedules:\n  - name: a\n    cron: '0 24 * * *'\n" + run,
       "kiln.yaml:3: 'schedules[0].cron' the hour field: 24 is out of range 0-23"},
      {"schedules:\n  - name: a\n    cron: '0 0 * * *'\n    time_zone: Mars/Base\n" + run,
       "kiln.yaml:4: 'schedules[0].time_zone' time zone 'Mars/Base': not an IANA time zone name"},
      {"schedules:\n  - name: a\n    cron: '@reboot'\n" + run,
       "kiln.yaml:3: 'schedules[0].cron' '@reboot' is not a shorthand kiln knows"},
      {"schedules:\n  - name: a\n    cron: '* * *'\n" + run,
       "kiln.yaml:3: 'schedules[0].cron' '* * *' has 3 field(s)"},
      {"schedules:\n  - name: a\n    cron: '@daily'\n" + run + "  - name: a\n    cron: '@daily'\n" +
           run,
       "kiln.yaml:5: 'schedules[1].name' 'a' is already the name of the schedule at kiln.yaml:2"},
      {"schedules:\n  - name: Nightly\n    cron: '@daily'\n" + run,
       "kiln.yaml:2: 'schedules[0].name' must be given, lower case letters, digits and '-', not "
       "'Nightly'"},
      {"schedules:\n  - name: a\n    cron: '@daily'\n",
       "kiln.yaml:2: 'schedules[0].run' is missing: what the schedule starts (run: role, repo, "
       "task; or improve: role, repo)"},
      {"schedules:\n  - name: a\n    cron: '@daily'\n" + run +
           "    improve: {role: triage, repo: acme/app}\n",
       "kiln.yaml:5: 'schedules[0].improve' and 'run' are both given; a schedule starts one"},
      {"schedules:\n  - name: a\n    cron: '@daily'\n    improve: {role: verify, repo: acme/app}\n",
       "kiln.yaml:4: 'schedules[0].improve.role' must be triage, spec, implement or review"},
      {"schedules:\n  - name: a\n    cron: '@daily'\n    improve: {role: triage}\n",
       "kiln.yaml:4: 'schedules[0].improve.repo' must name the forge repository"},
      {"schedules:\n  - name: a\n    cron: '@daily'\n    improve: {role: triage, repo: a/b, "
       "tasks: 0}\n",
       "kiln.yaml:4: 'schedules[0].improve.tasks' must be a positive integer"},
      {"schedules:\n  - name: a\n    cron: '@daily'\n    run: {role: triage, repo: /r}\n",
       "kiln.yaml:4: 'schedules[0].run.task' must be given and not empty"},
      {"schedules:\n  - name: a\n    cron: '@daily'\n    run: {role: triage, repo: /r, task: t, "
       "image: x}\n",
       "kiln.yaml:4: 'schedules[0].run.image' is not a known field"},
      {"schedules:\n  - name: a\n    cron: '@daily'\n    every: 5m\n" + run,
       "kiln.yaml:4: 'schedules[0].every' is not a known field"},
      {"schedules:\n  - name: a\n    cron: '@daily'\n    jitter: soon\n" + run,
       "kiln.yaml:4: 'schedules[0].jitter'"},
  };
  for (const Case& k : cases) {
    auto bad = Parse(k.yaml, "kiln.yaml");
    ASSERT_FALSE(bad.ok()) << k.yaml;
    EXPECT_TRUE(bad.error().message().starts_with(k.message)) << bad.error().message();
  }
}

}  // namespace
}  // namespace kiln::config
