// The fixture of the suites that drive kiln's runs end to end through the
// real kiln binary (controller_e2e_test; pipeline_e2e_test on the local forge,
// github_e2e_test on the GitHub double): a root directory, the scripted model
// server, the factory's configuration, and a host that must be left as it was
// found.
// Header-only: the binaries' paths come from each suite's compile definitions
// (kiln_add_e2e_test in tests/integration/CMakeLists.txt).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "tests/modelserver/process.h"
#include "tests/support/kiln_runner.h"

namespace kiln::testing {

class FactoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the controller mounts workspaces: it needs root";
    before_ = Snapshot();
    root_ = tmp_.path();
  }

  void TearDown() override {
    if (::geteuid() != 0) return;
    Stop();
    // Nothing the runs made may remain: mounts, cgroups, sandbox records,
    // run directories, processes.
    EXPECT_EQ(Diff(before_, Snapshot()), "");
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(TestStateDir() + "/runs", ec)) {
      ADD_FAILURE() << "left behind: " << e.path();
    }
    EXPECT_TRUE(ProcessesMatching(TestStateDir()).empty());
  }

  // Stops what the suite started, before the host is compared.
  virtual void Stop() {}

  // Starts the scripted model server with script_path and writes config_:
  // the settings every suite shares, then extra (YAML lines of the suite's
  // own: its pipeline, its forge).
  void Configure(const std::string& script_path, const std::string& extra) {
    auto server =
        modelserver::ServerProcess::Start(KILN_MODEL_SERVER_BINARY, script_path, root_ + "/record");
    ASSERT_TRUE(server.ok()) << server.error().message();
    server_ = std::move(*server);
    config_ = root_ + "/kiln.yaml";
    std::ofstream(config_) << "state_dir: " << TestStateDir() << "\nstore: " << root_
                           << "/kiln.db\nlog_dir: " << root_ << "/logs\ncache_dir: " << root_
                           << "/cache\nskills_dir: " << KILN_SOURCE_DIR
                           << "/skills\nruntime_binary: " << KILN_RUNTIME_BINARY
                           << "\nforward_binary: " << KILN_FORWARD_BINARY
                           << "\npoll_interval: 100ms\nmetrics_listen: \"\"\n"
                           << "sandbox: {cgroup_parent: " << TestCgroupParent()
                           << ", timeout: 3m, grace: 2s, memory: 1G}\n"
                           << "models: {scripted: {provider: anthropic, upstream: \""
                           << server_->anthropic_url() << "\", api_key_env: \"\"}}\n"
                           << "model: {provider: scripted, name: scripted}\n"
                           << extra;
  }

  TempDir tmp_;
  HostState before_;
  std::string root_, config_;
  std::unique_ptr<modelserver::ServerProcess> server_;
};

}  // namespace kiln::testing
