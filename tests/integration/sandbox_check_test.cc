// `kiln sandbox check` on this host, as root, as nobody, without cgroups and
// from inside a kiln sandbox (where kiln cannot isolate at all): the verdict,
// the exit status, the layer that is missing and its fix, against evidence
// the test gathers by other means; and the host as it was.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/sandbox_suite.h"
#include "tests/support/host_features.h"
#include "tests/support/kiln_runner.h"

namespace kiln::testing {
namespace {

namespace fs = std::filesystem;

class SandboxCheckTest : public SandboxSuite {
 protected:
  // `kiln sandbox check --json` with the test's state directory and cgroup
  // parent, plus args; the parsed report in *j.
  Outcome Check(const std::vector<std::string>& args, nlohmann::json* j,
                const RunOptions& options = {}) {
    std::vector<std::string> argv = {KilnBinary(), "sandbox", "check", "--json"};
    if (!options.as_uid) {
      argv.insert(argv.end(),
                  {"--state-dir", TestStateDir(), "--cgroup-parent", TestCgroupParent()});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    Outcome o = kiln::testing::Run(argv, options);
    *j = nlohmann::json::parse(o.out, nullptr, false);
    return o;
  }

  static const nlohmann::json& Layer(const nlohmann::json& j, const std::string& id) {
    for (const auto& l : j["layers"]) {
      if (l["id"] == id) return l;
    }
    static const nlohmann::json none = {{"state", "(no such layer)"}, {"fix", ""}, {"detail", ""}};
    return none;
  }
  static const nlohmann::json& HostLine(const nlohmann::json& j, const std::string& id) {
    for (const auto& l : j["host"]) {
      if (l["id"] == id) return l;
    }
    static const nlohmann::json none = {{"state", "(no such line)"}, {"detail", ""}};
    return none;
  }
};

TEST_F(SandboxCheckTest, AsRootEveryLayerIsInForce) {
  nlohmann::json j;
  Outcome o = Check({}, &j);
  ASSERT_EQ(o.status, 0) << o.out << o.err;
  ASSERT_FALSE(j.is_discarded()) << o.out;
  EXPECT_TRUE(j["can_isolate"].get<bool>());
  // Whether root gets cgroup limits here, by another way: a sandbox run with
  // a memory limit.
  bool limits = Sandbox({"--memory", "64M"}, {"true"}).status == 0;
  EXPECT_EQ(j["cgroup_limits"].get<bool>(), limits);
  ASSERT_EQ(j["layers"].size(), 7u);
  for (const auto& l : j["layers"]) {
    if (l["id"] == "cgroup" && !limits) continue;
    EXPECT_EQ(l["state"], "in force") << l.dump();
  }
  // What the trial's command saw: its own user namespace, mapped as kiln
  // maps it as root, and an overlay root.
  EXPECT_EQ(j["trial"]["inside"]["uid_map"], "0 200000000 65536");
  EXPECT_EQ(j["trial"]["inside"]["root"], "overlayfs");
  EXPECT_NE(j["trial"]["inside"]["ns/pid"], fs::read_symlink("/proc/self/ns/pid").string());
  // util-linux agrees about user namespaces.
  bool unshare = std::system("unshare --user --map-root-user true >/dev/null 2>&1") == 0;
  EXPECT_EQ(HostLine(j, "user_namespaces")["state"], unshare ? "present" : "absent");
  // The text form says the same in words.
  Outcome text = kiln::testing::Run({KilnBinary(), "sandbox", "check", "--state-dir",
                                     TestStateDir(), "--cgroup-parent", TestCgroupParent()});
  EXPECT_EQ(text.status, 0) << text.err;
  EXPECT_TRUE(Contains(text.out, limits ? "kiln can isolate on this host: every layer is in force"
                                        : "kiln can isolate on this host, without cgroup limits"))
      << text.out;
}

TEST_F(SandboxCheckTest, AsNobodyCgroupLimitsAreMissingWithTheirFix) {
  KILN_REQUIRE_ROOTLESS_HOST();
  TempDir home;
  ASSERT_EQ(::chown(home.path().c_str(), 65534, 65534), 0);
  RunOptions nobody;
  nobody.as_uid = nobody.as_gid = 65534;
  nlohmann::json j;
  Outcome o = Check({"--state-dir", home.path() + "/state"}, &j, nobody);
  ASSERT_EQ(o.status, 0) << o.out << o.err;
  EXPECT_TRUE(j["can_isolate"].get<bool>());
  EXPECT_FALSE(j["root"].get<bool>());
  EXPECT_EQ(Layer(j, "cgroup")["state"], "missing");
  EXPECT_TRUE(Contains(Layer(j, "cgroup")["fix"], "Delegate=yes")) << Layer(j, "cgroup");
  EXPECT_EQ(Layer(j, "user_namespace")["state"], "in force");
  EXPECT_EQ(j["trial"]["inside"]["uid_map"], "1000 65534 1");
}

TEST_F(SandboxCheckTest, WithoutACgroupHierarchyIsolationGoesOnWithoutLimits) {
  nlohmann::json j;
  Outcome o = Check({"--cgroup-root", "/tmp"}, &j);
  ASSERT_EQ(o.status, 0) << o.out << o.err;
  EXPECT_TRUE(j["can_isolate"].get<bool>());
  EXPECT_FALSE(j["cgroup_limits"].get<bool>());
  const auto& cg = Layer(j, "cgroup");
  EXPECT_EQ(cg["state"], "missing");
  EXPECT_TRUE(Contains(cg["detail"], "no cgroup found")) << cg;
  EXPECT_TRUE(Contains(cg["fix"], "mount the cgroup hierarchy")) << cg;
  EXPECT_EQ(HostLine(j, "cgroups")["state"], "absent");
}

TEST_F(SandboxCheckTest, InsideASandboxKilnCannotIsolateAndSaysWhy) {
  // kiln's own filter refuses every namespace: a host where kiln runs in a
  // locked-down container looks like this.
  std::string bin = fs::path(KilnBinary()).parent_path().string();
  auto o = Sandbox({"--bind", bin + ":/k:ro"},
                   {"/k/kiln", "sandbox", "check", "--json", "--state-dir", "/tmp/state"});
  ASSERT_EQ(o.status, 1) << "exit 1: kiln cannot isolate here\n" << o.out << o.err;
  auto j = nlohmann::json::parse(o.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << o.out;
  EXPECT_FALSE(j["can_isolate"].get<bool>());
  EXPECT_FALSE(j["trial"]["ran"].get<bool>());
  const auto& userns = Layer(j, "user_namespace");
  EXPECT_EQ(userns["state"], "missing");
  EXPECT_TRUE(Contains(userns["detail"], "Operation not permitted")) << userns;
  EXPECT_TRUE(Contains(userns["fix"], "already runs under a seccomp filter")) << userns;
  EXPECT_TRUE(Contains(HostLine(j, "own_seccomp")["detail"], "Seccomp: 2"));
  EXPECT_EQ(HostLine(j, "user_namespaces")["state"], "unknown")
      << "a refusal by a filter does not prove the kernel lacks user namespaces";
}

TEST_F(SandboxCheckTest, UnknownOptionIsAUsageError) {
  Outcome o = kiln::testing::Run({KilnBinary(), "sandbox", "check", "--frobnicate"});
  EXPECT_EQ(o.status, 2);
  EXPECT_TRUE(Contains(o.err, "--frobnicate")) << o.err;
  EXPECT_EQ(o.out, "");
}

}  // namespace
}  // namespace kiln::testing
