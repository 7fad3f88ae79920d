// A fleet: several `kiln serve` processes, each with a state directory of its
// own (its runs, caches, signing key and logs), as separate runner hosts,
// sharing one store on a real PostgreSQL server (the test server of the
// CTest fixture kiln_postgres, a database of the test's own). Real sandboxes,
// the real kiln-runtime and the scripted model server.
#include <signal.h>

#include <atomic>
#include <map>
#include <thread>

#include "controller/store/postgres.h"
#include "controller/store/store.h"
#include "tests/integration/controller_fixture.h"
#include "tests/integration/pipeline_fixture.h"
#include "tests/support/net.h"
#include "tests/support/postgres.h"

namespace kiln::testing {
namespace {

// The suite's configuration file, with key's value replaced.
void SetKey(std::string* cfg, const std::string& key, const std::string& value) {
  const size_t at = cfg->find(key + ": ");
  ASSERT_NE(at, std::string::npos) << key;
  cfg->replace(at, cfg->find('\n', at) - at, key + ": " + value);
}

// Hosts on separate machines have cgroup trees of their own; on this one,
// each host's sandboxes go below a parent of its own, so that one host's
// start-up sweep never takes another's sandboxes for its own leftovers.
void SetCgroupParent(std::string* cfg, const std::string& host) {
  const std::string key = "cgroup_parent: " + TestCgroupParent();
  const size_t at = cfg->find(key);
  ASSERT_NE(at, std::string::npos);
  cfg->insert(at + key.size(), "/" + host);
}

// Removes the hosts' cgroup parents (the test's scaffolding, as the test's
// own parent is) in every hierarchy: rmdir succeeds only on an empty one, so
// a sandbox cgroup left below it still shows in the host's snapshot.
void RemoveCgroupParents(const std::vector<std::string>& hosts) {
  std::error_code ec;
  std::vector<std::string> roots = {"/sys/fs/cgroup"};
  for (const auto& e : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    if (e.is_directory()) roots.push_back(e.path().string());
  }
  for (const auto& root : roots) {
    for (const auto& h : hosts) ::rmdir((root + "/" + TestCgroupParent() + "/" + h).c_str());
  }
}

// Writes host name's configuration beside root: the suite's (shared), with
// the host's own state directory, log directory, name and cgroup parent and
// the fleet's store. Returns {its path, its state directory}.
std::pair<std::string, std::string> WriteHostConfig(const std::string& shared,
                                                    const std::string& root,
                                                    const std::string& name,
                                                    const std::string& store_url) {
  const std::string state = TestStateDir() + "/hosts/" + name;
  std::filesystem::create_directories(state);
  std::filesystem::permissions(state, std::filesystem::perms(0755));
  std::string cfg = ReadAll(shared);
  SetKey(&cfg, "state_dir", state);
  SetKey(&cfg, "store", "\"" + store_url + "\"");
  SetKey(&cfg, "log_dir", root + "/" + name + "-logs");
  cfg += "host_name: " + name + "\n";
  SetCgroupParent(&cfg, name);
  const std::string path = root + "/" + name + ".yaml";
  WriteAll(path, cfg);
  return {path, state};
}

class Fleet : public Controller {
 protected:
  void SetUp() override {
    Controller::SetUp();
    if (IsSkipped()) return;
    auto server = TestPostgres();
    if (!server.skip.empty()) GTEST_SKIP() << server.skip;
    database_.emplace(server.url);
    ASSERT_FALSE(database_->url().empty());
  }

  // A host's configuration: the suite's, with the host's own state and log
  // directories and the fleet's store.
  std::string Host(const std::string& name) {
    auto [path, state] = WriteHostConfig(config_, root_, name, database_->url());
    states_[name] = state;
    return path;
  }

  std::unique_ptr<store::Store> OpenStore() {
    auto s = store::Open(database_->url());
    EXPECT_TRUE(s.ok()) << s.error().message();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // Queues n runs of the role edit, on repos in turn.
  void Enqueue(store::Store& store, int n, const std::vector<std::string>& repos) {
    for (int i = 0; i < n; ++i) {
      store::RunRequest r;
      r.role = "edit";
      r.repo = repos[static_cast<size_t>(i) % repos.size()];
      r.commit = "main";
      r.task = "task " + std::to_string(i);
      r.requested_by = "test";
      ASSERT_TRUE(store.Enqueue(r, 1).ok());
    }
  }

  // Every run of the store, once all have ended (or after 90 s).
  std::vector<store::Run> WhenAllEnded(store::Store& store) {
    std::vector<store::Run> runs;
    for (int i = 0; i < 900; ++i) {
      store::ListFilter f;
      f.limit = 0;
      auto all = store.List(f);
      EXPECT_TRUE(all.ok()) << all.error().message();
      if (!all.ok()) break;
      runs = *all;
      if (std::all_of(runs.begin(), runs.end(),
                      [](const store::Run& r) { return store::IsTerminal(r.status); })) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return runs;
  }

  std::optional<PostgresDatabase> database_;
  std::map<std::string, std::string> states_;  // host name -> its state directory
};

// 200 runs queued at once on three repositories, three hosts claiming them:
// each run runs exactly once (one attempt, one claim, one session log), the
// fleet's, each repository's and each host's limits hold at every moment the
// test samples, every host takes part, and every log verifies with the key
// of the host that ran it. The hosts may run 6 at once, the fleet 5: the
// fleet's limit binds, and any two hosts leave the third a slot.
TEST_F(Fleet, ThreeHostsRunTwoHundredRunsEachExactlyOnceUnderSharedLimits) {
  Setup("default: {tool_calls: [{name: submit, input: {summary: done}}]}\n",
        "concurrency: {max_runs: 5, max_runs_per_repo: 2, host_max_runs: 2, lease: 10s}\n");
  std::vector<std::string> repos = {repo_};
  for (const char* name : {"/other", "/third"}) {
    repos.push_back(root_ + name);
    std::filesystem::copy(repo_, repos.back(), std::filesystem::copy_options::recursive);
  }
  const std::vector<std::string> hosts = {"a", "b", "c"};
  std::vector<std::string> configs;
  for (const auto& h : hosts) configs.push_back(Host(h));

  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  constexpr int kRuns = 200;
  Enqueue(*store, kRuns, repos);

  // What the store shows while the fleet works: the most runs running at
  // once, overall, per repository and per host.
  std::atomic<bool> done{false};
  int most = 0, most_per_repo = 0, most_per_host = 0;
  std::thread sampler([&] {
    auto look = OpenStore();
    while (!done) {
      store::ListFilter f;
      f.status = store::Status::kRunning;
      f.limit = 0;
      auto running = look->List(f);
      if (running.ok()) {
        std::map<std::string, int> per_repo, per_host;
        for (const auto& r : *running) {
          most_per_repo = std::max(most_per_repo, ++per_repo[r.request.repo]);
          most_per_host = std::max(most_per_host, ++per_host[store::OwnerHost(r.owner)]);
        }
        most = std::max(most, static_cast<int>(running->size()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::vector<store::Run> runs;
  {
    std::vector<std::unique_ptr<Daemon>> daemons;
    for (size_t i = 0; i < hosts.size(); ++i) {
      daemons.push_back(std::make_unique<Daemon>(configs[i], root_ + "/" + hosts[i] + ".log"));
    }
    runs = WhenAllEnded(*store);
  }
  done = true;
  sampler.join();

  ASSERT_EQ(runs.size(), static_cast<size_t>(kRuns));
  std::map<std::string, int> by_host;
  std::set<std::string> logs;
  for (const auto& r : runs) {
    EXPECT_EQ(r.status, store::Status::kSucceeded) << r.id << ": " << r.error;
    EXPECT_EQ(r.attempt, 1) << r.id;
    EXPECT_EQ(r.epoch, 1) << r.id;
    EXPECT_FALSE(r.log_path.empty()) << r.id;
    logs.insert(r.log_path);
    for (const auto& h : hosts) {
      if (r.log_path.starts_with(root_ + "/" + h + "-logs/")) ++by_host[h];
    }
  }
  std::printf(
      "%d runs: hosts a %d, b %d, c %d; at most %d running, %d of one repository, %d on one "
      "host\n",
      kRuns, by_host["a"], by_host["b"], by_host["c"], most, most_per_repo, most_per_host);
  EXPECT_EQ(logs.size(), static_cast<size_t>(kRuns));
  EXPECT_LE(most, 5);
  EXPECT_LE(most_per_repo, 2);
  EXPECT_LE(most_per_host, 2);
  EXPECT_GE(most, 3) << "no two hosts ever ran at once";
  size_t log_files = 0;
  for (const auto& h : hosts) {
    EXPECT_GT(by_host[h], 0) << "host " << h << " ran nothing";
    for (const auto& e : std::filesystem::directory_iterator(root_ + "/" + h + "-logs")) {
      if (e.path().extension() == ".log") ++log_files;
    }
  }
  // One session log per run: nothing ran twice, on any host.
  EXPECT_EQ(log_files, static_cast<size_t>(kRuns));
  for (const auto& r : runs) {
    for (const auto& h : hosts) {
      if (!r.log_path.starts_with(root_ + "/" + h + "-logs/")) continue;
      Outcome v = Kiln({"log", "verify", "--key-dir", states_[h] + "/keys", r.log_path});
      EXPECT_EQ(v.status, 0) << r.log_path << ": " << v.out << v.err;
    }
  }
  for (const auto& h : hosts) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(states_[h] + "/runs", ec)) {
      ADD_FAILURE() << "left behind: " << e.path();
    }
  }
  RemoveCgroupParents(hosts);
  if (HasFailure()) {
    for (const auto& h : hosts) {
      ADD_FAILURE() << "host " << h << ":\n" << ReadAll(root_ + "/" + h + ".log");
    }
  }
}

// The fleet's PostgreSQL server stopped for 10 s while runs are in flight,
// then started again: the hosts wait for it and carry on. Every run ends
// once, in its first attempt (the outage is shorter than the lease), with one
// log; the writes made during the outage land after it.
TEST_F(Fleet, APostgresOutageMidRunLosesNothingAndDoublesNothing) {
  // A server of this test's own, to stop without disturbing other suites.
  const std::string pg = root_ + "/pg";
  auto script = [&](const std::string& cmd) {
    Outcome o = kiln::testing::Run(
        {std::string(KILN_SOURCE_DIR) + "/scripts/postgres-test-server.sh", cmd, pg});
    EXPECT_EQ(o.status, 0) << cmd << ": " << o.out << o.err;
    return o.status == 0;
  };
  std::filesystem::create_directories(pg);
  ASSERT_TRUE(script("start"));
  struct Stop {
    std::function<bool(const std::string&)> script;
    ~Stop() { script("stop"); }
  } stop{script};
  auto server = TestPostgres(pg);
  ASSERT_TRUE(server.skip.empty()) << server.skip;
  database_.reset();
  database_.emplace(server.url);

  // Each run (a cursor of its own) sleeps once and submits.
  Setup(R"yaml(
conversations:
  - match: "task "
    replies:
      - tool_calls: [{name: shell, input: {command: "sleep 3", timeout_ms: 100000}}]
    default: {tool_calls: [{name: submit, input: {summary: done}}]}
)yaml",
        "concurrency: {lease: 30s}\n");
  const std::vector<std::string> hosts = {"a", "b"};
  std::vector<std::string> configs;
  for (const auto& h : hosts) configs.push_back(Host(h));
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  constexpr int kRuns = 4;
  Enqueue(*store, kRuns, {repo_});
  store.reset();
  int64_t back_ms = 0;
  std::vector<store::Run> runs;
  {
    Daemon a(configs[0], root_ + "/a.log");
    Daemon b(configs[1], root_ + "/b.log");
    for (int i = 0; i < 300 && ProcessesMatching("sleep 3").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_FALSE(ProcessesMatching("sleep 3").empty())
        << ReadAll(root_ + "/a.log") << ReadAll(root_ + "/b.log");
    ASSERT_TRUE(script("down"));
    std::this_thread::sleep_for(std::chrono::seconds(10));
    ASSERT_TRUE(script("up"));
    back_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    store = OpenStore();
    ASSERT_NE(store, nullptr);
    runs = WhenAllEnded(*store);
  }
  ASSERT_EQ(runs.size(), static_cast<size_t>(kRuns));
  bool after_outage = false;
  size_t log_files = 0;
  for (const auto& r : runs) {
    EXPECT_EQ(r.status, store::Status::kSucceeded) << r.id << ": " << r.error;
    EXPECT_EQ(r.attempt, 1) << r.id;
    EXPECT_EQ(r.epoch, 1) << r.id;
    after_outage = after_outage || r.finished_ms >= back_ms;
  }
  // At least one run was in flight across the outage and ended after it,
  // and the hosts saw the server gone (and said so, naming it).
  EXPECT_TRUE(after_outage);
  EXPECT_TRUE(Contains(ReadAll(root_ + "/a.log") + ReadAll(root_ + "/b.log"),
                       "store 'postgres://kiln:***@127.0.0.1:"));
  for (const auto& h : hosts) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(root_ + "/" + h + "-logs", ec)) {
      if (e.path().extension() != ".log") continue;
      ++log_files;
      Outcome v = Kiln({"log", "verify", "--key-dir", states_[h] + "/keys", e.path().string()});
      EXPECT_EQ(v.status, 0) << e.path() << ": " << v.out << v.err;
    }
  }
  EXPECT_EQ(log_files, static_cast<size_t>(kRuns));
  RemoveCgroupParents(hosts);
  if (HasFailure()) {
    for (const auto& h : hosts) {
      ADD_FAILURE() << "host " << h << ":\n" << ReadAll(root_ + "/" + h + ".log");
    }
  }
}

// A host paused (SIGSTOP) past its lease on the fleet's PostgreSQL store,
// then resumed: the other host rescued and finished its run; the paused
// host's late writes are refused by the epoch, and it kills its sandbox at
// once rather than after the command's minute.
TEST_F(Fleet, APausedHostsLateWritesAreRefusedByTheEpoch) {
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "sleep 66", timeout_ms: 100000}}]
default: {tool_calls: [{name: submit, input: {summary: done}}]}
)",
        "concurrency: {lease: 3s}\n");
  const std::string a = Host("a"), b = Host("b");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Enqueue(*store, 1, {repo_});
  std::vector<store::Run> runs;
  {
    Daemon first(a, root_ + "/a.log");
    for (int i = 0; i < 300 && ProcessesMatching("sleep 66").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_FALSE(ProcessesMatching("sleep 66").empty()) << ReadAll(root_ + "/a.log");
    ASSERT_EQ(::kill(first.pid(), SIGSTOP), 0);
    struct Resume {
      pid_t pid;
      ~Resume() { ::kill(pid, SIGCONT); }
    } resume{first.pid()};
    {
      Daemon second(b, root_ + "/b.log");
      runs = WhenAllEnded(*store);
    }
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].status, store::Status::kSucceeded) << runs[0].error;
    EXPECT_EQ(runs[0].attempt, 2);
    EXPECT_EQ(runs[0].epoch, 3);  // a's claim, b's rescue, b's claim
    EXPECT_TRUE(runs[0].owner.starts_with("b/")) << runs[0].owner;
    ASSERT_EQ(::kill(first.pid(), SIGCONT), 0);
    for (int i = 0; i < 100 && !ProcessesMatching("sleep 66").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(ProcessesMatching("sleep 66").empty());
    std::string a_log;
    for (int i = 0; i < 100; ++i) {
      a_log = ReadAll(root_ + "/a.log");
      if (Contains(a_log, "nothing written")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(Contains(a_log, "taken over (epoch 3, ours 1); stopping the sandbox")) << a_log;
    EXPECT_TRUE(Contains(a_log, "this claim was epoch 1: nothing written")) << a_log;
  }
  // The store still holds b's record.
  auto after = store->Get(runs[0].id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status, store::Status::kSucceeded);
  EXPECT_EQ(after->owner, runs[0].owner);
  EXPECT_EQ(after->log_head, runs[0].log_head);
  RemoveCgroupParents({"a", "b"});
  if (HasFailure()) {
    ADD_FAILURE() << "a:\n" << ReadAll(root_ + "/a.log") << "b:\n" << ReadAll(root_ + "/b.log");
  }
}

// A host whose store cannot be used says so once at start-up, naming the
// store with its password hidden, and stops: nothing half started, no
// password in its output.
TEST_F(Fleet, ServeRefusesABadStoreWithOneClearError) {
  Setup("default: {tool_calls: [{name: submit, input: {summary: done}}]}\n");
  const std::string config = Host("a");
  const std::string url = database_->url();  // postgres://kiln:PASSWORD@127.0.0.1:PORT/NAME
  const size_t colon = url.find(':', 11), at = url.find('@');
  const std::string password = url.substr(colon + 1, at - colon - 1);
  const std::string host_port = url.substr(at + 1, url.rfind('/') - at - 1);
  {  // Today's kiln knows up to version N: a store at N + 92 is refused.
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
  }
  auto conn = store::pg::Conn::Connect(url);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE(
      conn->Exec("test", "UPDATE kiln_meta SET value = '99' WHERE key = 'schema_version'").ok());

  struct Case {
    std::string store;
    std::string says;
  };
  const int free_port = kiln::testing::FreePort();
  const std::vector<Case> cases = {
      {"postgres://kiln:" + password + "@127.0.0.1:" + std::to_string(free_port) + "/kiln",
       "store 'postgres://kiln:***@127.0.0.1:" + std::to_string(free_port) +
           "/kiln': cannot connect: connection to server at \"127.0.0.1\", port " +
           std::to_string(free_port) + " failed: Connection refused"},
      {"postgres://kiln:wrong-" + password + "@" + host_port + "/" + database_->name(),
       "password authentication failed for user \"kiln\""},
      {"postgres://kiln:" + password + "@" + host_port + "/no_such_db",
       "database \"no_such_db\" does not exist"},
      {url, "database is version 99, this kiln knows up to"},
  };
  for (const auto& c : cases) {
    std::string cfg = ReadAll(config);
    SetKey(&cfg, "store", "\"" + c.store + "\"");
    WriteAll(config, cfg);
    Outcome o = Kiln({"serve", "--config", config});
    EXPECT_NE(o.status, 0) << c.store;
    EXPECT_TRUE(Contains(o.err, c.says)) << o.err;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
    EXPECT_FALSE(Contains(o.out + o.err, password)) << o.err;
  }
  auto version = conn->Exec("test", "SELECT value FROM kiln_meta WHERE key = 'schema_version'");
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->Text(0, 0), "99");  // refused before anything was written
}

// A run's log stays on the host that ran it. Another host's `kiln runs show`,
// `kiln audit`, run page, `kiln replay` and `kiln runs handoff` fetch it from
// that host's API, with its blobs, signed
// with their own host's key, and use it only once it verifies against the
// key and the head the store holds; a tampered log is refused, naming why,
// and the API answers nobody but the fleet's hosts.
TEST_F(Fleet, AnotherHostsLogIsFetchedVerifiedAndRefusedWhenTampered) {
  Setup("default: {tool_calls: [{name: submit, input: {summary: done}}]}\n",
        "concurrency: {lease: 3s}\n");
  std::vector<std::string> configs;
  std::map<std::string, int> ports;
  for (const std::string h : {"a", "b"}) {
    configs.push_back(Host(h));
    ports[h] = kiln::testing::FreePort();
    std::string cfg = ReadAll(configs.back());
    SetKey(&cfg, "pipeline", "{api_listen: \"127.0.0.1:" + std::to_string(ports[h]) + "\"}");
    WriteAll(configs.back(), cfg);
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  // A task long enough that the records holding it go to blobs.
  store::RunRequest request;
  request.role = "edit";
  request.repo = repo_;
  request.commit = "main";
  request.task = "Read this. " + std::string(80'000, 'x');
  request.requested_by = "test";
  ASSERT_TRUE(store->Enqueue(request, 1).ok());
  std::vector<store::Run> runs;
  {
    Daemon a(configs[0], root_ + "/a.log");
    runs = WhenAllEnded(*store);
    ASSERT_EQ(runs.size(), 1u);
    ASSERT_EQ(runs[0].status, store::Status::kSucceeded) << runs[0].error;
    Daemon b(configs[1], root_ + "/b.log");  // b beats: the store knows its key
    for (int i = 0; i < 100; ++i) {
      auto hosts = store->Hosts();
      if (hosts.ok() && hosts->size() == 2) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const store::Run& run = runs[0];
    const std::string a_log = run.log_path;
    ASSERT_TRUE(a_log.starts_with(root_ + "/a-logs/")) << a_log;

    // b's view: fetched, verified, the same bytes.
    Outcome show = Kiln({"runs", "show", "--config", configs[1], run.id});
    ASSERT_EQ(show.status, 0) << show.err;
    const std::string marker = "verified copy here: ";
    const size_t at = show.out.find(marker);
    ASSERT_NE(at, std::string::npos) << show.out << ReadAll(root_ + "/a.log");
    const std::string copy =
        show.out.substr(at + marker.size(), show.out.find('\n', at) - at - marker.size());
    EXPECT_TRUE(copy.starts_with(states_["b"] + "/fleet-logs/")) << copy;
    EXPECT_EQ(ReadAll(copy), ReadAll(a_log));
    // The long task went to blobs: fetched too, and checked.
    EXPECT_FALSE(std::filesystem::is_empty(std::filesystem::path(copy).parent_path() / "blobs"));
    Outcome audit = Kiln({"audit", "--config", configs[1], "--format", "json", run.id});
    ASSERT_EQ(audit.status, 0) << audit.err;
    json report = json::parse(audit.out, nullptr, false);
    EXPECT_EQ(report["verification"]["verified"], true) << audit.out.substr(0, 2000);

    // b's web view: the run page, from the fetched copy, its log verified
    // with a's key.
    Outcome share = Kiln({"runs", "share", "--config", configs[1], run.id});
    ASSERT_EQ(share.status, 0) << share.err;
    Outcome page = kiln::testing::Run(
        {"/usr/bin/curl", "-s", "--noproxy", "*", share.out.substr(0, share.out.find('\n'))});
    EXPECT_TRUE(Contains(page.out, "✔ verified")) << page.out.substr(0, 4000);
    // b's replay: the run again in a fresh sandbox on b, the model answered
    // from a's log.
    Outcome replay = Kiln({"replay", "--config", configs[1], run.id});
    EXPECT_EQ(replay.status, 0) << replay.out << replay.err;
    EXPECT_TRUE(Contains(replay.out, "identical")) << replay.out;

    // b's hand-back: the work on a branch, the transcript from a's log.
    const std::string mine = root_ + "/mine";
    Outcome handoff = Kiln({"runs", "handoff", "--config", configs[1], run.id, mine});
    ASSERT_EQ(handoff.status, 0) << handoff.out << handoff.err;
    EXPECT_TRUE(Contains(ReadAll(mine + "/kiln-transcript.md"), "Read this.")) << handoff.out;

    // Nobody but a host of the fleet gets a log.
    const std::string name = std::filesystem::path(a_log).filename().string();
    const std::string url =
        "http://127.0.0.1:" + std::to_string(ports["a"]) + "/api/v1/fleet/logs/";
    for (const std::string& header :
         {std::string("Authorization: Bearer x"), std::string("Authorization: KilnHost b 1 00")}) {
      Outcome o = kiln::testing::Run({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w",
                                      "%{http_code}", "--noproxy", "*", "-H", header, url + name});
      EXPECT_EQ(o.out, "401") << header;
    }

    // A log changed on its host after the run: refused, and said why.
    std::string text = ReadAll(a_log);
    const size_t summary = text.find("done");
    ASSERT_NE(summary, std::string::npos);
    text.replace(summary, 4, "DONE");
    WriteAll(a_log, text);
    std::filesystem::remove_all(states_["b"] + "/fleet-logs");
    show = Kiln({"runs", "show", "--config", configs[1], run.id});
    EXPECT_TRUE(Contains(show.out, "not fetched: the session log of run " + run.id)) << show.out;
    EXPECT_TRUE(Contains(show.out, "does not verify")) << show.out;
    audit = Kiln({"audit", "--config", configs[1], "--format", "json", run.id});
    EXPECT_NE(audit.status, 0);
    EXPECT_TRUE(Contains(audit.err, "does not verify")) << audit.err;
    EXPECT_FALSE(std::filesystem::exists(copy));
  }
  RemoveCgroupParents({"a", "b"});
  if (HasFailure()) {
    ADD_FAILURE() << "a:\n" << ReadAll(root_ + "/a.log") << "b:\n" << ReadAll(root_ + "/b.log");
  }
}

// The factory on a fleet of two hosts: the pipeline, the local forge and the
// runs in one PostgreSQL store. The forge's repositories are on storage both
// hosts see (here: the second host's forge directory links to the first's).
class FleetPipeline : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    if (IsSkipped()) return;
    auto server = TestPostgres();
    if (!server.skip.empty()) GTEST_SKIP() << server.skip;
    database_.emplace(server.url);
    ASSERT_FALSE(database_->url().empty());
  }

  // Writes each host's configuration (config_ is then the first's, for the
  // CLI) and the forge's repository.
  void Hosts(const std::string& script, const std::vector<std::string>& names) {
    Configure(script, "pipeline: {api_listen: \"\"}\nconcurrency: {lease: 3s}\n");
    const std::string shared = config_;
    for (const auto& name : names) {
      std::tie(configs_[name], states_[name]) =
          WriteHostConfig(shared, root_, name, database_->url());
      std::string cfg = ReadAll(configs_[name]);
      SetKey(&cfg, "cache_dir", root_ + "/" + name + "-cache");
      WriteAll(configs_[name], cfg);
    }
    config_ = configs_[names.front()];
    for (size_t i = 1; i < names.size(); ++i) {
      fs::create_directory_symlink(states_[names.front()] + "/forge", states_[names[i]] + "/forge");
    }
    repo_ = std::string(kRepo) + "-" + fs::path(root_).filename().string().substr(10);
    fs::create_directories(states_[names.front()] + "/forge");
    Ok({"forge", "init", repo_, "--from", std::string(KILN_SOURCE_DIR) + "/demo/sample",
        "--maintainer", "maintainer"});
  }

  std::optional<PostgresDatabase> database_;
  std::map<std::string, std::string> configs_, states_;
};

// A host killed (SIGKILL) in the middle of a review run: the other host
// rescues the run once its lease ends, runs it again, takes the pipeline's
// lead over and posts the review. The forge sees one review, not two, and
// the killed host, started again, finds the run no longer its own.
TEST_F(FleetPipeline, AKilledHostsReviewIsRescuedAndPostedOnce) {
  const std::string script = root_ + "/script.yaml";
  std::ofstream(script) << R"yaml(
conversations:
  - match: "role review)"
    replies:
      - tool_calls: [{name: shell, input: {command: "sleep 65", timeout_ms: 100000}}]
    default:
      tool_calls:
        - name: submit
          input:
            verdict: request_changes
            summary: "The README change is fine."
            comments: [{path: README.md, line: 9, side: RIGHT, severity: minor, body: "in the diff"}]
)yaml";
  Hosts(script, {"a", "b"});
  const HostState before = Snapshot();
  ASSERT_EQ(OpenDocsPull(), 1);
  Ok({"issue", "comment", "--repo", repo_, "1", "--body", "/kiln review", "--as", "maintainer"});

  auto wait = [](const std::function<bool()>& done, int seconds) {
    for (int i = 0; i < seconds * 10 && !done(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return done();
  };
  json first;
  {
    Daemon a(configs_["a"], root_ + "/a.log");
    ASSERT_TRUE(wait([] { return !ProcessesMatching("sleep 65").empty(); }, 60))
        << ReadAll(root_ + "/a.log");
    auto reviews = Runs("review");
    ASSERT_EQ(reviews.size(), 1u);
    first = reviews[0];
    EXPECT_TRUE(first["owner"].get<std::string>().starts_with("a/")) << first.dump();
    Daemon b(configs_["b"], root_ + "/b.log");
    a.Stop(SIGKILL);
    // The sandbox dies with its host's controller.
    EXPECT_TRUE(wait([] { return ProcessesMatching("sleep 65").empty(); }, 10));
    // b rescues the run after a's lease, runs it, leads, posts the review.
    EXPECT_TRUE(wait([&] { return Pull(1)["reviews"].size() > 0; }, 60))
        << ReadAll(root_ + "/b.log");
    // a comes back: its start-up recovery leaves the run, now b's, alone,
    // and its log sweep closes its own log of the attempt it lost, once that
    // log is older than the sweep's 5 s.
    std::this_thread::sleep_for(std::chrono::seconds(6));
    Daemon again(configs_["a"], root_ + "/a2.log");
    EXPECT_TRUE(
        wait([&] { return Contains(ReadAll(root_ + "/a2.log"), "log recovery: closed"); }, 10))
        << ReadAll(root_ + "/a2.log");
  }
  json pull = Pull(1);
  ASSERT_EQ(pull["reviews"].size(), 1u) << pull.dump(2);
  EXPECT_EQ(pull["reviews"][0]["verdict"], "request_changes");
  auto reviews = Runs("review");
  ASSERT_EQ(reviews.size(), 1u);
  json run = Json({"runs", "show", reviews[0]["id"]});
  EXPECT_EQ(run["status"], "succeeded") << run.dump();
  EXPECT_EQ(run["attempt"], 2) << run.dump();
  EXPECT_EQ(run["epoch"], 3) << run.dump();  // a's claim, b's rescue, b's claim
  EXPECT_TRUE(run["owner"].get<std::string>().starts_with("b/")) << run.dump();
  EXPECT_TRUE(Contains(run["log_path"], root_ + "/b-logs/")) << run.dump();
  EXPECT_TRUE(
      Contains(ReadAll(root_ + "/b.log"), "rescued from " + first["owner"].get<std::string>()))
      << ReadAll(root_ + "/b.log");
  EXPECT_FALSE(
      Contains(ReadAll(root_ + "/a2.log"), "recovery: run " + run["id"].get<std::string>()))
      << ReadAll(root_ + "/a2.log");
  // Each host's logs verify with its own key; b never wrote to a's.
  Outcome vb = kiln::testing::Run({KilnBinary(), "log", "verify", "--key-dir",
                                   states_["b"] + "/keys", run["log_path"].get<std::string>()});
  EXPECT_EQ(vb.status, 0) << vb.out << vb.err;
  // a's log of the lost attempt: closed by a itself, after the fact.
  std::string last;
  {
    std::ifstream in(first["log_path"].get<std::string>());
    for (std::string line; std::getline(in, line);) last = line;
  }
  json end = json::parse(last, nullptr, false);
  EXPECT_EQ(end.value("type", ""), "run.end") << last;
  EXPECT_EQ(end["payload"].value("status", ""), "error") << last;
  for (const auto& e : fs::directory_iterator(root_ + "/a-logs")) {
    if (e.path().extension() != ".log") continue;
    Outcome va = kiln::testing::Run(
        {KilnBinary(), "log", "verify", "--key-dir", states_["a"] + "/keys", e.path().string()});
    EXPECT_EQ(va.status, 0) << e.path() << ": " << va.out << va.err;
  }
  for (const auto& [name, state] : states_) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state + "/runs", ec)) {
      ADD_FAILURE() << "left behind on " << name << ": " << e.path();
    }
  }
  RemoveCgroupParents({"a", "b"});
  EXPECT_EQ(Diff(before, Snapshot()), "");
  if (HasFailure()) {
    for (const char* log : {"a.log", "b.log", "a2.log"}) {
      ADD_FAILURE() << log << ":\n" << ReadAll(root_ + "/" + log);
    }
  }
}

}  // namespace
}  // namespace kiln::testing
