// A fleet: several `kiln serve` processes, each with a state directory of its
// own (its runs, caches, signing key and logs), as separate runner hosts,
// sharing one store on a real PostgreSQL server (the test server of the
// CTest fixture kiln_postgres, a database of the test's own). Real sandboxes,
// the real kiln-runtime and the scripted model server.
#include <atomic>
#include <map>
#include <thread>

#include "controller/store/store.h"
#include "tests/integration/controller_fixture.h"
#include "tests/support/postgres.h"

namespace kiln::testing {
namespace {

using nlohmann::json;

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
    const std::string state = TestStateDir() + "/hosts/" + name;
    std::filesystem::create_directories(state);
    std::filesystem::permissions(state, std::filesystem::perms(0755));
    std::string cfg = ReadAll(config_);
    auto replace = [&](const std::string& key, const std::string& value) {
      const size_t at = cfg.find(key + ": ");
      ASSERT_NE(at, std::string::npos) << key;
      cfg.replace(at, cfg.find('\n', at) - at, key + ": " + value);
    };
    replace("state_dir", state);
    replace("store", "\"" + database_->url() + "\"");
    replace("log_dir", root_ + "/" + name + "-logs");
    const std::string path = root_ + "/" + name + ".yaml";
    WriteAll(path, cfg);
    states_[name] = state;
    return path;
  }

  std::unique_ptr<store::Store> OpenStore() {
    auto s = store::Open(database_->url());
    EXPECT_TRUE(s.ok()) << s.error().message();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::optional<PostgresDatabase> database_;
  std::map<std::string, std::string> states_;  // host name -> its state directory
};

// 200 runs queued at once on two repositories, three hosts claiming them:
// each run runs exactly once (one attempt, one claim, one session log), the
// global and per-repository limits hold across hosts at every moment the
// test samples, every host takes part, and every log verifies with the key
// of the host that ran it.
TEST_F(Fleet, ThreeHostsRunTwoHundredRunsEachExactlyOnceUnderSharedLimits) {
  Setup("default: {tool_calls: [{name: submit, input: {summary: done}}]}\n",
        "concurrency: {max_runs: 3, max_runs_per_repo: 2, lease: 10s}\n");
  const std::string other = root_ + "/other";
  std::filesystem::copy(repo_, other, std::filesystem::copy_options::recursive);
  const std::vector<std::string> hosts = {"a", "b", "c"};
  std::vector<std::string> configs;
  for (const auto& h : hosts) configs.push_back(Host(h));

  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  constexpr int kRuns = 200;
  for (int i = 0; i < kRuns; ++i) {
    store::RunRequest r;
    r.role = "edit";
    r.repo = i % 2 == 0 ? repo_ : other;
    r.commit = "main";
    r.task = "task " + std::to_string(i);
    r.requested_by = "test";
    ASSERT_TRUE(store->Enqueue(r, 1).ok());
  }

  // What the store shows while the fleet works: the most runs running at
  // once, overall and per repository.
  std::atomic<bool> done{false};
  int most = 0, most_per_repo = 0;
  std::thread sampler([&] {
    auto look = OpenStore();
    while (!done) {
      store::ListFilter f;
      f.status = store::Status::kRunning;
      f.limit = 0;
      auto running = look->List(f);
      if (running.ok()) {
        std::map<std::string, int> per_repo;
        for (const auto& r : *running)
          most_per_repo = std::max(most_per_repo, ++per_repo[r.request.repo]);
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
    for (int i = 0; i < 3000; ++i) {  // 5 minutes at most
      store::ListFilter f;
      f.limit = 0;
      auto all = store->List(f);
      ASSERT_TRUE(all.ok()) << all.error().message();
      runs = *all;
      if (std::all_of(runs.begin(), runs.end(),
                      [](const store::Run& r) { return store::IsTerminal(r.status); })) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
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
    // The owner is "<host name>:<pid>"-like: find which host's logs hold it.
    for (const auto& h : hosts) {
      if (r.log_path.starts_with(root_ + "/" + h + "-logs/")) ++by_host[h];
    }
  }
  std::printf("%d runs: hosts a %d, b %d, c %d; at most %d running, %d of one repository\n", kRuns,
              by_host["a"], by_host["b"], by_host["c"], most, most_per_repo);
  EXPECT_EQ(logs.size(), static_cast<size_t>(kRuns));
  EXPECT_LE(most, 3);
  EXPECT_LE(most_per_repo, 2);
  EXPECT_GE(most, 2) << "the hosts never ran two runs at once";
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
  if (HasFailure()) {
    for (const auto& h : hosts) {
      ADD_FAILURE() << "host " << h << ":\n" << ReadAll(root_ + "/" + h + ".log");
    }
  }
}

}  // namespace
}  // namespace kiln::testing
