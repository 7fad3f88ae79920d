#include "controller/sessionlog/show.h"

#include <gtest/gtest.h>

#include <sstream>

#include "controller/sessionlog/testutil.h"

namespace kiln::sessionlog {
namespace {

TEST(SessionLogShow, ReadableViewOfEachRecordType) {
  EXPECT_EQ(Summarize("tool.result", {{"tool", "shell"},
                                      {"call_id", "c1"},
                                      {"exit_status", 2},
                                      {"duration_ms", 40},
                                      {"output", "boom\nmore"}}),
            "shell c1 | exit 2 | 40 ms | 9 B output | boom\\nmore");
  EXPECT_EQ(Summarize("proxy.request", {{"decision", "denied"},
                                        {"method", "POST"},
                                        {"host", "evil.example"},
                                        {"path", "/x"},
                                        {"status", 0},
                                        {"reason", "host not in the allowlist"}}),
            "DENIED POST evil.example/x | status 0 | why host not in the allowlist");
  EXPECT_EQ(Summarize("model.response", {{"turn", 3},
                                         {"request_id", "req_1"},
                                         {"usage", {{"input_tokens", 10}, {"output_tokens", 5}}},
                                         {"latency_ms", 900},
                                         {"retries", 1}}),
            "turn 3 | id req_1 | tokens 10 in / 5 out | 900 ms | retries 1");
  EXPECT_EQ(Summarize("tool.call", {{"tool", "shell"}, {"input", {{"command", "make"}}}}),
            "shell | make");
  EXPECT_EQ(
      Summarize("run.end", {{"status", "succeeded"}, {"log", {{"records", 9}, {"blobs", 1}}}}),
      "status succeeded | 9 records, 1 blobs");
  EXPECT_EQ(Summarize("steer", {{"from", "ann"}, {"message", "stop"}}), "from ann | stop");
  // Missing fields do not throw.
  EXPECT_NO_THROW(Summarize("run.start", nlohmann::json::object()));
  EXPECT_NO_THROW(Summarize("model.response", {{"usage", 5}}));
}

TEST(SessionLogShow, FiltersAndRawLines) {
  testing::TestLog log;
  std::ostringstream out, err;
  ShowOptions o;
  o.types = {"tool"};
  o.since = 10;
  auto r = Show(log.path, o, out, err);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->shown, 0u);
  std::istringstream lines(out.str());
  for (std::string l; std::getline(lines, l);) {
    EXPECT_TRUE(l.find(" tool.call ") != std::string::npos ||
                l.find(" tool.result ") != std::string::npos)
        << l;
    EXPECT_GE(std::stoul(l), 10u) << l;
  }

  std::ostringstream raw;
  o = ShowOptions{};
  o.json = true;
  ASSERT_TRUE(Show(log.path, o, raw, err).ok());
  EXPECT_EQ(raw.str(), log.data());
  EXPECT_TRUE(err.str().empty());
}

TEST(SessionLogShow, DamagedLinesAreReportedAndSkipped) {
  testing::TestLog log;
  auto lines = log.lines();
  lines[3] = "garbage";
  log.Write(lines);
  std::ostringstream out, err;
  auto r = Show(log.path, ShowOptions{}, out, err);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->damaged, 1u);
  EXPECT_EQ(r->shown, lines.size() - 1);
  EXPECT_NE(err.str().find(":4: not a record"), std::string::npos) << err.str();
}

}  // namespace
}  // namespace kiln::sessionlog
