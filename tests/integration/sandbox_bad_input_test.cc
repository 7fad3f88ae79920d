// Bad input to `kiln sandbox run`: one clear message naming the thing and
// the reason, a non-zero exit, and nothing left behind.
#include <sys/vfs.h>
#include <unistd.h>

#include <string_view>

#include <gtest/gtest.h>

#include "tests/support/kiln_runner.h"

namespace kiln::testing {
namespace {

struct BadCase {
  const char* name;
  std::vector<std::string> args;
  std::vector<std::string> command;
  int status;
  std::vector<std::string> says;  // every one must appear in stderr
};

class SandboxBadInputTest : public ::testing::TestWithParam<BadCase> {};

bool IsCgroup2(const char* path) {
  struct statfs st {};
  return ::statfs(path, &st) == 0 && st.f_type == 0x63677270;  // CGROUP2_SUPER_MAGIC
}

TEST_P(SandboxBadInputTest, ClearErrorAndNothingLeft) {
  if (geteuid() != 0) GTEST_SKIP() << "runs as root";
  const BadCase& c = GetParam();
  if (std::string_view(c.name) == "cgroup_controller_missing") {
    // Needs a cgroup2 hierarchy without the memory controller: a hybrid
    // host's unified/ mount, where memory is bound to a v1 hierarchy.
    if (!IsCgroup2("/sys/fs/cgroup/unified")) {
      GTEST_SKIP() << "/sys/fs/cgroup/unified is not a cgroup2 mount (not a hybrid host): no "
                      "cgroup2 hierarchy without the memory controller here";
    }
    if (Contains(ReadAll("/sys/fs/cgroup/unified/cgroup.controllers"), "memory"))
      GTEST_SKIP() << "/sys/fs/cgroup/unified has the memory controller";
  }
  HostState before = Snapshot();
  std::string marker = std::string("kiln-bad-") + c.name;
  std::vector<std::string> command = c.command;
  if (command.empty()) command = {"sh", "-c", "echo ran " + marker};
  Outcome o = Sandbox(c.args, command);
  EXPECT_EQ(o.status, c.status) << o.err;
  for (const std::string& s : c.says)
    EXPECT_NE(o.err.find(s), std::string::npos) << "stderr: " << o.err;
  EXPECT_EQ(o.out.find("ran "), std::string::npos) << "the command must not run";
  EXPECT_LE(std::count(o.err.begin(), o.err.end(), '\n'), 2) << "one clear message: " << o.err;
  EXPECT_EQ(Diff(before, Snapshot()), "");
  EXPECT_TRUE(ProcessesMatching(marker).empty());
}

const char* MalformedPolicy() {
  static const std::string path = [] {
    std::string p = "/tmp/kiln-test-malformed-" + std::to_string(getpid()) + ".policy";
    WriteAll(p, "# a policy\nallow read write\nallow frobnicate_the_kernel\n");
    return p;
  }();
  return path.c_str();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SandboxBadInputTest,
    ::testing::Values(
        BadCase{"missing_image",
                {"--image", "/nonexistent/rootfs"},
                {},
                125,
                {"image '/nonexistent/rootfs'", "No such file or directory"}},
        BadCase{"image_not_dir",
                {"--image", "/etc/passwd"},
                {},
                2,
                {"image '/etc/passwd'", "not a directory"}},
        BadCase{"missing_bind_source",
                {"--bind", "/nonexistent/src:/data"},
                {},
                125,
                {"--bind source '/nonexistent/src'", "No such file or directory"}},
        BadCase{"malformed_bind", {"--bind", "/tmp"}, {}, 2, {"--bind '/tmp'", "expected SRC:DST"}},
        BadCase{"relative_bind_dest", {"--bind", "/tmp:data"}, {}, 2, {"not an absolute path"}},
        BadCase{"missing_workspace",
                {"--workspace", "/nonexistent/ws"},
                {},
                125,
                {"--workspace '/nonexistent/ws'"}},
        BadCase{"malformed_policy",
                {"--seccomp-policy", MalformedPolicy()},
                {},
                2,
                {std::string(MalformedPolicy()) + ":3:", "frobnicate_the_kernel"}},
        BadCase{"missing_policy",
                {"--seccomp-policy", "/nonexistent.policy"},
                {},
                125,
                {"'/nonexistent.policy'", "No such file or directory"}},
        BadCase{"unknown_option", {"--frobnicate"}, {}, 2, {"--frobnicate"}},
        BadCase{"bad_memory", {"--memory", "12Q"}, {}, 2, {"--memory: cannot parse '12Q'"}},
        BadCase{"bad_pids", {"--pids", "-3"}, {}, 2, {"--pids: cannot parse '-3'"}},
        BadCase{"bad_cpus", {"--cpus", "fast"}, {}, 2, {"--cpus: cannot parse 'fast'"}},
        BadCase{"bad_timeout", {"--timeout", "soon"}, {}, 2, {"--timeout: cannot parse 'soon'"}},
        BadCase{"bad_tmpfs_size",
                {"--tmpfs", "/x:huge"},
                {},
                2,
                {"--tmpfs '/x:huge'", "cannot parse 'huge'"}},
        BadCase{"duplicate_mount",
                {"--tmpfs", "/x", "--tmpfs", "/x"},
                {},
                2,
                {"'/x' is mounted twice"}},
        BadCase{
            "reserved_mount", {"--tmpfs", "/proc"}, {}, 2, {"'/proc' is managed by the sandbox"}},
        BadCase{"unset_env",
                {"--env", "KILN_SURELY_UNSET_VARIABLE"},
                {},
                2,
                {"KILN_SURELY_UNSET_VARIABLE", "is not set"}},
        BadCase{"closed_pass_fd",
                {"--pass-fd", "999"},
                {},
                2,
                {"--pass-fd 999", "not an open descriptor"}},
        BadCase{"command_not_found",
                {},
                {"kiln-no-such-command"},
                127,
                {"execvp('kiln-no-such-command')", "No such file or directory"}},
        BadCase{"command_not_executable",
                {},
                {"/etc/passwd"},
                126,
                {"execvp('/etc/passwd')", "Permission denied"}},
        BadCase{
            "proc_exe_command", {}, {"/proc/self/exe"}, 2, {"refusing to execute a /proc path"}},
        BadCase{"bad_workdir", {"--workdir", "/nonexistent"}, {}, 125, {"chdir('/nonexistent')"}},
        // The host's cgroup2 mount has no controllers on hybrid hosts: a
        // missing kernel feature, named with where it was looked for.
        BadCase{"cgroup_controller_missing",
                {"--cgroup-root", "/sys/fs/cgroup/unified"},
                {},
                125,
                {"controller 'memory' is not available"}},
        BadCase{"no_cgroup_hierarchy",
                {"--cgroup-root", "/tmp"},
                {},
                125,
                {"no cgroup found", "'/tmp'"}}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace kiln::testing
