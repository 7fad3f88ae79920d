// Drives the real kiln-runtime binary against kiln-model-server running as a
// child process: the event stream on a descriptor, exit statuses, and the
// errors for bad input.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/tools/testutil.h"
#include "tests/modelserver/process.h"

namespace kiln::modelserver {
namespace {

struct Exec {
  int status = -1;
  std::string out, err;
};

Exec RunBinary(const std::string& cmd) {
  testutil::TempDir d;
  Exec e;
  std::string full = cmd + " >" + (d / "out") + " 2>" + (d / "err");
  int rc = std::system(full.c_str());
  e.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  e.out = d.Read("out");
  e.err = d.Read("err");
  return e;
}

std::vector<nlohmann::json> Lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(RuntimeBinary, RunsAWholeTaskAndWritesEventsToTheGivenFd) {
  testutil::TempDir dir;
  dir.Write("ws/notes.txt", "draft\n");
  dir.Write("script.json", R"({"replies": [
    {"tool_calls": [{"name": "write", "input": {"path": "notes.txt", "content": "final\n"}}]},
    {"tool_calls": [{"name": "submit", "input": {"summary": "notes finalised"}}]}]})");
  auto server = ServerProcess::Start(KILN_MODEL_SERVER_BINARY, (dir / "script.json"),
                                     (dir / "requests.jsonl"));
  ASSERT_TRUE(server.ok()) << server.error().message();
  nlohmann::json spec = {{"role", "implement"},
                         {"task", "finalise the notes"},
                         {"workspace", (dir / "ws")},
                         {"model",
                          {{"provider", "openai"},
                           {"name", "m"},
                           {"base_url", (*server)->openai_url()},
                           {"api_key_env", "KILN_TEST_NO_SUCH_KEY"}}}};
  dir.Write("spec.json", spec.dump());
  auto e = RunBinary(std::string(KILN_RUNTIME_BINARY) + " --spec " + (dir / "spec.json") +
                     " --events-fd 3 3>" + (dir / "events.jsonl"));
  EXPECT_EQ(e.status, 0) << e.err;
  EXPECT_EQ(e.out, "");  // stdout stays free when events go elsewhere
  EXPECT_EQ(dir.Read("ws/notes.txt"), "final\n");
  auto events = Lines(dir.Read("events.jsonl"));
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.front()["type"], "model.request");
  EXPECT_EQ(events.back()["type"], "result");
  EXPECT_EQ(events.back()["payload"]["outcome"], "submitted");
  EXPECT_EQ(events.back()["payload"]["summary"], "notes finalised");
  for (const auto& ev : events) EXPECT_TRUE(ev.contains("ts") && ev.contains("payload"));
  EXPECT_EQ(Lines(dir.Read("requests.jsonl")).size(), 2u);
}

TEST(RuntimeBinary, ExitStatusSaysHowTheRunEnded) {
  testutil::TempDir dir;
  dir.Write("ws/.keep", "");
  dir.Write("script.yaml",
            "- {tool_calls: [{name: shell, input: {command: 'echo same'}}], repeat: -1}\n");
  auto server = ServerProcess::Start(KILN_MODEL_SERVER_BINARY, (dir / "script.yaml"));
  ASSERT_TRUE(server.ok()) << server.error().message();
  nlohmann::json spec = {{"role", "r"},
                         {"task", "t"},
                         {"workspace", (dir / "ws")},
                         {"model",
                          {{"name", "m"},
                           {"base_url", (*server)->anthropic_url()},
                           {"api_key_env", "KILN_TEST_NO_SUCH_KEY"}}}};
  dir.Write("spec.json", spec.dump());
  auto e = RunBinary(std::string(KILN_RUNTIME_BINARY) + " --spec-fd 0 <" + (dir / "spec.json"));
  EXPECT_EQ(e.status, 4) << e.err;  // stuck
  EXPECT_NE(e.err.find("kiln-runtime: stuck:"), std::string::npos) << e.err;
  spec["budgets"] = {{"max_turns", 1}};
  spec["loop_repeat_limit"] = 5;
  dir.Write("spec.json", spec.dump());
  e = RunBinary(std::string(KILN_RUNTIME_BINARY) + " --spec " + (dir / "spec.json"));
  EXPECT_EQ(e.status, 3) << e.err;  // budget_exhausted
  EXPECT_EQ(Lines(e.out).back()["payload"]["reason"], "turns");
}

TEST(RuntimeBinary, BadSpecsAndUsageExitWithTwoNamingTheProblem) {
  testutil::TempDir dir;
  dir.Write(
      "spec.json",
      R"({"role": "r", "task": "t", "model": {"name": "m"}, "budgets": {"max_turns": "ten"}})");
  auto e = RunBinary(std::string(KILN_RUNTIME_BINARY) + " --spec " + (dir / "spec.json"));
  EXPECT_EQ(e.status, 2);
  EXPECT_NE(e.err.find("'budgets.max_turns' must be a non-negative integer"), std::string::npos)
      << e.err;
  e = RunBinary(std::string(KILN_RUNTIME_BINARY) + " --spec " + (dir / "missing.json"));
  EXPECT_EQ(e.status, 2);
  EXPECT_NE(e.err.find("missing.json"), std::string::npos) << e.err;
  dir.Write(
      "spec.json",
      R"({"role": "r", "task": "t", "model": {"name": "m"}, "workspace": "/nonexistent-ws"})");
  e = RunBinary(std::string(KILN_RUNTIME_BINARY) + " --spec " + (dir / "spec.json"));
  EXPECT_EQ(e.status, 2);
  EXPECT_NE(e.err.find("/nonexistent-ws"), std::string::npos) << e.err;
  e = RunBinary(std::string(KILN_RUNTIME_BINARY) + " --frobnicate x");
  EXPECT_EQ(e.status, 2);
  EXPECT_NE(e.err.find("unknown option --frobnicate"), std::string::npos);
}

}  // namespace
}  // namespace kiln::modelserver
