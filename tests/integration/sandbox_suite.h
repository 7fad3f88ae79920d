// The fixture of the suites that drive `kiln sandbox` as root: skipped
// unless root (rootless is tested by dropping to nobody), and failed when a
// test leaves a mount, cgroup or sandbox record behind.
#pragma once

#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/support/kiln_runner.h"

namespace kiln::testing {

class SandboxSuite : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0)
      GTEST_SKIP() << "the sandbox suites run as root (rootless is tested by dropping to nobody)";
    before_ = Snapshot();
  }
  void TearDown() override {
    if (IsSkipped()) return;
    EXPECT_EQ(Diff(before_, Snapshot()), "") << "the sandbox left something behind";
  }

 private:
  HostState before_;
};

}  // namespace kiln::testing
