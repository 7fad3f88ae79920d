#include "runtime/tools/shell.h"

#include <gtest/gtest.h>

#include <chrono>

#include "runtime/tools/testutil.h"

namespace kiln::tool_shell {
namespace {

Request Req(const std::string& cmd, const std::string& cwd) {
  Request r;
  r.command = cmd;
  r.cwd = cwd;
  r.timeout_ms = 5000;
  r.max_output_bytes = 1024;
  return r;
}

TEST(ToolShell, ReportsOutputAndExitStatusInTheWorkspace) {
  testutil::TempDir d;
  d.Write("f.txt", "x");
  auto o = tool_shell::Run(Req("ls; echo err >&2; exit 3", d.path()));
  EXPECT_FALSE(o.is_error);
  ASSERT_TRUE(o.exit_status.has_value());
  EXPECT_EQ(*o.exit_status, 3);
  EXPECT_EQ(o.content, "f.txt\nerr\n\n[exit status 3]");
}

TEST(ToolShell, ExitStatusOfTheLastCommandIsNotKilledByCleanup) {
  testutil::TempDir d;
  for (int i = 0; i < 20; ++i) {
    auto o = tool_shell::Run(Req("cat /dev/null", d.path()));
    ASSERT_EQ(o.exit_status.value_or(-1), 0) << o.content;
  }
}

TEST(ToolShell, HugeOutputKeepsHeadAndTail) {
  testutil::TempDir d;
  auto o = tool_shell::Run(
      Req("echo START; head -c 5000000 /dev/zero | tr '\\0' x; echo; echo END", d.path()));
  EXPECT_TRUE(o.truncated);
  EXPECT_GT(o.full_bytes, 5000000u);
  EXPECT_LT(o.content.size(), 1200u);
  EXPECT_EQ(o.content.rfind("START", 0), 0u);
  EXPECT_NE(o.content.find("END\n"), std::string::npos);
  EXPECT_NE(o.content.find("bytes omitted"), std::string::npos);
}

TEST(ToolShell, TimeoutKillsTheWholeProcessGroup) {
  testutil::TempDir d;
  auto r = Req("(sleep 30; touch " + (d / "late") + ") & sleep 30", d.path());
  r.timeout_ms = 200;
  auto start = std::chrono::steady_clock::now();
  auto o = tool_shell::Run(r);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  EXPECT_TRUE(o.is_error);
  EXPECT_FALSE(o.exit_status.has_value());
  EXPECT_NE(o.content.find("timed out after 200 ms"), std::string::npos) << o.content;
  EXPECT_LT(ms, 2000);
}

TEST(ToolShell, BackgroundProcessHoldingThePipeDoesNotHangTheCall) {
  testutil::TempDir d;
  auto start = std::chrono::steady_clock::now();
  auto o = tool_shell::Run(Req("sleep 30 & echo started", d.path()));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  EXPECT_EQ(o.exit_status.value_or(-1), 0);
  EXPECT_NE(o.content.find("started"), std::string::npos);
  EXPECT_LT(ms, 2000);
}

TEST(ToolShell, BinaryOutputBecomesValidUtf8) {
  testutil::TempDir d;
  auto o = tool_shell::Run(Req("printf 'a\\377\\376b'", d.path()));
  EXPECT_EQ(o.content.substr(0, 8),
            "a\xef\xbf\xbd\xef\xbf\xbd"
            "b");
}

}  // namespace
}  // namespace kiln::tool_shell
