// End-to-end tests of the controller: the real kiln binary (`kiln run`,
// `kiln serve`, `kiln runs`) driving real sandboxes with the real
// kiln-runtime, against the scripted model server on loopback. Each test
// process has its own state directory and cgroup parent (kiln_runner), and
// every test ends by checking that the host is as it found it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/digest.h"
#include "runtime/spec.h"
#include "tests/integration/controller_fixture.h"

namespace kiln::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kEditScript[] = R"(
replies:
  - tool_calls: [{name: write, input: {path: README.md, content: "hello from the agent\n"}}]
  - tool_calls: [{name: shell, input: {command: "git status --short && git log --oneline | wc -l"}}]
  - tool_calls: [{name: submit, input: {summary: "README updated"}}]
)";

// `kiln runs handoff`: the run's work as a repository of one's own, on a
// branch at the run's commit with the agent's change committed, and the
// transcript beside it, out of git's way.
TEST_F(Controller, HandoffGivesABranchWithTheChangeAndTheTranscript) {
  Setup(kEditScript);
  Outcome o = RunRole("edit");
  ASSERT_EQ(o.status, 0) << o.err;
  json run = RunJson(o);
  const std::string id = run["id"], base = run["commit_sha"];
  const std::string dir = root_ + "/mine";
  Outcome h = Kiln({"runs", "handoff", "--config", config_, id, dir});
  ASSERT_EQ(h.status, 0) << h.err;
  EXPECT_TRUE(Contains(h.out, "branch kiln/" + id)) << h.out;
  auto git = [&](const std::string& args) {
    return kiln::testing::Run({"/bin/sh", "-c", "git -C '" + dir + "' " + args}).out;
  };
  EXPECT_EQ(git("rev-parse --abbrev-ref HEAD"), "kiln/" + id + "\n");
  EXPECT_EQ(git("rev-parse HEAD~1"), base + "\n");
  EXPECT_EQ(ReadAll(dir + "/README.md"), "hello from the agent\n");
  EXPECT_EQ(git("show --stat --format=%s HEAD"),
            "kiln edit run " + id +
                "\n\n README.md | 2 +-\n 1 file changed, 1 insertion(+), 1 "
                "deletion(-)\n");
  EXPECT_EQ(git("remote get-url origin"), repo_ + "\n");
  EXPECT_EQ(git("status --porcelain"), "");  // the transcript is excluded
  std::string transcript = ReadAll(dir + "/kiln-transcript.md");
  EXPECT_TRUE(Contains(transcript, "README updated")) << transcript.substr(0, 500);
  EXPECT_TRUE(Contains(transcript, id));
  EXPECT_EQ(git("for-each-ref refs/kiln"), "");  // the fetch's refs are gone

  // A directory that holds something, an unknown run, a run not started.
  Outcome again = Kiln({"runs", "handoff", "--config", config_, id, dir});
  EXPECT_EQ(again.status, 2);
  EXPECT_TRUE(Contains(again.err, "exists and is not empty")) << again.err;
  Outcome unknown = Kiln({"runs", "handoff", "--config", config_, "r-nope", root_ + "/x"});
  EXPECT_EQ(unknown.status, 2);
  EXPECT_TRUE(Contains(unknown.err, "r-nope")) << unknown.err;
  Outcome queued = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                         "--role", "edit", "--task", "t"});
  std::string queued_id = queued.out.substr(0, queued.out.find('\n'));
  Outcome early = Kiln({"runs", "handoff", "--config", config_, queued_id, root_ + "/y"});
  EXPECT_EQ(early.status, 2);
  EXPECT_TRUE(Contains(early.err, "has not started")) << early.err;
  EXPECT_FALSE(std::filesystem::exists(root_ + "/x"));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/y"));
}

TEST_F(Controller, RunEditsAFileAndTheDiffIsCollected) {
  Setup(kEditScript);
  Outcome o = RunRole("edit");
  ASSERT_EQ(o.status, 0) << o.err;
  json run = RunJson(o);
  EXPECT_EQ(run["status"], "succeeded");
  EXPECT_EQ(run["outcome"], "submitted");
  EXPECT_EQ(run["result"]["result"]["summary"], "README updated");
  const json& diff = run["result"]["diff"];
  ASSERT_EQ(diff["files"].size(), 1u) << diff.dump();
  EXPECT_EQ(diff["files"][0]["path"], "README.md");
  EXPECT_EQ(diff["files"][0]["status"], "M");
  EXPECT_TRUE(Contains(diff["patch"], "-hello\n+hello from the agent\n")) << diff["patch"];
  EXPECT_EQ(run["commit_sha"].get<std::string>().size(), 40u);
  EXPECT_TRUE(run["image_digest"].get<std::string>().starts_with("sha256:"));
  // The package list's hash is kept for the next run's digest, and is right.
  Outcome sum = kiln::testing::Run({"/usr/bin/sha256sum", "/var/lib/dpkg/status"});
  std::string kept = ReadAll(TestStateDir() + "/images/dpkg-status.sha256");
  EXPECT_TRUE(Contains(kept, " " + sum.out.substr(0, 64) + "\n")) << kept << " vs " << sum.out;

  // The workspace was a git repository at the commit, owned by the agent.
  std::string log = run["log_path"];
  auto recs = Records(log);
  bool saw_status = false;
  for (const auto& r : recs) {
    if (r["type"] == "tool.result" && r["payload"]["tool"] == "shell") {
      std::string out = r["payload"]["output"];
      EXPECT_TRUE(Contains(out, "M README.md")) << out;
      EXPECT_TRUE(Contains(out, "\n1\n")) << out;  // one commit in the log
      saw_status = true;
    }
  }
  EXPECT_TRUE(saw_status);
  EXPECT_EQ(recs.front()["type"], "run.start");
  EXPECT_EQ(recs.front()["payload"]["repository"]["commit"], run["commit_sha"]);
  // The runtime's whole spec, byte for byte as the sandbox got it: enough to
  // give a replay the same skill text, task, model, tools and budgets.
  const json& spec = recs.front()["payload"]["runtime_spec"];
  ASSERT_TRUE(spec.is_object()) << recs.front().dump();
  std::string text = spec["text"];
  EXPECT_EQ(spec["sha256"], kiln::Sha256Hex(text));
  auto parsed = spec::Parse(json::parse(text));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_EQ(parsed->task, recs.front()["payload"]["task"]);
  EXPECT_TRUE(Contains(parsed->skill, "You are a test agent.")) << parsed->skill;
  EXPECT_EQ(parsed->budgets.max_turns, 10u);
  EXPECT_EQ(recs.front()["payload"]["budgets"]["max_turns"], 10);
  EXPECT_EQ(recs.back()["type"], "run.end");
  EXPECT_EQ(recs.back()["payload"]["status"], "succeeded");
  bool saw_result = false, saw_gateway = false;
  for (const auto& r : recs) {
    if (r["type"] == "result") {
      saw_result = true;
      EXPECT_EQ(r["payload"]["diff_sha256"], diff["sha256"]);
    }
    if (r["type"] == "proxy.request" && r["payload"]["gateway"] == "anthropic") {
      saw_gateway = true;
      EXPECT_EQ(r["payload"]["decision"], "allowed");
      EXPECT_EQ(r["payload"]["status"], 200);
    }
  }
  EXPECT_TRUE(saw_result);
  EXPECT_TRUE(saw_gateway);
  ExpectLogVerifies(log);
  EXPECT_EQ(Show(run["id"])["log_head"], run["log_head"]);

  // Where the time went: every phase, in run.end and in the stored result.
  const json& timings = recs.back()["payload"]["timings"];
  EXPECT_EQ(run["result"]["timings"], timings);
  std::vector<std::string> names;
  double own = 0, all = 0;
  for (const auto& [name, us] : timings["phases_us"].items()) {
    names.push_back(name);
    ASSERT_TRUE(us.is_number_integer()) << name;
    EXPECT_GE(us.get<int64_t>(), 0) << name;
    all += us.get<double>() / 1000;
    if (name != "sandbox_start" && name != "agent" && name != "sandbox_exit") {
      own += us.get<double>() / 1000;
    }
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"agent",
                                             "claim",
                                             "companion_skills",
                                             "diff",
                                             "image",
                                             "log_open",
                                             "mirror_resolve",
                                             "plan",
                                             "proxy_endpoint",
                                             "result_collection",
                                             "run_dir",
                                             "sandbox_exit",
                                             "sandbox_start",
                                             "spec",
                                             "store_writes",
                                             "teardown_proxy",
                                             "teardown_run_dir",
                                             "teardown_workspace",
                                             "tree",
                                             "workspace_mount"}))
      << timings.dump();
  EXPECT_NEAR(timings["own_us"].get<double>() / 1000, own, 0.05) << timings.dump();
  // The model request reached the gateway while the sandbox ran.
  EXPECT_GT(timings["first_model_request_us"].get<int64_t>(), 0) << timings.dump();
  EXPECT_LT(timings["first_model_request_us"].get<double>() / 1000,
            timings["sandbox_ms"].get<double>() + 1)
      << timings.dump();
  // The phases cover the attempt: the three spans of old (whole ms each).
  double spans = timings["provision_ms"].get<double>() + timings["sandbox_ms"].get<double>() +
                 timings["result_and_teardown_ms"].get<double>();
  // Each span is rounded to the ms; a loaded machine stretches the small
  // steps between them.
  EXPECT_NEAR(all - timings["phases_us"]["claim"].get<double>() / 1000, spans, 3 + spans / 20)
      << timings.dump();
  // Before run.end (whose own fsync follows it): checkpoints and blobs only.
  EXPECT_TRUE(timings["log_fsync_us"].is_number_integer()) << timings.dump();
}

TEST_F(Controller, SecretsAreScopedToTheSkill) {
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "ls /run/secrets; cat /run/secrets/GRANTED; echo; cat /run/secrets/OTHER"}}]
  - tool_calls: [{name: submit, input: {summary: done}}]
)");
  Outcome o = RunRole("secret");
  ASSERT_EQ(o.status, 0) << o.err;
  json run = RunJson(o);
  // What the model was sent: the granted secret, and no trace of the other.
  std::string record = ReadAll(root_ + "/record");
  EXPECT_TRUE(Contains(record, "granted-value-123"));
  EXPECT_TRUE(Contains(record, "/run/secrets/OTHER: No such file or directory")) << record;
  EXPECT_FALSE(Contains(record, "other-value-456"));
  // The session log redacts the granted one too.
  std::string log = ReadAll(run["log_path"]);
  EXPECT_FALSE(Contains(log, "granted-value-123"));
  EXPECT_FALSE(Contains(log, "other-value-456"));
  ExpectLogVerifies(run["log_path"]);
}

TEST_F(Controller, NoSecretsMeansNoSecretsDirectory) {
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "ls /run/secrets 2>&1; env | grep -c _API_KEY"}}]
  - tool_calls: [{name: submit, input: {summary: done}}]
)");
  ::setenv("ANTHROPIC_API_KEY", "sk-test-key-789", 1);
  Outcome o = RunRole("edit");
  ::unsetenv("ANTHROPIC_API_KEY");
  ASSERT_EQ(o.status, 0) << o.err;
  std::string record = ReadAll(root_ + "/record");
  EXPECT_TRUE(Contains(record, "No such file or directory")) << record;
  // The key reached the model server through the gateway, never the sandbox.
  EXPECT_TRUE(Contains(record, "sk-test-key-789"));  // in the recorded request headers
  json run = RunJson(o);
  for (const auto& r : Records(run["log_path"])) {
    if (r["type"] == "tool.result" && r["payload"]["tool"] == "shell") {
      EXPECT_FALSE(Contains(r["payload"]["output"], "sk-test-key"));
      EXPECT_TRUE(Contains(r["payload"]["output"], "\n0\n")) << r.dump();
    }
  }
}

TEST_F(Controller, EgressOutsideTheAllowlistIsRefusedAndRecorded) {
  // A second model server is the allowed upstream (it answers 404 to a GET).
  WriteAll(root_ + "/upstream.yaml", "default: {text: x}\n");
  auto upstream =
      modelserver::ServerProcess::Start(KILN_MODEL_SERVER_BINARY, root_ + "/upstream.yaml");
  ASSERT_TRUE(upstream.ok()) << upstream.error().message();
  std::string port = std::to_string((*upstream)->port());
  Skill("net", "network:\n  allow: [\"127.0.0.1:" + port + "\"]\n");
  Setup(
      R"(
replies:
  - tool_calls: [{name: shell, input: {command: "curl -s -o /dev/null -w 'plain=%{http_code}\\n' http://denied.example/x; curl -s -o /dev/null -w 'tunnel=%{http_code}\\n' https://denied.example/ 2>&1; curl -s --noproxy '' -o /dev/null -w 'allowed=%{http_code}\\n' http://127.0.0.1:)" +
      port +
      R"(/allowed-path; curl -s -m 5 -o /dev/null -w 'direct=%{http_code}\\n' --noproxy '*' http://10.1.2.3/ 2>&1; true"}}]
  - tool_calls: [{name: submit, input: {summary: done}}]
)");
  Outcome o = RunRole("net");
  ASSERT_EQ(o.status, 0) << o.err;
  json run = RunJson(o);
  std::string output;
  std::vector<json> denied, allowed;
  for (const auto& r : Records(run["log_path"])) {
    if (r["type"] == "tool.result" && r["payload"]["tool"] == "shell")
      output = r["payload"]["output"];
    if (r["type"] == "proxy.request" && r["payload"]["gateway"] == "") {
      (r["payload"]["decision"] == "denied" ? denied : allowed).push_back(r["payload"]);
    }
  }
  EXPECT_TRUE(Contains(output, "plain=403")) << output;
  EXPECT_TRUE(Contains(output, "allowed=404")) << output;
  EXPECT_TRUE(Contains(output, "direct=000")) << output;  // no route out but the proxy
  ASSERT_EQ(denied.size(), 2u) << output;
  EXPECT_EQ(denied[0]["host"], "denied.example");
  EXPECT_EQ(denied[0]["status"], 403);
  EXPECT_TRUE(Contains(denied[0]["reason"], "allowlist")) << denied[0].dump();
  EXPECT_EQ(denied[1]["method"], "CONNECT");
  ASSERT_EQ(allowed.size(), 1u);
  EXPECT_EQ(allowed[0]["path"], "/allowed-path");
  EXPECT_EQ(allowed[0]["status"], 404);
}

TEST_F(Controller, PlantedLinksAreRecordedAsLinksNeverFollowed) {
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "ln -s /etc/shadow shadow-link; ln README.md hard-link; ln /etc/passwd passwd-link 2>&1; mkfifo fifo; true"}}]
  - tool_calls: [{name: submit, input: {summary: done}}]
)");
  Outcome o = RunRole("edit");
  ASSERT_EQ(o.status, 0) << o.err;
  json run = RunJson(o);
  const json& diff = run["result"]["diff"];
  std::map<std::string, json> files;
  for (const auto& f : diff["files"]) files[f["path"]] = f;
  ASSERT_TRUE(files.count("shadow-link")) << diff.dump();
  EXPECT_EQ(files["shadow-link"]["new_mode"], 0120000);
  EXPECT_EQ(files["shadow-link"]["link_target"], "/etc/shadow");
  ASSERT_TRUE(files.count("hard-link"));
  EXPECT_EQ(files["hard-link"]["new_mode"], 0100644);
  EXPECT_FALSE(files.count("passwd-link"));  // cross-device: the link failed
  std::string patch = diff["patch"];
  std::ifstream shadow("/etc/shadow");
  std::string line;
  while (std::getline(shadow, line)) {
    if (!line.empty()) {
      EXPECT_FALSE(Contains(patch, line)) << "shadow content in the result";
    }
  }
  EXPECT_FALSE(Contains(ReadAll(run["log_path"]), "root:"));
}

TEST_F(Controller, BudgetAndAgentFailuresAreTheirOwnExitStatus) {
  Setup(R"(
default: {tool_calls: [{name: shell, input: {command: "echo again"}}]}
)");
  Outcome o = Kiln({"run", "--config", config_, "--repo", repo_, "--commit", "main", "--role",
                    "edit", "--task", "t", "--budget", "max_turns=2", "--json"});
  EXPECT_EQ(o.status, 3) << o.err;  // budget exhausted
  EXPECT_EQ(RunJson(o)["status"], "budget_exhausted");
}

// Each test that looks for its agent's process by command line sleeps for a
// length of its own: ctest runs the tests in parallel processes.
TEST_F(Controller, TimeoutEndsTheRunAndTearsItDown) {
  Skill("slow", "timeout: 2s\n");
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "trap '' TERM; sleep 61", timeout_ms: 100000}}]
default: {tool_calls: [{name: submit, input: {summary: done}}]}
)");
  auto t0 = std::chrono::steady_clock::now();
  Outcome o = RunRole("slow");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(o.status, 1) << o.err;
  EXPECT_LT(secs, 30) << "the run outlived its time limit";
  json run = RunJson(o);
  EXPECT_EQ(run["status"], "failed");
  EXPECT_EQ(run["outcome"], "timeout");
  auto recs = Records(run["log_path"]);
  EXPECT_EQ(recs.back()["payload"]["status"], "timeout");
  ExpectLogVerifies(run["log_path"]);
  EXPECT_TRUE(ProcessesMatching("sleep 61").empty());
}

TEST_F(Controller, BadInputGetsAClearErrorAndLeavesNothing) {
  Setup(kEditScript);
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  WriteAll(root_ + "/bad.yaml", "concurrency:\n  max_runs: many\n");
  std::vector<Case> cases = {
      {{"--config", root_ + "/bad.yaml", "--repo", repo_, "--commit", "main", "--role", "edit"},
       "bad.yaml:2: 'concurrency.max_runs' must be a non-negative integer"},
      {{"--repo", repo_, "--commit", "main", "--role", "deploy"}, "unknown role 'deploy'"},
      {{"--repo", root_ + "/no-such-repo", "--commit", "main", "--role", "edit"}, "is unreachable"},
      {{"--repo", repo_, "--commit", "no-such-branch", "--role", "edit"},
       "revision 'no-such-branch' not found"},
      {{"--repo", repo_, "--commit", "main", "--role", "greedy"}, "unknown secret 'NOT_THERE'"},
      {{"--repo", repo_, "--commit", "main", "--role", "edit", "--budget", "max_turns=-1"},
       "max_turns"},
  };
  for (auto& c : cases) {
    std::vector<std::string> args = {"run"};
    if (c.args[0] != "--config") args.insert(args.end(), {"--config", config_});
    args.insert(args.end(), c.args.begin(), c.args.end());
    args.insert(args.end(), {"--task", "t"});
    Outcome o = Kiln(args);
    EXPECT_EQ(o.status, 2) << c.message << ": " << o.err;
    EXPECT_TRUE(Contains(o.err, c.message)) << o.err;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
  }
  Outcome list = Kiln({"runs", "list", "--config", config_, "--json"});
  ASSERT_EQ(list.status, 0) << list.err;
  EXPECT_EQ(json::parse(list.out).size(), 0u) << "a bad request was queued";
}

TEST_F(Controller, QueueRunsTwentyWithConcurrencyFour) {
  Setup(R"(
default: {tool_calls: [{name: submit, input: {summary: done}}]}
)",
        "concurrency: {max_runs: 4, max_runs_per_repo: 4}\n");
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    Outcome o = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                      "--role", "edit", "--task", "t" + std::to_string(i)});
    ASSERT_EQ(o.status, 0) << o.err;
    ids.push_back(o.out.substr(0, o.out.find('\n')));
  }
  {
    Daemon d(config_, root_ + "/serve.log");
    for (const auto& id : ids) {
      WaitFor(id,
              [](const json& j) { return j["status"] != "queued" && j["status"] != "running"; });
    }
    EXPECT_TRUE(WIFEXITED(d.Stop(SIGTERM))) << ReadAll(root_ + "/serve.log");
  }
  // Every run succeeded, and at no moment were more than four running.
  std::vector<std::pair<int64_t, int>> edges;
  for (const auto& id : ids) {
    json j = Show(id);
    EXPECT_EQ(j["status"], "succeeded") << j.dump();
    edges.push_back({j["started_ms"], +1});
    edges.push_back({j["finished_ms"], -1});
  }
  std::sort(edges.begin(), edges.end());  // an end sorts before a start at the same ms
  int running = 0, most = 0;
  for (const auto& [t, d] : edges) most = std::max(most, running += d);
  EXPECT_LE(most, 4);
  EXPECT_GE(most, 2) << "the runs never overlapped";
  Outcome list = Kiln({"runs", "list", "--config", config_, "--status", "succeeded", "--json"});
  EXPECT_EQ(json::parse(list.out).size(), 20u);
  EXPECT_FALSE(Contains(ReadAll(root_ + "/serve.log"), "error")) << ReadAll(root_ + "/serve.log");
}

TEST_F(Controller, CancelStopsARunningRun) {
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "sleep 60", timeout_ms: 100000}}]
default: {tool_calls: [{name: submit, input: {summary: done}}]}
)");
  Outcome s = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                    "--role", "edit", "--task", "t"});
  ASSERT_EQ(s.status, 0) << s.err;
  std::string id = s.out.substr(0, s.out.find('\n'));
  Daemon d(config_, root_ + "/serve.log");
  WaitFor(id, [](const json& j) { return j["status"] == "running" && j["sandbox_id"] != ""; });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Outcome c = Kiln({"runs", "cancel", "--config", config_, id});
  ASSERT_EQ(c.status, 0) << c.err;
  json j = WaitFor(id, [](const json& j) { return j["status"] == "cancelled"; });
  EXPECT_EQ(j["outcome"], "cancelled");
  EXPECT_EQ(Records(j["log_path"]).back()["payload"]["status"], "cancelled");
  Outcome again = Kiln({"runs", "cancel", "--config", config_, id});
  EXPECT_EQ(again.status, 2);
  EXPECT_TRUE(Contains(again.err, "cancelled")) << again.err;
}

TEST_F(Controller, SteeringReachesTheAgentAndTheLog) {
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "sleep 3"}}]
  - tool_calls: [{name: submit, input: {summary: done}}]
)");
  Outcome s = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                    "--role", "edit", "--task", "t"});
  std::string id = s.out.substr(0, s.out.find('\n'));
  Daemon d(config_, root_ + "/serve.log");
  WaitFor(id, [](const json& j) { return j["status"] == "running" && j["sandbox_id"] != ""; });
  Outcome st = Kiln({"runs", "steer", "--config", config_, id, "-m", "please also update docs",
                     "--from", "alice"});
  ASSERT_EQ(st.status, 0) << st.err;
  // While the tool sleeps, the host has recorded the use so far in the store
  // (what the other hosts of a fleet show).
  json mid = WaitFor(
      id, [](const json& j) { return j["live"].is_object() && j["live"].value("turns", 0) >= 1; });
  EXPECT_EQ(mid["live"]["attempt"], 1) << mid.dump();
  EXPECT_EQ(mid["live"]["tool_calls"], 1) << mid.dump();
  json j = WaitFor(id, [](const json& j) { return j["status"] == "succeeded"; });
  EXPECT_TRUE(Contains(ReadAll(root_ + "/record"),
                       "Message from alice while you work: please "
                       "also update docs"));
  bool logged = false;
  for (const auto& r : Records(j["log_path"])) {
    if (r["type"] == "steer") {
      logged = true;
      EXPECT_EQ(r["payload"]["from"], "alice");
    }
  }
  EXPECT_TRUE(logged);
}

TEST_F(Controller, KilledDaemonIsRecoveredAndNothingLeaks) {
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "sleep 62", timeout_ms: 100000}}]
default: {tool_calls: [{name: submit, input: {summary: done}}]}
)",
        "recovery: fail\n");
  Outcome s = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                    "--role", "edit", "--task", "t"});
  std::string id = s.out.substr(0, s.out.find('\n'));
  {
    Daemon d(config_, root_ + "/serve.log");
    WaitFor(id, [](const json& j) { return j["status"] == "running" && j["sandbox_id"] != ""; });
    for (int i = 0; i < 100 && ProcessesMatching("sleep 62").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_FALSE(ProcessesMatching("sleep 62").empty());
    d.Stop(SIGKILL);
  }
  // The sandbox dies with its controller.
  for (int i = 0; i < 100 && !ProcessesMatching("sleep 62").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(ProcessesMatching("sleep 62").empty());
  EXPECT_EQ(Show(id)["status"], "running");  // nobody has looked yet
  {
    Daemon d(config_, root_ + "/serve2.log");
    json j = WaitFor(id, [](const json& j) { return j["status"] != "running"; });
    EXPECT_EQ(j["status"], "error");
    EXPECT_EQ(j["outcome"], "crashed");
    EXPECT_TRUE(Contains(j["error"], "died mid-run")) << j.dump();
    auto recs = Records(j["log_path"]);
    bool recovery = false;
    for (const auto& r : recs) recovery = recovery || r["type"] == "recovery";
    EXPECT_TRUE(recovery);
    EXPECT_EQ(recs.back()["payload"]["status"], "crashed");
    ExpectLogVerifies(j["log_path"]);
  }
}

TEST_F(Controller, SandboxGcRequeuesAKilledDaemonsRunWhichThenSucceeds) {
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "sleep 63", timeout_ms: 100000}}]
default: {tool_calls: [{name: submit, input: {summary: done}}]}
)");  // recovery: requeue, the default
  Outcome s = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                    "--role", "edit", "--task", "t"});
  std::string id = s.out.substr(0, s.out.find('\n'));
  std::string first_log;
  {
    Daemon d(config_, root_ + "/serve.log");
    first_log = WaitFor(id, [](const json& j) {
      return j["status"] == "running" && j["sandbox_id"] != "";
    })["log_path"];
    for (int i = 0; i < 100 && ProcessesMatching("sleep 63").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    d.Stop(SIGKILL);
  }
  Outcome gc = Kiln({"sandbox", "gc", "--config", config_});
  EXPECT_EQ(gc.status, 0) << gc.err;
  EXPECT_TRUE(Contains(gc.out, "recovered 1 run(s)")) << gc.out << gc.err;
  json j = Show(id);
  EXPECT_EQ(j["status"], "queued");
  EXPECT_EQ(j["attempt"], 1);
  EXPECT_TRUE(Contains(j["error"], "died mid-run")) << j.dump();
  EXPECT_EQ(Records(first_log).back()["payload"]["status"], "crashed");
  ExpectLogVerifies(first_log);
  // The second attempt runs under a new daemon, with a log of its own.
  Daemon d(config_, root_ + "/serve2.log");
  j = WaitFor(id, [](const json& j) { return j["status"] == "succeeded"; });
  EXPECT_EQ(j["attempt"], 2);
  EXPECT_NE(j["log_path"], first_log);
  ExpectLogVerifies(j["log_path"]);
}

TEST_F(Controller, MetricsAreServed) {
  Setup(R"(
default: {tool_calls: [{name: submit, input: {summary: done}}]}
)",
        "metrics_listen: 127.0.0.1:0\n");
  // Port 0 cannot be scraped from outside; use a fixed free port instead.
  int port = 20000 + ::getpid() % 20000;
  std::string cfg = ReadAll(config_);
  cfg.replace(cfg.find("127.0.0.1:0"), 11, "127.0.0.1:" + std::to_string(port));
  WriteAll(config_, cfg);
  Outcome s = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                    "--role", "edit", "--task", "t"});
  std::string id = s.out.substr(0, s.out.find('\n'));
  Daemon d(config_, root_ + "/serve.log", "json");
  WaitFor(id, [](const json& j) { return j["status"] == "succeeded"; });
  // Structured logs: every line an object, the run's lines carry its id.
  std::istringstream lines(ReadAll(root_ + "/serve.log"));
  int about_the_run = 0;
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    EXPECT_TRUE(j.contains("ts") && j.contains("level") && j.contains("msg")) << line;
    if (j.value("run", "") == id) ++about_the_run;
  }
  EXPECT_GE(about_the_run, 3);  // claimed, sandbox started, succeeded
  Outcome m = kiln::testing::Run({"/usr/bin/curl", "-sS", "--noproxy", "*",
                                  "http://127.0.0.1:" + std::to_string(port) + "/metrics"});
  EXPECT_EQ(m.status, 0) << m.err << ReadAll(root_ + "/serve.log");
  EXPECT_TRUE(Contains(m.out, "kiln_runs{status=\"succeeded\"} 1")) << m.out;
  EXPECT_TRUE(Contains(m.out, "kiln_queue_depth 0")) << m.out;
  EXPECT_TRUE(Contains(m.out, "kiln_run_duration_seconds_count 1")) << m.out;
  for (const char* phase :
       {"claim", "tree", "sandbox_start", "agent", "teardown_workspace", "store_end"}) {
    EXPECT_TRUE(
        Contains(m.out, "kiln_run_phase_seconds_count{phase=\"" + std::string(phase) + "\"} 1"))
        << phase << "\n"
        << m.out;
  }
  EXPECT_TRUE(Contains(m.out, "kiln_proxy_requests_total{decision=\"allowed\"}")) << m.out;
}

// Two `kiln serve` on one store, as two hosts. The first is paused (SIGSTOP)
// past its lease mid-run: the second rescues the run and runs it to the
// end. Resumed, the first finds the run taken over: it kills its sandbox at
// once and its late writes are refused by the epoch, so the store keeps the
// second host's record.
TEST_F(Controller, APausedHostLosesItsRunAndItsLateWritesAreRefused) {
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "sleep 64", timeout_ms: 100000}}]
default: {tool_calls: [{name: submit, input: {summary: done}}]}
)",
        "concurrency: {lease: 3s}\n");
  Outcome s = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                    "--role", "edit", "--task", "t"});
  ASSERT_EQ(s.status, 0) << s.err;
  std::string id = s.out.substr(0, s.out.find('\n'));
  const HostState before = Snapshot();
  {
    Daemon first(config_, root_ + "/first.log");
    json claimed = WaitFor(
        id, [](const json& j) { return j["status"] == "running" && j["sandbox_id"] != ""; });
    for (int i = 0; i < 100 && ProcessesMatching("sleep 64").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_FALSE(ProcessesMatching("sleep 64").empty());
    EXPECT_EQ(claimed["epoch"], 1);
    ASSERT_EQ(::kill(first.pid(), SIGSTOP), 0);
    // Whatever fails below, the first host is resumed before it is stopped.
    struct Resume {
      pid_t pid;
      ~Resume() { ::kill(pid, SIGCONT); }
    } resume{first.pid()};

    json done;
    {
      Daemon second(config_, root_ + "/second.log");
      done = WaitFor(id, [](const json& j) { return j["status"] == "succeeded"; });
    }
    EXPECT_EQ(done["attempt"], 2) << done.dump() << ReadAll(root_ + "/second.log");
    EXPECT_EQ(done["epoch"], 3) << done.dump();  // the claim, the rescue, the second claim
    EXPECT_NE(done["owner"], claimed["owner"]);
    EXPECT_NE(done["log_path"], claimed["log_path"]);
    EXPECT_TRUE(Contains(ReadAll(root_ + "/second.log"),
                         "rescued from " + claimed["owner"].get<std::string>()))
        << ReadAll(root_ + "/second.log");

    ASSERT_EQ(::kill(first.pid(), SIGCONT), 0);
    // The first host's sandbox goes at once, not after its 64 s.
    for (int i = 0; i < 100 && !ProcessesMatching("sleep 64").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(ProcessesMatching("sleep 64").empty());
    std::string first_log;
    for (int i = 0; i < 100; ++i) {
      first_log = ReadAll(root_ + "/first.log");
      if (Contains(first_log, "was taken over")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(Contains(first_log, "taken over (epoch 3, ours 1); stopping the sandbox"))
        << first_log;
    EXPECT_TRUE(Contains(first_log, "this claim was epoch 1: nothing written")) << first_log;
    // The store still holds the second host's record.
    json after = Show(id);
    EXPECT_EQ(after["status"], "succeeded");
    EXPECT_EQ(after["owner"], done["owner"]);
    EXPECT_EQ(after["log_head"], done["log_head"]);
    // Each host's log is whole: the first ends with the run lost.
    ExpectLogVerifies(done["log_path"]);
    ExpectLogVerifies(claimed["log_path"]);
    auto recs = Records(claimed["log_path"]);
    EXPECT_EQ(recs.back()["type"], "run.end");
    EXPECT_EQ(recs.back()["payload"]["status"], "error") << recs.back().dump();
    EXPECT_TRUE(
        Contains(recs.back()["payload"].value("error", ""), "another host took the run over"))
        << recs.back().dump();
  }
  // Both hosts stopped: no sandbox, mount, cgroup or run directory is left.
  EXPECT_EQ(Diff(before, Snapshot()), "");
  if (HasFailure()) {
    ADD_FAILURE() << "first host:\n"
                  << ReadAll(root_ + "/first.log") << "second host:\n"
                  << ReadAll(root_ + "/second.log");
  }
}

}  // namespace
}  // namespace kiln::testing
