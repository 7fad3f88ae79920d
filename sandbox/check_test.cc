// check::Assess on hosts this one is not: facts as the probes and the trial
// sandbox would report them, and the layers, fixes and verdict that follow.
#include "sandbox/check.h"

#include <gtest/gtest.h>

namespace kiln::sandbox::check {
namespace {

using probe::Finding;
using probe::State;

const Finding kYes{State::kPresent, "worked"};

// A root host where everything works, and the trial saw what kiln makes.
Facts GoodRootHost() {
  Facts f;
  f.root = true;
  f.kernel = "6.18.0";
  f.machine = "x86_64";
  f.kiln_path = "/usr/local/bin/kiln";
  f.userns = f.userns_unprivileged = f.overlay = f.overlay_unprivileged = kYes;
  f.seccomp_filter = f.seccomp_notify = f.landlock = f.io_uring = f.userfaultfd = f.mseal = kYes;
  f.i386 = {State::kAbsent, "int 0x80 raised SIGSEGV"};
  f.x32 = {State::kAbsent, "ENOSYS"};
  f.own_seccomp = 0;
  f.sysctls = {{"user.max_user_namespaces", "63000"}};
  f.cgroups_found = true;
  f.cgroups = "v2 at /sys/fs/cgroup, controllers: cpu memory pids";
  for (const char* ns : {"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"}) {
    f.own_ns[std::string("ns/") + ns] = std::string(ns) + ":[4026531835]";
    f.trial.inside[std::string("ns/") + ns] = std::string(ns) + ":[4026532999]";
  }
  f.trial.ran = f.trial.with_cgroup = true;
  f.trial.inside["Seccomp"] = "2";
  f.trial.inside["NoNewPrivs"] = "1";
  for (const char* cap : {"CapEff", "CapPrm", "CapBnd"}) f.trial.inside[cap] = "0000000000000000";
  f.trial.inside["uid_map"] = "0 200000000 65536";
  f.trial.inside["root"] = "overlayfs";
  f.trial.inside["net"] = "lo";
  f.trial.inside["x32"] = "EPERM";
  f.trial.inside["i386"] = "SIGSEGV";
  return f;
}

const Line& Find(const std::vector<Line>& lines, const std::string& id) {
  for (const Line& l : lines) {
    if (l.id == id) return l;
  }
  static const Line none{"(none)", "", "", "", ""};
  ADD_FAILURE() << "no line " << id;
  return none;
}

// A host without a sandbox: what no trial could start looks like.
Facts NoSandbox(Facts f, const std::string& error) {
  f.trial = Trial{};
  f.trial.error = error;
  f.trial.cgroup_error = error;
  return f;
}

TEST(CheckAssessTest, EveryLayerInForceOnAGoodHost) {
  Assessment a = Assess(GoodRootHost());
  EXPECT_TRUE(a.can_isolate);
  ASSERT_EQ(a.layers.size(), 7u);
  for (const Line& l : a.layers) {
    EXPECT_EQ(l.state, "in force") << l.id << ": " << l.detail;
    EXPECT_EQ(l.fix, "") << l.id;
  }
  EXPECT_NE(Find(a.layers, "user_namespace").detail.find("0 200000000 65536"), std::string::npos);
  EXPECT_NE(Find(a.layers, "other_abis").detail.find("int 0x80 getpid inside: SIGSEGV"),
            std::string::npos);
  EXPECT_EQ(Find(a.host, "i386_abi").state, "absent");
  EXPECT_EQ(Find(a.host, "i386_abi").fix, "") << "an absent ABI needs no fix";
  EXPECT_NE(Text(GoodRootHost(), a).find("every layer is in force"), std::string::npos);
}

TEST(CheckAssessTest, AppArmorRestrictionOfRootlessKilnNamesTheProfile) {
  // Ubuntu 24.04: unprivileged user namespaces are created, but AppArmor
  // takes every capability inside, so nothing can be mounted.
  Facts f = NoSandbox(GoodRootHost(), "mount('/', MS_REC|MS_PRIVATE): Permission denied");
  f.root = false;
  f.userns = {State::kAbsent, "as uid 1000: mount('/', MS_REC|MS_PRIVATE): Permission denied"};
  f.sysctls["kernel.apparmor_restrict_unprivileged_userns"] = "1";
  f.lsms = {"lockdown", "capability", "apparmor"};
  Assessment a = Assess(f);
  EXPECT_FALSE(a.can_isolate);
  const Line& userns = Find(a.layers, "user_namespace");
  EXPECT_EQ(userns.state, "missing");
  EXPECT_NE(userns.detail.find("no sandbox could start"), std::string::npos) << userns.detail;
  EXPECT_NE(userns.fix.find("profile kiln /usr/local/bin/kiln"), std::string::npos) << userns.fix;
  EXPECT_NE(userns.fix.find("userns,"), std::string::npos) << userns.fix;
  EXPECT_NE(userns.fix.find("apparmor_parser -r"), std::string::npos) << userns.fix;
  EXPECT_NE(Text(f, a).find("kiln cannot isolate on this host"), std::string::npos);
}

TEST(CheckAssessTest, NoUserNamespacesAtAllNamesTheSysctl) {
  Facts f = NoSandbox(GoodRootHost(), "clone(new namespaces): No space left on device");
  f.userns = {State::kAbsent, "as uid 0: unshare(CLONE_NEWUSER|CLONE_NEWNS): No space left"};
  f.sysctls["user.max_user_namespaces"] = "0";
  Assessment a = Assess(f);
  EXPECT_FALSE(a.can_isolate);
  for (const Line& l : a.layers) EXPECT_EQ(l.state, "missing") << l.id;
  EXPECT_NE(Find(a.layers, "mount").fix.find("sysctl -w user.max_user_namespaces="),
            std::string::npos);
  EXPECT_NE(Find(a.host, "user_namespaces").fix.find("user.max_user_namespaces is 0"),
            std::string::npos);
}

TEST(CheckAssessTest, DebianSwitchOnlyMattersWithoutRoot) {
  Facts f = GoodRootHost();
  f.userns_unprivileged = {State::kAbsent, "as uid 65534: unshare: Operation not permitted"};
  f.sysctls["kernel.unprivileged_userns_clone"] = "0";
  Assessment a = Assess(f);
  EXPECT_TRUE(a.can_isolate) << "root needs no unprivileged user namespaces";
  const Line& l = Find(a.host, "unprivileged_user_namespaces");
  EXPECT_EQ(l.state, "absent");
  EXPECT_NE(l.fix.find("sysctl -w kernel.unprivileged_userns_clone=1"), std::string::npos) << l.fix;
  EXPECT_EQ(Find(a.host, "user_namespaces").fix, "");
}

TEST(CheckAssessTest, MissingCgroupControllersReduceButDoNotStopIsolation) {
  Facts f = GoodRootHost();
  f.trial.with_cgroup = false;
  f.trial.cgroup_error =
      "cgroup v2 controller 'memory' is not available in '/sys/fs/cgroup/cgroup.controllers'";
  Assessment a = Assess(f);
  EXPECT_TRUE(a.can_isolate);
  const Line& cg = Find(a.layers, "cgroup");
  EXPECT_EQ(cg.state, "missing");
  EXPECT_NE(cg.detail.find("'memory' is not available"), std::string::npos) << cg.detail;
  EXPECT_NE(cg.fix.find("cgroup.subtree_control"), std::string::npos) << cg.fix;
  EXPECT_NE(Text(f, a).find("without cgroup limits"), std::string::npos);
}

TEST(CheckAssessTest, RootlessWithoutDelegationGetsTheDelegationFix) {
  Facts f = GoodRootHost();
  f.root = false;
  f.trial.with_cgroup = false;
  f.trial.inside["uid_map"] = "1000 1000 1";
  Assessment a = Assess(f);
  EXPECT_TRUE(a.can_isolate);
  EXPECT_NE(Find(a.layers, "cgroup").fix.find("Delegate=yes"), std::string::npos);
  for (const Line& l : a.host) {
    EXPECT_NE(l.id, "unprivileged_user_namespaces") << "that line is for root's hosts";
  }
}

TEST(CheckAssessTest, ASharedNamespaceIsNotIsolation) {
  Facts f = GoodRootHost();
  f.trial.inside["ns/net"] = f.own_ns["ns/net"];
  f.trial.inside["net"] = "eth0 lo";
  Assessment a = Assess(f);
  EXPECT_FALSE(a.can_isolate);
  const Line& ns = Find(a.layers, "namespaces");
  EXPECT_EQ(ns.state, "missing");
  EXPECT_NE(ns.detail.find("shared with the host: net"), std::string::npos) << ns.detail;
}

TEST(CheckAssessTest, AnUnfilteredCommandIsNotIsolation) {
  Facts f = GoodRootHost();
  f.trial.inside["Seccomp"] = "0";
  f.trial.inside["x32"] = "ENOSYS";  // what the kernel says unfiltered
  f.trial.inside["CapEff"] = "000001ffffffffff";
  Assessment a = Assess(f);
  EXPECT_FALSE(a.can_isolate);
  EXPECT_EQ(Find(a.layers, "seccomp").state, "missing");
  EXPECT_EQ(Find(a.layers, "other_abis").state, "missing");
  EXPECT_EQ(Find(a.layers, "privileges").state, "missing");
}

TEST(CheckAssessTest, ACallThroughAnotherAbiThatRanIsNotIsolation) {
  // A filter that lets int 0x80 through (a policy written for one ABI).
  Facts f = GoodRootHost();
  f.trial.inside["i386"] = "ran";
  Assessment a = Assess(f);
  EXPECT_FALSE(a.can_isolate);
  EXPECT_EQ(Find(a.layers, "other_abis").state, "missing");
  EXPECT_EQ(Find(a.layers, "seccomp").state, "in force");
}

TEST(CheckAssessTest, InsideAContainerTheFixSaysSo) {
  Facts f = NoSandbox(GoodRootHost(), "clone(new namespaces): Operation not permitted");
  f.own_seccomp = 2;
  f.userns = {State::kUnknown,
              "unshare: Operation not permitted (this process already runs "
              "under a seccomp filter, which may be what refused it)"};
  Assessment a = Assess(f);
  EXPECT_FALSE(a.can_isolate);
  EXPECT_NE(Find(a.layers, "user_namespace").fix.find("already runs under a seccomp filter"),
            std::string::npos);
  EXPECT_NE(Find(a.host, "own_seccomp").detail.find("kiln itself runs filtered"),
            std::string::npos);
}

TEST(CheckAssessTest, JsonCarriesEveryLineAndTheVerdict) {
  Facts f = GoodRootHost();
  Assessment a = Assess(f);
  std::string j = Json(f, a);
  for (const Line& l : a.layers) EXPECT_NE(j.find("\"" + l.id + "\""), std::string::npos) << l.id;
  for (const Line& l : a.host) EXPECT_NE(j.find("\"" + l.id + "\""), std::string::npos) << l.id;
  EXPECT_NE(j.find("\"can_isolate\": true"), std::string::npos) << j;
}

}  // namespace
}  // namespace kiln::sandbox::check
