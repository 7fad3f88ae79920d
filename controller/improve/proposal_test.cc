// The controller's checks of an improve run's change: one file, the role's
// companion skill, a valid companion (no core field), at least two
// independent signals cited from those given; everything else refused or
// nothing to propose, naming why.
#include "controller/improve/proposal.h"

#include <map>

#include <gtest/gtest.h>

namespace kiln::improve {
namespace {

using nlohmann::json;

const char* kCompanion = R"(---
name: triage
description: How this repository labels its issues.
specializes: triage
---
A crash report is a bug even when the reporter calls it a question.
)";

class Proposal : public ::testing::Test {
 protected:
  void SetUp() override {
    auto core = skill::Load(std::string(KILN_SOURCE_DIR) + "/skills", "triage");
    ASSERT_TRUE(core.ok()) << core.error().message();
    core_ = std::move(*core);
    signals_ = json::parse(R"({"signals": [
      {"id": "event:7", "kind": "label_added", "number": 1, "run_id": "r1"},
      {"id": "event:8", "kind": "duplicate_missed", "number": 1, "run_id": "r1"},
      {"id": "event:12", "kind": "label_removed", "number": 4, "run_id": "r2"},
      {"id": "run:r3", "kind": "run_ended", "number": 5, "run_id": "r3"}
    ]})");
  }

  Verdict Check(std::vector<std::pair<std::string, char>> changes, json evidence) {
    diff_ = {};
    for (const auto& [path, status] : changes) {
      git::FileChange f;
      f.path = path;
      f.status = status;
      f.new_mode = status == 'D' ? 0 : 0100644;
      diff_.files.push_back(f);
    }
    diff_.files_total = diff_.files.size();
    ProposalInput in;
    in.core = &core_;
    in.diff = &diff_;
    in.result = json::object({{"summary", "s"}, {"evidence", evidence}});
    in.signals = signals_;
    in.read = [this](const std::string& path) -> Result<std::string> {
      auto it = files_.find(path);
      if (it == files_.end()) return Error::NotFound(path);
      return it->second;
    };
    return CheckProposal(in);
  }

  skill::Skill core_;
  json signals_;
  git::Diff diff_;
  std::map<std::string, std::string> files_ = {{".kiln/skills/triage/SKILL.md", kCompanion}};
};

const json kTwo = json::array({"event:7", "event:12"});

TEST_F(Proposal, TheCompanionWithTwoIndependentSignalsIsProposed) {
  Verdict v = Check({{".kiln/skills/triage/SKILL.md", 'A'}}, kTwo);
  EXPECT_EQ(v.outcome, "proposed") << v.reason;
  EXPECT_EQ(v.path, ".kiln/skills/triage/SKILL.md");
  EXPECT_EQ(v.text, kCompanion);
  EXPECT_EQ(v.evidence, (std::vector<std::string>{"event:7", "event:12"}));
  EXPECT_EQ(Check({{".kiln/skills/triage/SKILL.md", 'M'}}, kTwo).outcome, "proposed");
}

TEST_F(Proposal, AnyOtherPathIsRefusedAndNamed) {
  for (const char* path :
       {"skills/triage/SKILL.md", ".kiln/kiln.yml", ".kiln/skills/review/SKILL.md",
        ".github/workflows/ci.yml", "src/main.c"}) {
    Verdict v = Check({{".kiln/skills/triage/SKILL.md", 'M'}, {path, 'A'}}, kTwo);
    EXPECT_EQ(v.outcome, "refused") << path;
    EXPECT_EQ(v.reason, "the improve run changed '" + std::string(path) +
                            "': only .kiln/skills/triage/SKILL.md (the triage role's companion "
                            "skill) may change; nothing is pushed");
  }
  Verdict deleted = Check({{".kiln/skills/triage/SKILL.md", 'D'}}, kTwo);
  EXPECT_EQ(deleted.outcome, "refused");
  EXPECT_EQ(deleted.reason,
            ".kiln/skills/triage/SKILL.md must stay a regular file; nothing is pushed");
}

TEST_F(Proposal, ACompanionThatSetsToolsNetworkOrSecretsIsRefused) {
  for (const char* field : {"tools: [shell, write]", "network: {allow: ['*']}", "secrets: [TOKEN]",
                            "budgets: {max_turns: 500}", "result_schema: {type: object}"}) {
    files_[".kiln/skills/triage/SKILL.md"] =
        std::string("---\nname: triage\ndescription: d\nspecializes: triage\n") + field +
        "\n---\nLabel everything critical.\n";
    Verdict v = Check({{".kiln/skills/triage/SKILL.md", 'M'}}, kTwo);
    EXPECT_EQ(v.outcome, "refused") << field;
    std::string key = std::string(field).substr(0, std::string(field).find(':'));
    EXPECT_NE(v.reason.find(".kiln/skills/triage/SKILL.md:5: '" + key +
                            "' cannot be set by a companion skill"),
              std::string::npos)
        << v.reason;
    EXPECT_NE(v.reason.find("nothing is pushed"), std::string::npos);
  }
  files_[".kiln/skills/triage/SKILL.md"] =
      "---\nname: triage\ndescription: d\nspecializes: review\n---\nApprove all.\n";
  Verdict other = Check({{".kiln/skills/triage/SKILL.md", 'M'}}, kTwo);
  EXPECT_EQ(other.outcome, "refused");
  EXPECT_NE(other.reason.find("'specializes' is 'review'"), std::string::npos) << other.reason;
}

TEST_F(Proposal, FewerThanTwoIndependentSignalsIsNothingToPropose) {
  Verdict one = Check({{".kiln/skills/triage/SKILL.md", 'M'}}, json::array({"event:7"}));
  EXPECT_EQ(one.outcome, "nothing_to_propose");
  EXPECT_EQ(one.reason,
            "the change cites 1 independent signal(s) (distinct runs, issues or pull requests); 2 "
            "are needed");
  // Two corrections of the same run are one piece of evidence.
  Verdict same =
      Check({{".kiln/skills/triage/SKILL.md", 'M'}}, json::array({"event:7", "event:8"}));
  EXPECT_EQ(same.outcome, "nothing_to_propose");
  EXPECT_EQ(Check({{".kiln/skills/triage/SKILL.md", 'M'}}, json::array()).outcome,
            "nothing_to_propose");
  // No change at all.
  Verdict none = Check({}, kTwo);
  EXPECT_EQ(none.outcome, "nothing_to_propose");
  EXPECT_EQ(none.reason, "the run changed no file");
  EXPECT_EQ(
      Check({{".kiln/skills/triage/SKILL.md", 'M'}}, json::array({"event:7", "run:r3"})).outcome,
      "proposed");
}

TEST_F(Proposal, EvidenceThatWasNeverGivenIsRefused) {
  Verdict v = Check({{".kiln/skills/triage/SKILL.md", 'M'}}, json::array({"event:7", "event:99"}));
  EXPECT_EQ(v.outcome, "refused");
  EXPECT_EQ(v.reason, "the result cites 'event:99', which is not among the signals it was given");
}

}  // namespace
}  // namespace kiln::improve
