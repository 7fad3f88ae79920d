// Runs against the real cgroup hierarchies of the test host. The v1 backend
// is exercised with limits (this host binds memory, pids and cpu to v1); the
// v2 backend on the host's cgroup2 mount, which here carries no controllers,
// so limits there must fail with a clear message while the mechanics
// (create, attach, kill, remove) work.
#include "sandbox/cgroup.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "base/fd.h"

namespace kiln::sandbox::cgroup {
namespace {

bool Exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

std::string TestName(const char* what) {
  return std::string("test-") + what + "-" + std::to_string(getpid());
}

pid_t SpawnSleeper() {
  pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  return pid;
}

// cgroup2 mount of this host: the root itself on v2 hosts, root/unified on hybrid ones.
std::optional<std::string> V2Root() {
  struct statfs st {};
  for (const char* p : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    if (statfs(p, &st) == 0 && st.f_type == 0x63677270) return std::string(p);
  }
  return std::nullopt;
}

// The tests create their cgroups under "kiln-test" in every hierarchy; the
// parent is removed once the suite is done.
class RemoveTestParent : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const char* h : {"memory", "pids", "cpu", "unified", ""}) {
      ::rmdir((std::string("/sys/fs/cgroup/") + h + (*h ? "/" : "") + "kiln-test").c_str());
    }
  }
};
const auto* const kRemoveTestParent = ::testing::AddGlobalTestEnvironment(new RemoveTestParent);

TEST(CgroupDetectTest, FindsThisHostsLayout) {
  auto v = Detect();
  ASSERT_TRUE(v.ok()) << v.error().message();
  struct statfs st {};
  ASSERT_EQ(statfs("/sys/fs/cgroup", &st), 0);
  EXPECT_EQ(*v == Version::kV2, st.f_type == 0x63677270);
}

TEST(CgroupDetectTest, MissingHierarchyIsAClearError) {
  auto v = Detect("/nonexistent-cgroup-root");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message().find("'/nonexistent-cgroup-root'"), std::string::npos);
}

class CgroupV1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto v = Detect();
    if (!v.ok() || *v != Version::kV1 || geteuid() != 0)
      GTEST_SKIP() << "needs root on a cgroup v1 host";
  }
};

TEST_F(CgroupV1Test, AppliesLimitsAndCleansUp) {
  Limits limits;
  limits.memory_bytes = 64ull << 20;
  limits.pids = 17;
  limits.cpus = 0.5;
  Options opts;
  opts.parent = "kiln-test";
  std::string name = TestName("limits");
  auto cg = CreateV1(name, limits, opts);
  ASSERT_TRUE(cg.ok()) << cg.error().message();
  std::string mem = "/sys/fs/cgroup/memory/kiln-test/" + name;
  EXPECT_EQ(*ReadNumber(mem + "/memory.limit_in_bytes"), 64ull << 20);
  if (Exists(mem + "/memory.memsw.limit_in_bytes")) {
    EXPECT_EQ(*ReadNumber(mem + "/memory.memsw.limit_in_bytes"), 64ull << 20) << "swap must be off";
  }
  EXPECT_EQ(*ReadNumber("/sys/fs/cgroup/pids/kiln-test/" + name + "/pids.max"), 17u);
  EXPECT_EQ(*ReadNumber("/sys/fs/cgroup/cpu/kiln-test/" + name + "/cpu.cfs_quota_us"), 50000u);

  pid_t pid = SpawnSleeper();
  ASSERT_TRUE((*cg)->AddProcess(pid).ok());
  auto procs = ReadProcs(mem);
  ASSERT_TRUE(procs.ok());
  EXPECT_EQ(*procs, std::vector<pid_t>{pid});
  auto stats = (*cg)->ReadStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE(stats->pids_peak.has_value());
  EXPECT_EQ(stats->oom_kills, 0u);

  ASSERT_TRUE((*cg)->Destroy().ok());
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  for (const char* c : {"memory", "pids", "cpu"}) {
    EXPECT_FALSE(Exists(std::string("/sys/fs/cgroup/") + c + "/kiln-test/" + name)) << c;
  }
}

TEST_F(CgroupV1Test, UnwritableLimitFailsCleanly) {
  Limits limits;
  limits.memory_bytes = 1;  // below what the kernel accepts for a cgroup with memsw
  limits.pids = 10;
  Options opts;
  opts.parent = "kiln-test";
  std::string name = TestName("bad");
  // Whether the kernel accepts 1 byte varies; either way nothing may remain.
  auto cg = CreateV1(name, limits, opts);
  if (cg.ok())
    (void)(*cg)->Destroy();
  else
    EXPECT_NE(cg.error().message().find("applying cgroup limits"), std::string::npos);
  EXPECT_FALSE(Exists("/sys/fs/cgroup/memory/kiln-test/" + name));
  EXPECT_FALSE(Exists("/sys/fs/cgroup/pids/kiln-test/" + name));
}

TEST(CgroupV2Test, MechanicsOnTheHostsCgroup2) {
  auto root = V2Root();
  if (!root || geteuid() != 0) GTEST_SKIP() << "needs root and a cgroup2 mount";
  Options opts;
  opts.root = *root;
  opts.parent = "kiln-test";
  Limits none;
  none.memory_bytes.reset();
  none.pids.reset();
  std::string name = TestName("v2");
  auto cg = CreateV2(name, none, opts);
  ASSERT_TRUE(cg.ok()) << cg.error().message();
  std::string dir = *root + "/kiln-test/" + name;
  EXPECT_EQ((*cg)->paths(), std::vector<std::string>{dir});
  pid_t a = SpawnSleeper(), b = SpawnSleeper();
  ASSERT_TRUE((*cg)->AddProcess(a).ok());
  ASSERT_TRUE((*cg)->AddProcess(b).ok());
  EXPECT_EQ(ReadProcs(dir)->size(), 2u);
  auto stats = (*cg)->ReadStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE(stats->cpu_usec.has_value()) << "cpu.stat is always present in v2";
  ASSERT_TRUE((*cg)->KillAll().ok());
  for (pid_t p : {a, b}) {
    int st;
    ASSERT_EQ(waitpid(p, &st, 0), p);
    EXPECT_TRUE(WIFSIGNALED(st));
  }
  // Destroy kills what is still inside before removing the directory.
  pid_t c = SpawnSleeper();
  ASSERT_TRUE((*cg)->AddProcess(c).ok());
  ASSERT_TRUE((*cg)->Destroy().ok());
  int st;
  ASSERT_EQ(waitpid(c, &st, 0), c);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  EXPECT_FALSE(Exists(dir));
}

TEST(CgroupV2Test, LimitWithoutControllerIsAClearError) {
  auto root = V2Root();
  if (!root || geteuid() != 0) GTEST_SKIP() << "needs root and a cgroup2 mount";
  auto controllers = ReadFile(*root + "/cgroup.controllers");
  ASSERT_TRUE(controllers.ok());
  if (controllers->find("memory") != std::string::npos)
    GTEST_SKIP() << "memory controller is on v2 here";
  Options opts;
  opts.root = *root;
  opts.parent = "kiln-test";
  Limits limits;  // defaults ask for memory and pids
  std::string name = TestName("v2limit");
  auto cg = CreateV2(name, limits, opts);
  ASSERT_FALSE(cg.ok());
  EXPECT_NE(cg.error().message().find("controller 'memory' is not available"), std::string::npos)
      << cg.error().message();
  EXPECT_FALSE(Exists(*root + "/kiln-test/" + name));
}

TEST(CgroupParseTest, ReadsKeyedAndNumberFiles) {
  char dir[] = "/tmp/kiln-cg-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string d = dir;
  ASSERT_TRUE(WriteNewFile(d + "/memory.events", "low 0\nhigh 3\nmax 7\noom 2\noom_kill 1\n", 0644,
                           Sync::kNoFsync)
                  .ok());
  ASSERT_TRUE(
      WriteNewFile(d + "/cpu.stat", "usage_usec 123456\nuser_usec 100000\n", 0644, Sync::kNoFsync)
          .ok());
  ASSERT_TRUE(WriteNewFile(d + "/memory.peak", "4096\n", 0644, Sync::kNoFsync).ok());
  ASSERT_TRUE(WriteNewFile(d + "/pids.max", "max\n", 0644, Sync::kNoFsync).ok());
  EXPECT_EQ(ReadKeyed(d + "/memory.events", "oom_kill"), 1u);
  EXPECT_EQ(ReadKeyed(d + "/memory.events", "oom"), 2u);
  EXPECT_EQ(ReadKeyed(d + "/cpu.stat", "usage_usec"), 123456u);
  EXPECT_FALSE(ReadKeyed(d + "/cpu.stat", "missing").has_value());
  EXPECT_EQ(ReadNumber(d + "/memory.peak"), 4096u);
  EXPECT_FALSE(ReadNumber(d + "/pids.max").has_value());
  EXPECT_FALSE(ReadNumber(d + "/absent").has_value());
  std::filesystem::remove_all(d);
}

}  // namespace
}  // namespace kiln::sandbox::cgroup
