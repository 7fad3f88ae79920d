// What each role's run is told and what becomes of its result: the task text
// (forge text marked as untrusted), and the decision the controller takes
// from a finished run — the forge writes it will make, each checked against
// the rules, and the refusals of everything else. The agent's result is data
// to validate, never an instruction: reserved labels, paths outside the
// role's scope, review comments on lines outside the diff are refused and
// logged; the controller alone decides branches and pushes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/forge/forge.h"
#include "controller/git/git.h"
#include "controller/run/services.h"

namespace kiln::pipeline::roles {

// kiln's own branches: the only ones it ever pushes.
std::string SpecBranch(int64_t issue);       // "kiln/spec-<issue>"
std::string ImplementBranch(int64_t issue);  // "kiln/implement-<issue>"
// The issue a kiln branch is for, or 0 when branch is not kiln's kind.
int64_t IssueOfBranch(const std::string& branch, const std::string& kind);

// Labels only the controller and people apply; an agent never does.
bool IsReserved(const std::string& label);

// text inside <untrusted source="..."> ... </untrusted>, with any closing tag
// inside text defused so that the text cannot end the block early.
std::string Untrusted(const std::string& source, const std::string& text);

// The facts a task is built from, read from the forge by the pipeline.
struct TaskInput {
  std::string role;
  std::string repo;
  int64_t event_seq = 0;
  forge::Issue issue;                    // the issue (or the pull request's issue side)
  std::vector<forge::Comment> comments;  // the issue's, oldest first
  std::vector<std::string> label_set;
  std::optional<forge::PullRequest> pull;  // review, verify
  std::string patch;                       // review: the pull request's diff
  std::string spec_branch;                 // implement: where the approved spec is
};
std::string Task(const TaskInput& in);

struct Decision {
  // The forge writes to make (pipeline.cc Apply): any of
  //   "labels": [..]                           add to the issue
  //   "comment": "..."                         a comment on the issue / pull request
  //   "push": {"branch", "commit"}             move kiln's branch to the commit
  //   "pull": {"title", "body", "base"}        open (or update) the pull request for the branch
  //   "review": {"verdict", "body", "commit_sha", "comments": [..]}
  //   "status": {"sha", "context", "state", "description"}
  nlohmann::json actions = nlohmann::json::object();
  std::vector<std::string> refusals;  // one line each, for the log and the comment
};

// Validates the run's result for its role and decides the forge writes.
// Spec and implement runs get their commit here (git::CommitChanges, kept as
// refs/kiln/runs/<run id>). An error is an infrastructure problem (a commit
// that could not be written); refusals are not errors.
Result<Decision> Decide(const runner::Finished& f);

// Decide, recorded in the run's log as the pipeline does (each refusal, then
// the decision with its actions), and the actions the forge writes are made
// from: with the push's source mirror, and the refusals added to the
// comment. A decision that failed refuses the whole result.
nlohmann::json DecideAndRecord(const runner::Finished& f, sessionlog::Writer& log);

// The repository's test command, which the verify gate runs: `test:` in
// .kiln/kiln.yml at commit, or "" when the file or the field is missing.
// An error names the file and line of a malformed one.
Result<std::string> TestCommand(const std::string& mirror, const std::string& commit);

}  // namespace kiln::pipeline::roles
