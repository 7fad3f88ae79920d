#include "sandbox/cli.h"

#include <gtest/gtest.h>

namespace kiln::sandbox::cli {
namespace {

// Every field away from its default: what RunArgs writes, `kiln sandbox
// run`'s own parser reads back unchanged, so the controller's sandboxes are
// the ones it asked for.
TEST(SandboxRunArgs, TheParserReadsBackWhatTheEncoderWrites) {
  Spec s;
  s.argv = {"/opt/kiln/bin/kiln-runtime", "--spec", "/run/kiln/spec.json", "--", "-x"};
  s.image = "/var/lib/kiln/images/debian";
  s.binds = {{"/srv/a", "/a", true}, {"/srv/b", "/b", false}};
  s.tmpfs = {{"/tmp", 1 << 20}, {"/scratch", 64ull << 20}};
  s.workspace = "/var/lib/kiln/runs/r1/ws";
  s.env = {"HOME=/home/agent", "EMPTY=", "EQ=a=b"};
  s.workdir = "/workspace/src";
  s.hostname = "run-1";
  s.uid = 1234;
  s.gid = 4321;
  s.limits.memory_bytes = 3ull << 30;
  s.limits.pids = std::nullopt;
  s.limits.cpus = 1.0 / 3;
  s.limits.nofile = 2048;
  s.limits.fsize_bytes = 5 << 20;
  s.limits.timeout_ms = 90'001;
  s.limits.grace_ms = 1500;
  s.limits.rootfs_bytes = 2ull << 30;
  s.seccomp_policy = "/etc/kiln/seccomp.policy";
  s.seccomp_log = true;
  s.pass_fds = {5, 9};
  s.state_dir = "/var/lib/kiln-test";
  s.cgroup_root = "/sys/fs/cgroup";
  s.cgroup_parent = "kiln-test";
  s.id = "r1-1";

  std::vector<std::string> args = RunArgs(s, "/var/lib/kiln/runs/r1/report.json");
  ASSERT_GE(args.size(), 2u);
  EXPECT_EQ(args[0], "sandbox");
  EXPECT_EQ(args[1], "run");
  std::string report;
  auto back = ParseRunArgs(args, &report);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_TRUE(*back == s);
  EXPECT_EQ(back->limits.cpus, s.limits.cpus);
  EXPECT_EQ(back->argv, s.argv);
  EXPECT_EQ(report, "/var/lib/kiln/runs/r1/report.json");
}

TEST(SandboxRunArgs, WithoutACgroupTheProcessCapStays) {
  Spec s;
  s.argv = {"true"};
  s.use_cgroup = false;
  s.limits.memory_bytes = std::nullopt;
  s.limits.pids = 64;  // RLIMIT_NPROC
  auto back = ParseRunArgs(RunArgs(s, ""), nullptr);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_TRUE(*back == s);
  EXPECT_EQ(back->limits.pids, 64u);
}

TEST(SandboxRunArgs, BadArgumentsNameTheOption) {
  auto bad = ParseRunArgs({"sandbox", "run", "--memory", "lots", "--", "true"}, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("--memory"), std::string::npos) << bad.error().message();
  bad = ParseRunArgs({"sandbox", "run", "--no-such-option", "--", "true"}, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("--no-such-option"), std::string::npos)
      << bad.error().message();
}

}  // namespace
}  // namespace kiln::sandbox::cli
