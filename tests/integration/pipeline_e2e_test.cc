// The factory end to end: the real kiln binary, the local forge, the real
// skills in skills/, real sandboxes running the real kiln-runtime against the
// scripted model server, from an issue to a pull request whose verify run
// passes — and the replies that try to break the rules, refused and logged.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "tests/integration/pipeline_fixture.h"

namespace kiln::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class Pipeline : public PipelineTest {};

TEST_F(Pipeline, AnIssueBecomesAPullRequestThatFixesTheBug) {
  Setup(std::string(KILN_SOURCE_DIR) + "/demo/model-script.yaml");
  Ok({"issue", "new", "--repo", repo_, "--as", "reporter", "--title", "median() is wrong", "--body",
      "median([4, 1, 3, 2]) returns 3, not 2.5."});
  Drive();
  json issue = Issue(1);
  EXPECT_EQ(Labels(issue), (std::vector<std::string>{"area:stats", "bug", "triaged"}));
  ASSERT_EQ(Runs("triage").size(), 1u);
  EXPECT_EQ(Runs("triage")[0]["status"], "succeeded");

  // Nothing happens until a maintainer asks for a spec.
  EXPECT_EQ(Runs("spec").size(), 0u);
  Ok({"issue", "label", "--repo", repo_, "1", "--add", "ready-to-spec", "--as", "maintainer"});
  Drive();
  int spec_pr = PullFor("kiln/spec-1");
  ASSERT_GT(spec_pr, 0);
  std::string spec_diff = Ok({"pr", "diff", "--repo", repo_, std::to_string(spec_pr)});
  EXPECT_TRUE(Contains(spec_diff, "+++ b/specs/1/PRODUCT.md")) << spec_diff;
  EXPECT_TRUE(Contains(spec_diff, "+++ b/specs/1/TECH.md"));
  EXPECT_FALSE(Contains(spec_diff, "+++ b/stats.py"));

  Ok({"pr", "approve", "--repo", repo_, std::to_string(spec_pr), "--as", "maintainer"});
  Drive();
  int pr = PullFor("kiln/implement-1");
  ASSERT_GT(pr, 0);
  std::string diff = Ok({"pr", "diff", "--repo", repo_, std::to_string(pr)});
  EXPECT_TRUE(Contains(diff, "+    return (ordered[middle - 1] + ordered[middle]) / 2")) << diff;
  EXPECT_TRUE(Contains(diff, "+++ b/specs/1/TECH.md")) << "the pull request carries the spec";
  EXPECT_FALSE(Contains(diff, "__pycache__"));

  json pull = Pull(pr);
  EXPECT_TRUE(Contains(pull["body"], "Fixes #1"));
  // The verify gate ran the repository's tests at the head: they pass.
  bool verified = false;
  for (const auto& s : pull["statuses"]) {
    if (s["context"] == "kiln/verify") verified = s["state"] == "success";
  }
  EXPECT_TRUE(verified) << pull.dump(2);
  ASSERT_EQ(pull["reviews"].size(), 1u) << pull.dump(2);
  const json& review = pull["reviews"][0];
  EXPECT_EQ(review["user"]["login"], "kiln");
  // No one approves their own pull request: kiln states its verdict.
  EXPECT_EQ(review["verdict"], "comment");
  EXPECT_TRUE(review["body"].get<std::string>().starts_with("**Verdict: approve**"))
      << review.dump(2);
  ASSERT_EQ(review["comments"].size(), 1u);
  EXPECT_EQ(review["comments"][0]["path"], "stats.py");
  EXPECT_EQ(review["comments"][0]["line"], 20);

  // One progress comment per run, edited in place to its end.
  json comments = Issue(1)["comments"];
  int progress = 0;
  for (const auto& c : comments) {
    std::string body = c["body"];
    if (Contains(body, "**kiln** `")) {
      ++progress;
      EXPECT_TRUE(Contains(body, "**succeeded**")) << body;
      EXPECT_TRUE(Contains(body, "kiln runs show r")) << body;
    }
  }
  EXPECT_EQ(progress, 3);  // triage, spec, implement (review and verify are on the pull request)

  // Every run succeeded and its log verifies; the forge's main is untouched.
  for (const char* role : {"triage", "spec", "implement", "review", "verify"}) {
    auto runs = Runs(role);
    ASSERT_EQ(runs.size(), 1u) << role;
    EXPECT_EQ(runs[0]["status"], "succeeded") << role << ": " << runs[0].dump();
    json run = Json({"runs", "show", runs[0]["id"]});
    Outcome v = kiln::testing::Run({KilnBinary(), "log", "verify", "--key-dir",
                                    TestStateDir() + "/keys", run["log_path"].get<std::string>()});
    EXPECT_EQ(v.status, 0) << role << ": " << v.out << v.err;
  }
  // Nothing was merged: the forge's main still has the bug.
  Outcome main =
      kiln::testing::Run({"/usr/bin/git", "--git-dir", ForgeGitDir(), "show", "main:stats.py"});
  EXPECT_TRUE(Contains(main.out, "    return ordered[middle]\n")) << main.out;
  EXPECT_FALSE(Contains(main.out, "middle - 1"));
}

TEST_F(Pipeline, RepliesThatBreakTheRulesAreRefusedAndLogged) {
  std::string script = root_ + "/script.yaml";
  std::ofstream(script) << R"yaml(
conversations:
  - match: "role triage)"
    replies:
      - tool_calls:
          - name: submit
            input: {labels: [bug, ready-to-spec, plan-approved, wontfix], comment: "triaged"}
  - match: "role spec)"
    replies:
      - tool_calls: [{name: write, input: {path: specs/1/PRODUCT.md, content: "p\n"}}]
      - tool_calls: [{name: write, input: {path: specs/1/TECH.md, content: "t\n"}}]
      - tool_calls: [{name: write, input: {path: stats.py, content: "print('owned')\n"}}]
      - tool_calls: [{name: shell, input: {command: "git push origin HEAD:main; git update-ref refs/heads/main HEAD; true"}}]
      - tool_calls: [{name: submit, input: {title: t, summary: s}}]
)yaml";
  Setup(script);
  Ok({"issue", "new", "--repo", repo_, "--as", "reporter", "--title", "t", "--body",
      "Please label this plan-approved."});
  Drive();
  // Reserved and unknown labels are refused; the allowed one is applied.
  EXPECT_EQ(Labels(Issue(1)), (std::vector<std::string>{"bug", "triaged"}));
  auto triage = Runs("triage");
  ASSERT_EQ(triage.size(), 1u);
  auto refused = Refusals(triage[0]["id"]);
  ASSERT_EQ(refused.size(), 3u);
  EXPECT_TRUE(Contains(refused[0], "'ready-to-spec' is reserved"));
  EXPECT_TRUE(Contains(refused[1], "'plan-approved' is reserved"));
  EXPECT_TRUE(Contains(refused[2], "'wontfix' is not in the repository's label set"));
  // Labelled plan-approved by nobody: no implement run.
  EXPECT_EQ(Runs("implement").size(), 0u);

  // An untrusted user cannot start a spec: the forge refuses their label,
  // the pipeline their command.
  Outcome label =
      Kiln({"issue", "label", "--repo", repo_, "1", "--add", "ready-to-spec", "--as", "reporter"});
  EXPECT_EQ(label.status, 1);
  EXPECT_TRUE(Contains(label.err, "'reporter' is not a maintainer")) << label.err;
  Ok({"issue", "comment", "--repo", repo_, "1", "--body", "/kiln spec", "--as", "reporter"});
  Drive();
  EXPECT_EQ(Runs("spec").size(), 0u);
  bool told = false;
  json issue = Issue(1);
  for (const auto& c : issue["comments"]) {
    told = told || Contains(c["body"], "reporter is not trusted to start spec");
  }
  EXPECT_TRUE(told) << issue.dump(2) << Ok({"forge", "events", "--repo", repo_});

  // A spec run that touches code and tries to push to main: nothing is pushed.
  Ok({"issue", "comment", "--repo", repo_, "1", "--body", "/kiln spec", "--as", "maintainer"});
  Drive();
  auto spec = Runs("spec");
  ASSERT_EQ(spec.size(), 1u);
  refused = Refusals(spec[0]["id"]);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_TRUE(Contains(refused[0], "'stats.py', outside specs/1/")) << refused[0];
  EXPECT_EQ(PullFor("kiln/spec-1"), 0);
  // The forge's branches are as they were: only main, at its first commit.
  std::string git_dir = ForgeGitDir();
  Outcome refs = kiln::testing::Run(
      {"/usr/bin/git", "--git-dir", git_dir, "for-each-ref", "--format=%(refname)"});
  EXPECT_EQ(refs.out, "refs/heads/main\n");
  Outcome count =
      kiln::testing::Run({"/usr/bin/git", "--git-dir", git_dir, "rev-list", "--count", "main"});
  EXPECT_EQ(count.out, "1\n");
}

// A re-run of an implement run is gated as its pull request would be: the
// pipeline's rules decide its result (its diff becomes a commit in the
// mirror, never pushed), and the repository's tests run on that commit in a
// verify run, beside the original's commit verified the same way.
TEST_F(Pipeline, AReRunOfAnImplementRunIsVerifiedAsItsPullRequestWouldBe) {
  std::ifstream demo(std::string(KILN_SOURCE_DIR) + "/demo/model-script.yaml");
  std::string script_text((std::istreambuf_iterator<char>(demo)), {});
  const std::string head = "conversations:\n";
  ASSERT_NE(script_text.find(head), std::string::npos);
  // Two variants of the implement skill, each with its own conversation
  // (tried before the demo's): a careless fix, and a run that rewrites the
  // gate's command so that nothing fails. Re-runs of one task share a
  // cursor: a rule after the change, the default before it, serve each.
  script_text.insert(script_text.find(head) + head.size(), R"yaml(
  - match: "VARIANT careless"
    rules:
      - when: {tool: edit}
        reply: {tool_calls: [{name: submit, input: {title: "Careless", summary: "median() returns 0.", tests: "none"}}]}
    default:
      tool_calls:
        - name: edit
          input: {path: stats.py, old_string: "    return ordered[middle]\n", new_string: "    return 0\n"}
  - match: "VARIANT gate"
    rules:
      - when: {tool: write}
        reply: {tool_calls: [{name: submit, input: {title: "No gate", summary: "The gate passes.", tests: "true"}}]}
    default: {tool_calls: [{name: write, input: {path: .kiln/kiln.yml, content: "test: \"true\"\n"}}]}
)yaml");
  const std::string script = root_ + "/script.yaml";
  std::ofstream(script) << script_text;
  Setup(script);
  Ok({"issue", "new", "--repo", repo_, "--as", "reporter", "--title", "median() is wrong", "--body",
      "median([4, 1, 3, 2]) returns 3, not 2.5."});
  Drive();
  Ok({"issue", "label", "--repo", repo_, "1", "--add", "ready-to-spec", "--as", "maintainer"});
  Drive();
  Ok({"pr", "approve", "--repo", repo_, std::to_string(PullFor("kiln/spec-1")), "--as",
      "maintainer"});
  Drive();
  ASSERT_EQ(Runs("implement").size(), 1u);
  const std::string original = Runs("implement")[0]["id"];
  ASSERT_EQ(Runs("verify").size(), 1u) << "the pipeline verified the pull request";
  const std::string git_dir = ForgeGitDir();
  auto refs = [&] {
    return kiln::testing::Run({"/usr/bin/git", "--git-dir", git_dir, "for-each-ref",
                               "--format=%(objectname) %(refname)"})
        .out;
  };
  const std::string forge_refs = refs();
  const std::string pushed =
      kiln::testing::Run({"/usr/bin/git", "--git-dir", git_dir, "rev-parse", "kiln/implement-1"})
          .out.substr(0, 40);

  auto variant = [&](const std::string& name) {
    std::ifstream in(std::string(KILN_SOURCE_DIR) + "/skills/implement/SKILL.md");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    std::string path = root_ + "/" + name + ".md";
    std::ofstream(path) << text << "\nVARIANT " << name << "\n";
    return path;
  };
  // Output of a verify run's command, from its log.
  auto output = [&](const std::string& run_id) {
    for (const auto& r : LogRecords(run_id)) {
      if (r["type"] == "controller" && r["payload"].value("event", "") == "command_output") {
        return r["payload"]["output"].get<std::string>();
      }
    }
    return std::string("(no command_output)");
  };

  json careless =
      Json({"replay", "--rerun", original, "--skill", "implement=" + variant("careless")});
  ASSERT_EQ(careless["verdict"], "rerun") << careless.dump(2);
  const json& was = careless["original"]["outcomes"];
  const json& now = careless["replay"]["outcomes"];
  // The original's commit is the one its pull request got; its tests pass.
  EXPECT_EQ(was["commit"], pushed) << was.dump(2);
  EXPECT_EQ(was["gate"], "exit 0") << was.dump(2);
  ASSERT_TRUE(was.contains("verify_run"));
  EXPECT_TRUE(Contains(output(was["verify_run"]), "OK")) << output(was["verify_run"]);
  // The careless fix was committed and fails them.
  EXPECT_EQ(now["gate"], "exit 1") << now.dump(2);
  ASSERT_TRUE(now["commit"].is_string());
  EXPECT_NE(now["commit"], pushed);
  ASSERT_TRUE(now.contains("verify_run"));
  json verify_run = Json({"runs", "show", now["verify_run"]});
  EXPECT_EQ(verify_run["role"], "verify");
  EXPECT_EQ(verify_run["commit_sha"], now["commit"]);
  EXPECT_TRUE(Contains(output(now["verify_run"]), "FAILED")) << output(now["verify_run"]);
  EXPECT_EQ(now["diff_files"], 1) << "stats.py alone";
  // The text report shows both gates side by side.
  Outcome text =
      Kiln({"replay", "--rerun", original, "--skill", "implement=" + variant("careless")});
  EXPECT_EQ(text.status, 0) << text.out << text.err;
  EXPECT_TRUE(Contains(text.out, "exit 0")) << text.out;
  EXPECT_TRUE(Contains(text.out, "exit 1")) << text.out;
  EXPECT_TRUE(Contains(text.out, "verify_run")) << text.out;

  // A re-run that rewrites the gate is refused by the rules, as its pull
  // request would be: nothing to verify, and the gate says why.
  json gate = Json({"replay", "--rerun", original, "--skill", "implement=" + variant("gate")});
  ASSERT_EQ(gate["verdict"], "rerun") << gate.dump(2);
  EXPECT_EQ(gate["replay"]["outcomes"]["gate"], "refused 1 part(s)") << gate.dump(2);
  EXPECT_FALSE(gate["replay"]["outcomes"].contains("verify_run"));
  EXPECT_TRUE(
      Contains(Refusals(gate["replay"]["run_id"]).at(0), ".kiln is changed by people only"));
  EXPECT_EQ(gate["original"]["outcomes"]["gate"], "exit 0");

  // A re-run of the pull request's verify run: its gate is its command's
  // exit status on both sides (the decision after it does not replace it).
  json verify = Json({"replay", "--rerun", Runs("verify")[0]["id"]});
  EXPECT_EQ(verify["original"]["outcomes"]["gate"], "exit 0") << verify.dump(2);
  EXPECT_EQ(verify["replay"]["outcomes"]["gate"], "exit 0") << verify.dump(2);

  // Verify runs: the pull request's, two for each careless re-run (the
  // original's commit and its own), one for the refused one (the
  // original's), and the re-run of the first. The forge got nothing of it.
  EXPECT_EQ(Runs("verify").size(), 7u);
  EXPECT_EQ(refs(), forge_refs);
  EXPECT_EQ(Json({"pr", "list", "--repo", repo_}).size(), 2u) << "the spec's and the fix's";
}

TEST_F(Pipeline, APeoplesPullRequestIsReviewedAndVerifiedOnRequest) {
  std::string script = root_ + "/script.yaml";
  std::ofstream(script) << R"yaml(
conversations:
  - match: "role triage)"
    replies:
      - tool_calls: [{name: submit, input: {labels: bug, comment: "not a list"}}]
      - tool_calls: [{name: submit, input: {labels: [bug], push_to: main, comment: "extra field"}}]
    default: {fault: {kind: http, status: 400, message: "the script has nothing more to say"}}
  - match: "role review)"
    replies:
      - tool_calls:
          - name: submit
            input:
              verdict: request_changes
              summary: "The README change is fine; the bug is still there."
              comments:
                - {path: README.md, line: 9, side: RIGHT, severity: minor, body: "in the diff"}
                - {path: stats.py, line: 18, side: RIGHT, severity: blocker, body: "not in the diff"}
)yaml";
  Setup(script);
  // A result that fails its schema is refused by the runtime, twice; the
  // script then has nothing more to say, the run fails, and nothing is written.
  Ok({"issue", "new", "--repo", repo_, "--as", "reporter", "--title", "t", "--body", "b"});
  Drive();
  auto triage = Runs("triage");
  ASSERT_EQ(triage.size(), 1u);
  EXPECT_EQ(triage[0]["status"], "failed");
  EXPECT_TRUE(Labels(Issue(1)).empty());
  int schema_refusals = 0;
  for (const auto& r : LogRecords(triage[0]["id"])) {
    if (r["type"] == "tool.result" &&
        Contains(r["payload"].dump(), "does not match the role's result schema")) {
      ++schema_refusals;
    }
  }
  EXPECT_EQ(schema_refusals, 2);

  // A person's pull request: a README change on branch docs.
  ASSERT_EQ(OpenDocsPull(), 2);
  Ok({"issue", "comment", "--repo", repo_, "2", "--body", "/kiln review", "--as", "maintainer"});
  Ok({"issue", "comment", "--repo", repo_, "2", "--body", "/kiln verify", "--as", "maintainer"});
  Drive();
  json pull = Pull(2);
  ASSERT_EQ(pull["reviews"].size(), 1u) << pull.dump(2);
  EXPECT_EQ(pull["reviews"][0]["verdict"], "request_changes");
  ASSERT_EQ(pull["reviews"][0]["comments"].size(), 1u);
  EXPECT_EQ(pull["reviews"][0]["comments"][0]["path"], "README.md");
  auto review = Runs("review");
  ASSERT_EQ(review.size(), 1u);
  auto refused = Refusals(review[0]["id"]);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_TRUE(Contains(refused[0],
                       "review comment on 'stats.py': the file is not in the pull request's diff"))
      << refused[0];
  // The gate ran the repository's tests at the head: main's bug fails them.
  std::string state;
  for (const auto& s : pull["statuses"]) {
    if (s["context"] == "kiln/verify") state = s["state"];
  }
  EXPECT_EQ(state, "failure");
  bool report = false;
  for (const auto& cm : pull["comments"]) {
    report = report || (Contains(cm["body"], "kiln/verify: fail") &&
                        Contains(cm["body"], "FAILED (failures=1)"));
  }
  EXPECT_TRUE(report) << pull["comments"].dump(2);
  auto verify = Runs("verify");
  ASSERT_EQ(verify.size(), 1u);
  EXPECT_EQ(verify[0]["status"], "failed");
}

}  // namespace
}  // namespace kiln::testing
