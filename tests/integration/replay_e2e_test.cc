// `kiln replay` end to end: real runs recorded by `kiln run` (real
// sandboxes, the real kiln-runtime, the scripted model server), replayed in
// fresh sandboxes with the model answered from the log, and every kind of
// divergence and refusal the report must name (docs/replay.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "controller/sessionlog/signer.h"
#include "controller/sessionlog/writer.h"
#include "tests/integration/controller_fixture.h"

namespace kiln::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Tools that touch files and run commands, a failing command among them.
constexpr char kWorkScript[] = R"(
replies:
  - tool_calls: [{name: write, input: {path: notes.txt, content: "first line\n"}}]
  - tool_calls: [{name: shell, input: {command: "echo second >> notes.txt && cat notes.txt && ls"}}]
  - tool_calls: [{name: edit, input: {path: README.md, old_string: hello, new_string: hello again}}]
  - tool_calls: [{name: shell, input: {command: "git diff --stat; exit 3"}}]
  - tool_calls: [{name: read, input: {path: notes.txt}}]
  - tool_calls: [{name: submit, input: {summary: "notes written"}}]
)";

class Replay : public Controller {
 protected:
  void SetUp() override {
    Controller::SetUp();
    if (IsSkipped()) return;
    // A directory of the host image (its /usr) that the tests change
    // between a run and its replay; removed after.
    probe_ = "/usr/local/share/kiln-replay-test-" + std::to_string(::getpid());
    fs::create_directories(probe_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!probe_.empty()) fs::remove_all(probe_, ec);
    Controller::TearDown();
  }

  // A run of the edit role that succeeded: its id and log.
  json Recorded(const std::string& script, const std::string& extra_config = "") {
    Setup(script, extra_config);
    Outcome o = RunRole("edit");
    EXPECT_EQ(o.status, 0) << o.err;
    return RunJson(o);
  }

  // A run of role edit queued for the daemon (kiln runs submit); its id, or
  // "" (a failure) when it was refused.
  std::string Submit() {
    Outcome s = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                      "--role", "edit", "--task", "t"});
    EXPECT_EQ(s.status, 0) << s.err;
    return s.status == 0 ? s.out.substr(0, s.out.find('\n')) : "";
  }

  Outcome ReplayOf(const std::string& target, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"replay", "--config", config_, target, "--json"};
    args.insert(args.end(), more.begin(), more.end());
    return Kiln(args);
  }

  json Report(const Outcome& o) {
    json j = json::parse(o.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << "stdout: " << o.out << "\nstderr: " << o.err;
    return j;
  }

  // The seq of the n-th (0-based) record of type in the log.
  uint64_t SeqOf(const std::string& log, const std::string& type, size_t n = 0) {
    for (const auto& r : Records(log)) {
      if (r["type"] == type && n-- == 0) return r["seq"];
    }
    ADD_FAILURE() << "no " << type << " #" << n << " in " << log;
    return 0;
  }

  // Rewrites line `seq` of the log with edit applied to its record.
  void Tamper(const std::string& log, uint64_t seq, const std::function<void(json&)>& edit) {
    std::ifstream in(log);
    std::string line, out;
    while (std::getline(in, line)) {
      json r = json::parse(line);
      if (r["seq"] == seq) {
        edit(r);
        line = r.dump();
      }
      out += line + "\n";
    }
    in.close();
    fs::permissions(log, fs::perms::owner_write, fs::perm_options::add);
    std::ofstream(log, std::ios::trunc) << out;
  }

  std::string probe_;
};

TEST_F(Replay, ARecordedRunReplaysIdenticallyAndItsOwnLogVerifies) {
  json run = Recorded(kWorkScript);
  std::string log = run["log_path"];
  Outcome o = ReplayOf(run["id"], {"--report", root_ + "/report.json"});
  ASSERT_EQ(o.status, 0) << o.out << o.err;
  json rep = Report(o);
  EXPECT_EQ(rep["verdict"], "identical");
  EXPECT_TRUE(rep["first_divergence"].is_null());
  EXPECT_EQ(rep["later_divergences"], 0);
  EXPECT_TRUE(rep["verified"]);
  EXPECT_EQ(rep["compared"]["tool.result"], 6);
  EXPECT_EQ(rep["compared"]["model.request"], 6);
  EXPECT_EQ(rep["compared"]["result"], 1);
  EXPECT_EQ(rep["model_requests_answered"], 6);
  EXPECT_EQ(rep["image"]["used"], run["image_digest"]);
  EXPECT_FALSE(rep["image"]["overridden"]);
  EXPECT_EQ(json::parse(ReadAll(root_ + "/report.json")), rep);

  // The replay is a run of its own, with a log that verifies and names the
  // original by run id, log and head.
  std::string replay_log = rep["replay"]["log"];
  EXPECT_NE(replay_log, log);
  ExpectLogVerifies(replay_log);
  auto recs = Records(replay_log);
  const json& of = recs.front()["payload"]["replay_of"];
  EXPECT_EQ(of["run_id"], run["id"]);
  EXPECT_EQ(of["head"], run["log_head"]);
  EXPECT_EQ(of["log"], log);
  // The same work was done again: the replay's diff is the original's.
  json replayed = Show(rep["replay"]["run_id"]);
  EXPECT_EQ(replayed["status"], "succeeded");
  EXPECT_EQ(replayed["result"]["diff"]["sha256"], run["result"]["diff"]["sha256"]);
  EXPECT_EQ(replayed["requested_by"], "replay:" + run["id"].get<std::string>());

  // By path as well, and as text.
  Outcome text = Kiln({"replay", "--config", config_, log});
  EXPECT_EQ(text.status, 0) << text.out << text.err;
  EXPECT_TRUE(Contains(text.out, "\nidentical\n")) << text.out;
}

TEST_F(Replay, AToolWhoseOutputChangesIsTheFirstDivergence) {
  json run = Recorded(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "echo stable"}}]
  - tool_calls: [{name: shell, input: {command: "date +%N"}}]
  - tool_calls: [{name: shell, input: {command: "echo after"}}]
  - tool_calls: [{name: submit, input: {summary: done}}]
)");
  std::string log = run["log_path"];
  Outcome o = ReplayOf(run["id"]);
  ASSERT_EQ(o.status, 1) << o.out << o.err;
  json rep = Report(o);
  EXPECT_EQ(rep["verdict"], "diverged");
  const json& d = rep["first_divergence"];
  EXPECT_EQ(d["seq"], SeqOf(log, "tool.result", 1));
  EXPECT_EQ(d["type"], "tool.result");
  EXPECT_EQ(d["field"], "output");
  EXPECT_NE(d["expected"], d["found"]);
  EXPECT_TRUE(Contains(d["diff"], "--- expected\n+++ found\n")) << d["diff"];
  // The next request carries the new output: a later divergence.
  EXPECT_GE(rep["later_divergences"], 1);
  EXPECT_EQ(rep["later"][0]["type"], "model.request");
}

TEST_F(Replay, AChangedFileOfTheImageAndAChangedExitStatusAreNamed) {
  WriteAll(probe_ + "/value", "one\n");
  WriteAll(probe_ + "/code", "0\n");
  json run = Recorded("replies:\n  - tool_calls: [{name: shell, input: {command: \"cat " + probe_ +
                      "/value\"}}]\n  - tool_calls: [{name: shell, input: {command: \"exit $(cat " +
                      probe_ + "/code)\"}}]\n" +
                      "  - tool_calls: [{name: submit, input: {summary: done}}]\n");
  std::string log = run["log_path"];
  WriteAll(probe_ + "/value", "two\n");
  Outcome o = ReplayOf(run["id"]);
  ASSERT_EQ(o.status, 1) << o.out << o.err;
  json rep = Report(o);
  EXPECT_EQ(rep["first_divergence"]["seq"], SeqOf(log, "tool.result", 0));
  EXPECT_EQ(rep["first_divergence"]["field"], "output");
  EXPECT_TRUE(Contains(rep["first_divergence"]["expected"], "one\n")) << o.out;
  EXPECT_TRUE(Contains(rep["first_divergence"]["found"], "two\n")) << o.out;
  EXPECT_TRUE(Contains(rep["first_divergence"]["diff"], "-one\n+two\n"));

  WriteAll(probe_ + "/value", "one\n");
  WriteAll(probe_ + "/code", "7\n");
  o = ReplayOf(run["id"]);
  ASSERT_EQ(o.status, 1) << o.out << o.err;
  rep = Report(o);
  EXPECT_EQ(rep["first_divergence"]["seq"], SeqOf(log, "tool.result", 1));
  EXPECT_EQ(rep["first_divergence"]["field"], "exit_status");
  EXPECT_EQ(rep["first_divergence"]["expected"], "0");
  EXPECT_EQ(rep["first_divergence"]["found"], "7");
}

TEST_F(Replay, ADifferentFinalDiffIsNamedAtTheResult) {
  WriteAll(probe_ + "/content", "from the image\n");
  json run = Recorded("replies:\n  - tool_calls: [{name: shell, input: {command: \"cp " + probe_ +
                      "/content copied.txt\"}}]\n" +
                      "  - tool_calls: [{name: submit, input: {summary: done}}]\n");
  WriteAll(probe_ + "/content", "changed since\n");
  Outcome o = ReplayOf(run["id"]);
  ASSERT_EQ(o.status, 1) << o.out << o.err;
  json rep = Report(o);
  const json& d = rep["first_divergence"];
  EXPECT_EQ(d["seq"], SeqOf(run["log_path"], "result"));
  EXPECT_EQ(d["type"], "result");
  EXPECT_EQ(d["field"], "diff.patch");
  EXPECT_TRUE(Contains(d["diff"], "-+from the image\n++changed since\n")) << d["diff"];
  EXPECT_EQ(rep["later_divergences"], 0);
}

TEST_F(Replay, TheSkillIsTheRecordedOneNotTodays) {
  json run = Recorded(kWorkScript);
  // Today's skill file says something else; the replay gives the agent the
  // recorded text, so the requests are the same.
  Skill("edit", "");
  WriteAll(skills_ + "/edit/SKILL.md",
           "---\nname: edit\ndescription: changed\nbudgets: {max_turns: 3}\n---\nNew words.\n");
  Outcome o = ReplayOf(run["id"]);
  EXPECT_EQ(o.status, 0) << o.out << o.err;
  auto recs = Records(Report(o)["replay"]["log"]);
  EXPECT_EQ(recs.front()["payload"]["runtime_spec"],
            Records(run["log_path"]).front()["payload"]["runtime_spec"]);
}

TEST_F(Replay, ARequestTheRecordingDoesNotHaveIsNamedAndAForcedReplaySaysSoOnEveryLine) {
  json run = Recorded(kWorkScript);
  std::string log = run["log_path"];
  // The first request: recorded whole (later ones as deltas on it).
  uint64_t seq = SeqOf(log, "model.request", 0);
  Tamper(log, seq, [](json& r) {
    std::string body = r["payload"]["body"];
    size_t at = body.find("You are a test agent.");
    ASSERT_NE(at, std::string::npos);
    r["payload"]["body"] = body.replace(at, 21, "You are another agent");
  });
  // Refused: the log does not verify, and the verifier says where.
  Outcome refused = ReplayOf(run["id"]);
  EXPECT_EQ(refused.status, 2) << refused.out << refused.err;
  json r = Report(refused);
  EXPECT_EQ(r["verdict"], "refused");
  EXPECT_TRUE(Contains(r["error"], "seq " + std::to_string(seq) + ": modified")) << r["error"];
  EXPECT_TRUE(r["replay"]["run_id"].get<std::string>().empty());

  Outcome forced = ReplayOf(run["id"], {"--force"});
  ASSERT_EQ(forced.status, 1) << forced.out << forced.err;
  json f = Report(forced);
  EXPECT_TRUE(f["forced"]);
  EXPECT_FALSE(f["verified"]);
  EXPECT_EQ(f["first_divergence"]["seq"], seq);
  EXPECT_EQ(f["first_divergence"]["field"], "body");
  EXPECT_TRUE(Contains(f["first_divergence"]["diff"], "-  \"system\": \"You are another agent"))
      << f["first_divergence"]["diff"];
  Outcome text = Kiln({"replay", "--config", config_, run["id"], "--force"});
  EXPECT_EQ(text.status, 1);
  std::istringstream lines(text.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    EXPECT_TRUE(line.starts_with("UNVERIFIED: ")) << line;
  }
  EXPECT_GT(n, 3);
}

TEST_F(Replay, EachKindOfTamperingIsRefused) {
  json run = Recorded(kWorkScript);
  std::string log = run["log_path"];
  std::string copy = root_ + "/logs/copy.log";
  uint64_t tool = SeqOf(log, "tool.result", 1);
  struct Case {
    const char* name;
    std::function<void(const std::string&)> tamper;
    const char* finding;
  } cases[] = {
      {"modified",
       [&](const std::string& p) {
         Tamper(p, tool, [](json& r) { r["payload"]["output"] = "x"; });
       },
       "modified"},
      {"deleted",
       [&](const std::string& p) {
         std::string text = ReadAll(p), out;
         std::istringstream in(text);
         std::string line;
         while (std::getline(in, line)) {
           if (json::parse(line)["seq"] != tool) out += line + "\n";
         }
         std::ofstream(p, std::ios::trunc) << out;
       },
       "deleted"},
      {"truncated",
       [&](const std::string& p) {
         std::string text = ReadAll(p);
         text.resize(text.rfind('\n', text.size() - 2) + 1);  // no run.end
         std::ofstream(p, std::ios::trunc) << text;
       },
       "truncated"},
      {"reordered",
       [&](const std::string& p) {
         std::vector<std::string> lines;
         std::istringstream in(ReadAll(p));
         for (std::string line; std::getline(in, line);) lines.push_back(line);
         std::swap(lines[tool], lines[tool + 1]);
         std::string out;
         for (const auto& line : lines) out += line + "\n";
         std::ofstream(p, std::ios::trunc) << out;
       },
       "reordered"},
      {"inserted",
       [&](const std::string& p) {
         std::string text = ReadAll(p);
         size_t at = 0;
         for (uint64_t i = 0; i < tool; ++i) at = text.find('\n', at) + 1;
         text.insert(at, "{\"note\":\"not a record\"}\n");
         std::ofstream(p, std::ios::trunc) << text;
       },
       "inserted"},
      {"bad signature",
       [&](const std::string& p) {
         uint64_t end = json::parse(
             ReadAll(p).substr(ReadAll(p).rfind('\n', ReadAll(p).size() - 2) + 1))["seq"];
         Tamper(p, end, [](json& r) {
           std::string v = r["sig"]["value"];
           v[0] = v[0] == 'A' ? 'B' : 'A';
           r["sig"]["value"] = v;
         });
       },
       "bad-signature"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    fs::copy_file(log, copy, fs::copy_options::overwrite_existing);
    fs::permissions(copy, fs::perms::owner_write, fs::perm_options::add);
    c.tamper(copy);
    Outcome o = ReplayOf(copy);
    EXPECT_EQ(o.status, 2) << o.out << o.err;
    json r = Report(o);
    EXPECT_TRUE(Contains(r["error"], c.finding)) << r["error"];
    EXPECT_TRUE(Contains(r["error"], "--force")) << r["error"];
  }
}

TEST_F(Replay, InputsThisHostCannotGiveBackAreRefusedClearly) {
  json run = Recorded(kWorkScript, "cache_dir: " + root_ + "/cache\n");
  std::string log = run["log_path"];
  // An image that is not here.
  Outcome o = ReplayOf(run["id"], {"--image", "sha256:" + std::string(64, '0')});
  EXPECT_EQ(o.status, 2) << o.out << o.err;
  EXPECT_TRUE(Contains(Report(o)["error"], "is not on this host")) << o.out;
  // A recorded image that is not the host's any more (forced: the record was changed).
  std::string copy = root_ + "/logs/image.log";
  fs::copy_file(log, copy);
  Tamper(copy, 0,
         [](json& r) { r["payload"]["image"]["digest"] = "sha256:" + std::string(64, 'a'); });
  o = ReplayOf(copy, {"--force"});
  EXPECT_EQ(o.status, 2) << o.out << o.err;
  EXPECT_TRUE(Contains(Report(o)["error"], "the recorded image sha256:aaaa")) << o.out;
  EXPECT_TRUE(Contains(Report(o)["error"], "--image sha256:")) << o.out;
  // --image with the host's digest replays on it and says so.
  o = ReplayOf(copy, {"--force", "--image", run["image_digest"]});
  EXPECT_EQ(o.status, 0) << o.out << o.err;
  EXPECT_TRUE(Report(o)["image"]["overridden"]);

  // A key this host does not trust: another host's log.
  std::string other = root_ + "/other.yaml";
  WriteAll(other, ReadAll(config_) + "key_dir: " + root_ + "/other-keys\n");
  o = Kiln({"replay", "--config", other, log, "--json"});
  EXPECT_EQ(o.status, 2) << o.out << o.err;
  EXPECT_TRUE(Contains(Report(o)["error"], "unknown-key")) << o.out;

  // A missing blob: a record over the log's inline limit (64 KiB).
  Setup("replies:\n  - tool_calls: [{name: write, input: {path: big.txt, content: " +
            std::string(70000, 'a') +
            "}}]\n  - tool_calls: [{name: submit, input: {summary: done}}]\n" +
            "default: {tool_calls: [{name: submit, input: {summary: done}}]}\n",
        "cache_dir: " + root_ + "/cache\n");
  Outcome big = RunRole("edit");
  ASSERT_EQ(big.status, 0) << big.err;
  std::string blobs = root_ + "/logs/blobs";
  ASSERT_TRUE(fs::is_directory(blobs));
  for (const auto& e : fs::directory_iterator(blobs)) fs::remove(e.path());
  o = ReplayOf(RunJson(big)["id"]);
  EXPECT_EQ(o.status, 2) << o.out << o.err;
  EXPECT_TRUE(Contains(Report(o)["error"], "blob")) << o.out;

  // A commit that is gone from the repository and the mirror.
  Git(repo_, "commit -q --allow-empty -m second");
  json second = RunJson(RunRole("edit"));
  Git(repo_, "reset -q --hard HEAD~1");
  Git(repo_, "reflog expire --expire=now --all");
  Git(repo_, "gc -q --prune=now");
  fs::remove_all(root_ + "/cache");
  o = ReplayOf(second["id"]);
  EXPECT_EQ(o.status, 2) << o.out << o.err;
  EXPECT_TRUE(Contains(Report(o)["error"],
                       "the recorded commit " + second["commit_sha"].get<std::string>()))
      << o.out;

  // Neither a log nor a run.
  o = ReplayOf("no-such-run");
  EXPECT_EQ(o.status, 2) << o.out << o.err;
  EXPECT_TRUE(Contains(Report(o)["error"], "neither a session log nor a run")) << o.out;
}

TEST_F(Replay, ALogOfACrashedRunIsRefused) {
  Setup(kWorkScript);
  auto signer = sessionlog::LoadOrCreateSigner(TestStateDir() + "/keys");
  ASSERT_TRUE(signer.ok());
  std::shared_ptr<const sessionlog::Signer> key = std::move(*signer);
  std::string log = root_ + "/logs/crashed.log";
  fs::create_directories(root_ + "/logs");
  {
    auto w = sessionlog::Writer::Create(log, "crashed-run", key);
    ASSERT_TRUE(w.ok()) << w.error().message();
    ASSERT_TRUE((*w)->Append("run.start", {{"run_id", "crashed-run"}}).ok());
    ASSERT_TRUE((*w)->Append("model.request", {{"turn", 1}}).ok());
  }  // dropped without run.end, as a crash leaves it
  auto w = sessionlog::Writer::Recover(log, key, {}, "the controller died");
  ASSERT_TRUE(w.ok()) << w.error().message();
  ASSERT_TRUE((*w)->Close({{"status", "crashed"}}).ok());
  Outcome o = ReplayOf(log);
  EXPECT_EQ(o.status, 2) << o.out << o.err;
  EXPECT_TRUE(Contains(Report(o)["error"], "did not end by itself")) << o.out;
  EXPECT_TRUE(Contains(Report(o)["error"], "the controller died")) << o.out;
}

TEST_F(Replay, NormalisationHidesVolatileTextAndCountsIt) {
  json run =
      Recorded(R"yaml(
replies:
  - tool_calls: [{name: shell, input: {command: "date -u +%Y-%m-%dT%H:%M:%S.%NZ; echo nanos=$(date +%N)"}}]
  - tool_calls: [{name: submit, input: {summary: done}}]
)yaml",
               "replay:\n  normalise:\n    - {pattern: 'nanos=\\d+', replace: 'nanos=<n>'}\n");
  Outcome o = ReplayOf(run["id"]);
  ASSERT_EQ(o.status, 0) << o.out << o.err;
  json rep = Report(o);
  uint64_t timestamp = 0, mine = 0;
  for (const auto& r : rep["normalisation"]) {
    if (r["name"] == "timestamp") timestamp = r["hid"];
    if (r["source"].get<std::string>().starts_with("config ")) {
      mine = r["hid"];
      std::string text = ReadAll(config_);
      auto line = std::count(text.begin(), text.begin() + text.find("nanos="), '\n') + 1;
      EXPECT_EQ(r["source"], "config " + config_ + ":" + std::to_string(line)) << r.dump();
    }
  }
  // The output and the next request that carries it.
  EXPECT_GE(timestamp, 1u) << rep["normalisation"].dump();
  EXPECT_GE(mine, 1u) << rep["normalisation"].dump();

  // Without the rule, the nanoseconds diverge.
  WriteAll(config_, ReadAll(config_).substr(0, ReadAll(config_).find("replay:")));
  o = ReplayOf(run["id"]);
  EXPECT_EQ(o.status, 1) << o.out << o.err;
  EXPECT_TRUE(Contains(Report(o)["first_divergence"]["diff"], "nanos=")) << o.out;

  // A rule that is not a regular expression: the file and line.
  WriteAll(config_, ReadAll(config_) + "replay:\n  normalise:\n    - pattern: '([a-'\n");
  o = ReplayOf(run["id"]);
  EXPECT_EQ(o.status, 2) << o.out << o.err;
  EXPECT_TRUE(Contains(o.err, config_ + ":")) << o.err;
  EXPECT_TRUE(Contains(o.err, "'replay.normalise[0].pattern' is not a valid regular expression"))
      << o.err;
}

// The scripted model answers by skill: the recorded skill's runs write one
// file, a run with the changed skill ("Be thorough") writes two.
constexpr char kBySkillScript[] = R"yaml(
conversations:
  - match: "Be thorough."
    replies:
      - tool_calls: [{name: write, input: {path: one.txt, content: "1\n"}}]
      - tool_calls: [{name: write, input: {path: two.txt, content: "2\n"}}]
      - tool_calls: [{name: submit, input: {summary: "two files"}}]
  - match: "You are a test agent."
    replies:
      - tool_calls: [{name: write, input: {path: one.txt, content: "1\n"}}]
      - tool_calls: [{name: submit, input: {summary: "one file"}}]
    default: {tool_calls: [{name: submit, input: {summary: "again"}}]}
)yaml";

TEST_F(Replay, ARerunWithAChangedSkillComparesOutcomesSideBySide) {
  json run = Recorded(kBySkillScript);
  std::string changed = root_ + "/changed-edit.md";
  WriteAll(changed,
           "---\nname: edit\ndescription: test role edit, changed\nbudgets: {max_turns: 3}\n---\n"
           "Be thorough.\n");
  Outcome o = ReplayOf(run["id"], {"--rerun", "--skill", "edit=" + changed});
  ASSERT_EQ(o.status, 0) << o.out << o.err;
  json rep = Report(o);
  EXPECT_EQ(rep["mode"], "rerun");
  EXPECT_EQ(rep["verdict"], "rerun");
  const json& before = rep["original"]["outcomes"];
  const json& after = rep["replay"]["outcomes"];
  EXPECT_EQ(before["status"], "succeeded");
  EXPECT_EQ(after["status"], "succeeded");
  EXPECT_EQ(before["turns"], 2);
  EXPECT_EQ(after["turns"], 3);
  EXPECT_EQ(before["diff_files"], 1);
  EXPECT_EQ(after["diff_files"], 2);
  EXPECT_EQ(after["result_schema"], "valid");
  EXPECT_GT(after["tokens"].get<uint64_t>(), before["tokens"].get<uint64_t>());
  EXPECT_TRUE(after["wall_ms"].is_number());
  // The rerun kept the recorded budgets (10 turns), not the new skill's 3,
  // and names the skill it ran with.
  auto recs = Records(rep["replay"]["log"]);
  const json& start = recs.front()["payload"];
  EXPECT_EQ(start["budgets"]["max_turns"], 10);
  EXPECT_EQ(start["replay_of"]["mode"], "rerun");
  EXPECT_EQ(start["replay_of"]["skill"]["path"], changed);
  EXPECT_EQ(start["skill"]["sha256"], start["replay_of"]["skill"]["sha256"]);
  EXPECT_TRUE(Contains(start["runtime_spec"]["text"], "Be thorough.")) << start.dump();
  ExpectLogVerifies(rep["replay"]["log"]);

  // The text table, side by side.
  Outcome text = Kiln({"replay", "--config", config_, run["id"], "--rerun"});
  EXPECT_EQ(text.status, 0) << text.out << text.err;
  EXPECT_TRUE(Contains(text.out, "original")) << text.out;
  EXPECT_TRUE(Contains(text.out, "diff_files")) << text.out;
}

// --companion: the recorded run re-run with other guidance for its role (what
// the improver compares), the core skill as the configuration has it.
TEST_F(Replay, ARerunWithOtherCompanionSkills) {
  json run = Recorded(kBySkillScript);
  std::string guidance = root_ + "/guidance.md";
  WriteAll(guidance,
           "---\nname: edit\ndescription: more care\nspecializes: edit\n---\n"
           "Be thorough.\n");
  Outcome o =
      ReplayOf(run["id"], {"--rerun", "--companion", ".kiln/skills/edit/SKILL.md=" + guidance});
  ASSERT_EQ(o.status, 0) << o.out << o.err;
  json rep = Report(o);
  EXPECT_EQ(rep["original"]["outcomes"]["diff_files"], 1);
  EXPECT_EQ(rep["replay"]["outcomes"]["diff_files"], 2);
  auto recs = Records(rep["replay"]["log"]);
  const json& start = recs.front()["payload"];
  EXPECT_EQ(start["replay_of"]["companions"][0]["path"], ".kiln/skills/edit/SKILL.md");
  EXPECT_TRUE(Contains(start["runtime_spec"]["text"],
                       "Repository guidance (edit, from .kiln/skills/edit/SKILL.md)"))
      << start.dump();
  ExpectLogVerifies(rep["replay"]["log"]);

  std::string wrong = root_ + "/wrong.md";
  WriteAll(wrong,
           "---\nname: edit\ndescription: d\nspecializes: edit\nnetwork: {allow: ['*']}\n---\nx\n");
  struct Case {
    std::vector<std::string> args;
    const char* message;
  } cases[] = {
      {{"--companion", ".kiln/skills/edit/SKILL.md=" + guidance}, "need --rerun"},
      {{"--rerun", "--companion", ".kiln/skills/edit/SKILL.md"}, "expected PATH=FILE"},
      {{"--rerun", "--companion", "/etc/x=" + guidance}, "must be a path inside the repository"},
      {{"--rerun", "--companion", "a/../../b=" + guidance}, "must be a path inside the repository"},
      {{"--rerun", "--companion", ".kiln/skills/edit/SKILL.md=" + root_ + "/absent.md"},
       "absent.md"},
      {{"--rerun", "--companion", ".kiln/skills/edit/SKILL.md=" + guidance, "--companion",
        ".kiln/skills/edit/SKILL.md=" + guidance},
       "is given twice"},
      {{"--rerun", "--companion", ".kiln/skills/edit/SKILL.md=" + wrong},
       "'network' cannot be set by a companion skill"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"replay", "--config", config_, run["id"]};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Outcome bad = Kiln(args);
    EXPECT_EQ(bad.status, 2) << bad.out << bad.err;
    EXPECT_TRUE(Contains(bad.out + bad.err, c.message)) << c.message << "\n" << bad.out << bad.err;
  }
}

TEST_F(Replay, SeveralRerunsAtOnceAndTheirBadInputs) {
  json first = Recorded(kBySkillScript);
  json second = RunJson(RunRole("edit", "another task"));
  Outcome o = Kiln({"replay", "--config", config_, "--json", "--rerun", "--model", "model-b",
                    first["id"], second["id"]});
  ASSERT_EQ(o.status, 0) << o.out << o.err;
  json all = json::parse(o.out);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0]["original"]["run_id"], first["id"]);
  EXPECT_EQ(all[1]["original"]["run_id"], second["id"]);
  for (const auto& rep : all) {
    EXPECT_EQ(rep["replay"]["outcomes"]["status"], "succeeded") << rep.dump();
    for (const auto& r : Records(rep["replay"]["log"])) {
      if (r["type"] == "model.request") {
        EXPECT_EQ(r["payload"]["model"], "model-b");
      }
    }
  }

  std::string other = root_ + "/other.md";
  WriteAll(other, "---\nname: review\ndescription: x\n---\nReview.\n");
  struct Case {
    std::vector<std::string> args;
    const char* message;
  } cases[] = {
      {{"--rerun", "--skill", "review=" + other}, "is of role 'edit'"},
      {{"--skill", "edit=" + other}, "need --rerun"},
      {{"--rerun", "--skill", "edit"}, "expected ROLE=PATH"},
      {{"--rerun", "--skill", "edit=" + root_ + "/absent.md"}, "absent.md"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"replay", "--config", config_, first["id"]};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Outcome bad = Kiln(args);
    EXPECT_EQ(bad.status, 2) << bad.out << bad.err;
    EXPECT_TRUE(Contains(bad.out + bad.err, c.message)) << bad.out << bad.err;
  }
}

TEST_F(Replay, ASteeredRunGetsItsSteeringAtTheSamePoint) {
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "sleep 2"}}]
  - tool_calls: [{name: shell, input: {command: "echo after"}}]
  - tool_calls: [{name: submit, input: {summary: done}}]
)");
  const std::string id = Submit();
  ASSERT_FALSE(id.empty());
  {
    Daemon d(config_, root_ + "/serve.log");
    WaitFor(id, [](const json& j) { return j["status"] == "running" && j["sandbox_id"] != ""; });
    Outcome st =
        Kiln({"runs", "steer", "--config", config_, id, "-m", "mind the docs", "--from", "alice"});
    ASSERT_EQ(st.status, 0) << st.err;
    WaitFor(id, [](const json& j) { return j["status"] == "succeeded"; });
  }
  Outcome o = ReplayOf(id);
  ASSERT_EQ(o.status, 0) << o.out << o.err;
  json rep = Report(o);
  EXPECT_EQ(rep["compared"]["steer"], 1);
  bool steered = false;
  for (const auto& r : Records(rep["replay"]["log"])) {
    if (r["type"] == "steer") {
      steered = true;
      EXPECT_EQ(r["payload"]["from"], "alice");
      EXPECT_EQ(r["payload"]["message"], "mind the docs");
    }
  }
  EXPECT_TRUE(steered);
}

// Steering sent before the run started: the original agent's first request
// carries it (it waits in the sandbox's pipe), and so does the replay's.
TEST_F(Replay, SteeringFromBeforeTheStartIsInTheFirstRequestOfBoth) {
  Setup(R"(
replies:
  - tool_calls: [{name: shell, input: {command: "echo first"}}]
  - tool_calls: [{name: submit, input: {summary: done}}]
)");
  const std::string id = Submit();
  ASSERT_FALSE(id.empty());
  Outcome st =
      Kiln({"runs", "steer", "--config", config_, id, "-m", "start with the docs", "--from", "bo"});
  ASSERT_EQ(st.status, 0) << st.err;
  json run;
  {
    Daemon d(config_, root_ + "/serve.log");
    run = WaitFor(id, [](const json& j) { return j["status"] == "succeeded"; });
  }
  // The first model request of a log: the body its runtime sent.
  auto first_request = [&](const std::string& log) {
    for (const auto& r : Records(log)) {
      if (r["type"] == "model.request") return r["payload"].value("body", std::string());
    }
    return std::string();
  };
  EXPECT_TRUE(Contains(first_request(run["log_path"]), "start with the docs"));
  Outcome o = ReplayOf(id);
  ASSERT_EQ(o.status, 0) << o.out << o.err;
  json rep = Report(o);
  EXPECT_EQ(rep["compared"]["steer"], 1);
  EXPECT_TRUE(Contains(first_request(rep["replay"]["log"]), "start with the docs"));
}

TEST_F(Replay, ACommandRunReplaysItsCommand) {
  WriteAll(probe_ + "/verdict", "all 12 tests pass\n");
  fs::create_directories(skills_ + "/check");
  WriteAll(skills_ + "/check/SKILL.md",
           "---\nname: check\ndescription: runs the checks\nmode: command\ncommand: cat " + probe_ +
               "/verdict\n---\nRuns the repository's checks.\n");
  Setup(kWorkScript);
  Outcome run = RunRole("check");
  ASSERT_EQ(run.status, 0) << run.err;
  json j = RunJson(run);
  Outcome o = ReplayOf(j["id"]);
  ASSERT_EQ(o.status, 0) << o.out << o.err;
  EXPECT_EQ(Report(o)["compared"]["command_output"], 1);

  WriteAll(probe_ + "/verdict", "all 11 tests pass\n");
  o = ReplayOf(j["id"]);
  ASSERT_EQ(o.status, 1) << o.out << o.err;
  json rep = Report(o);
  EXPECT_EQ(rep["first_divergence"]["type"], "command_output");
  EXPECT_EQ(rep["first_divergence"]["field"], "output");
  EXPECT_TRUE(Contains(rep["first_divergence"]["diff"], "-all 12 tests pass\n+all 11 tests pass\n"))
      << rep["first_divergence"]["diff"];
}

}  // namespace
}  // namespace kiln::testing
