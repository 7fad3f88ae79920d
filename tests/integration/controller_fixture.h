// The fixture of the suites that drive the controller end to end (kiln run,
// serve, runs) on a small local repository with test skills, a scripted
// model server and the test's own store, logs and secrets.
// Header-only: the binaries' paths come from the suite's compile definitions
// (kiln_add_e2e_test in tests/integration/CMakeLists.txt).
#pragma once

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/factory_test.h"

namespace kiln::testing {

inline void Git(const std::string& dir, const std::string& args) {
  std::string cmd =
      "git -C '" + dir + "' -c user.name=t -c user.email=t@t " + args + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// The page tests' browser: Debian's chromium (or $KILN_CHROMIUM), driven by
// node and tests/browser's playwright-core; "" when any of them is missing,
// and the test skips with kNoBrowser.
inline std::string Chromium() {
  const std::string chromium =
      std::getenv("KILN_CHROMIUM") ? std::getenv("KILN_CHROMIUM") : "/usr/bin/chromium";
  if (::access(chromium.c_str(), X_OK) != 0 ||
      !std::filesystem::exists(std::string(KILN_SOURCE_DIR) +
                               "/tests/browser/node_modules/playwright-core") ||
      ::access("/usr/bin/node", X_OK) != 0) {
    return "";
  }
  return chromium;
}
constexpr char kNoBrowser[] =
    "no headless browser here: needs Debian's chromium (or $KILN_CHROMIUM), node and "
    "tests/browser/node_modules (npm ci); scripts/test.sh installs them";

class Controller : public FactoryTest {
 protected:
  void SetUp() override {
    FactoryTest::SetUp();
    if (IsSkipped()) return;
    repo_ = root_ + "/repo";
    std::filesystem::create_directories(repo_ + "/src");
    WriteAll(repo_ + "/README.md", "hello\n");
    WriteAll(repo_ + "/src/main.c", "int main(void) { return 0; }\n");
    Git(repo_, "init -q -b main");
    Git(repo_, "add -A");
    Git(repo_, "commit -q -m initial");
    skills_ = root_ + "/skills";
    Skill("edit", "");
    Skill("secret", "secrets: [GRANTED]\n");
    Skill("greedy", "secrets: [NOT_THERE]\n");
    secrets_ = root_ + "/secrets.yaml";
    WriteAll(secrets_, "GRANTED: granted-value-123\nOTHER: other-value-456\n", 0600);
  }

  void Skill(const std::string& role, const std::string& extra) {
    std::filesystem::create_directories(skills_ + "/" + role);
    WriteAll(skills_ + "/" + role + "/SKILL.md",
             "---\nname: " + role + "\ndescription: test role " + role + "\n" +
                 "budgets: {max_turns: 10}\n" + extra + "---\nYou are a test agent.\n");
  }

  // Starts the scripted model server and writes the configuration.
  std::string Setup(const std::string& script, const std::string& extra_config = "") {
    WriteAll(root_ + "/script.yaml", script);
    auto server = modelserver::ServerProcess::Start(KILN_MODEL_SERVER_BINARY,
                                                    root_ + "/script.yaml", root_ + "/record");
    EXPECT_TRUE(server.ok()) << server.error().message();
    server_ = std::move(*server);
    // The state directory (sandboxes, runs, caches) is the process's; the
    // store and the logs are the test's own.
    std::string cfg =
        "state_dir: " + TestStateDir() + "\n" + "store: " + root_ + "/kiln.db\n" +
        "log_dir: " + root_ + "/logs\n" + "skills_dir: " + skills_ + "\n" +
        "secrets_file: " + secrets_ + "\n" + "runtime_binary: " + KILN_RUNTIME_BINARY + "\n" +
        "forward_binary: " + KILN_FORWARD_BINARY + "\n" + "poll_interval: 100ms\n" +
        (Contains(extra_config, "pipeline:") ? "" : "pipeline: {api_listen: \"\"}\n") +
        "retry: {initial_backoff: 100ms}\n" + "sandbox: {cgroup_parent: " + TestCgroupParent() +
        ", timeout: 2m, grace: 2s, memory: 1G}\n" + "models: {anthropic: {upstream: \"" +
        server_->anthropic_url() + "\"}}\n" + extra_config;
    if (!Contains(extra_config, "metrics_listen")) cfg += "metrics_listen: \"\"\n";
    config_ = root_ + "/kiln.yaml";
    WriteAll(config_, cfg);
    return config_;
  }

  Outcome Kiln(std::vector<std::string> args) {
    args.insert(args.begin(), KilnBinary());
    return kiln::testing::Run(args);
  }

  Outcome RunRole(const std::string& role, const std::string& task = "do the task",
                  const std::string& commit = "main") {
    return Kiln({"run", "--config", config_, "--repo", repo_, "--commit", commit, "--role", role,
                 "--task", task, "--json"});
  }

  nlohmann::json RunJson(const Outcome& o) {
    nlohmann::json j = nlohmann::json::parse(o.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << "stdout: " << o.out << "\nstderr: " << o.err;
    return j;
  }

  // The session log's records, as JSON.
  std::vector<nlohmann::json> Records(const std::string& log) {
    std::vector<nlohmann::json> out;
    std::ifstream in(log);
    std::string line;
    while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  void ExpectLogVerifies(const std::string& log) {
    Outcome v = Kiln({"log", "verify", "--key-dir", TestStateDir() + "/keys", log});
    EXPECT_EQ(v.status, 0) << v.out << v.err;
  }

  nlohmann::json Show(const std::string& id) {
    Outcome o = Kiln({"runs", "show", "--config", config_, "--json", id});
    EXPECT_EQ(o.status, 0) << o.err;
    return nlohmann::json::parse(o.out, nullptr, false);
  }

  // Polls `kiln runs show` until pred holds (30 s at most).
  nlohmann::json WaitFor(const std::string& id,
                         const std::function<bool(const nlohmann::json&)>& pred) {
    nlohmann::json j;
    for (int i = 0; i < 300; ++i) {
      j = Show(id);
      if (j.is_object() && pred(j)) return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "timed out waiting; last: " << j.dump();
    return j;
  }

  std::string repo_, skills_, secrets_;
};

}  // namespace kiln::testing
