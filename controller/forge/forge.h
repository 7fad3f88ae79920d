// The forge: where repositories, issues, pull requests, comments, labels,
// reviews and commit statuses live, and where the events that drive the
// pipeline come from. One interface with two implementations: the local forge
// embedded in kiln (local.h: bare repositories plus tables in the kiln store)
// and GitHub (its own issue). The pipeline only ever talks to this interface.
//
// Issues and pull requests share one number sequence per repository, as on
// GitHub: an Issue with is_pull set is the issue side of a pull request.
//
// Writes act as the forge's acting user (the person at the CLI, or kiln's bot
// for the pipeline); the implementation knows who that is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::forge {

struct RepoInfo {
  std::string name;                 // "owner/name"
  std::string clone_url;            // what git fetches and pushes (a path for the local forge)
  std::string default_branch;       // "main"
  std::vector<std::string> labels;  // the repository's label set
  std::string skills_dir = ".kiln/skills";  // where its companion skills live
};

struct Issue {
  std::string repo;
  int64_t number = 0;
  bool is_pull = false;
  std::string title;
  std::string body;
  std::string author;
  std::string state = "open";  // open | closed (pull requests: merged too)
  std::vector<std::string> labels;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t closed_ms = 0;  // when it was closed or merged; 0 while open
  int64_t comments = 0;   // how many comments it has (not counting reviews)
};

struct PullRequest {
  Issue issue;              // issue.is_pull is true
  std::string head_branch;  // "kiln/implement-7"
  std::string base_branch;  // "main"
  std::string head_sha;     // the head branch's commit now
  std::string base_sha;     // the base branch's commit now
  std::string merged_sha;   // set once merged
  std::string merged_by{};  // who merged it, once merged ("" when unknown)
};

struct Comment {
  int64_t id = 0;
  std::string author;
  std::string body;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t number = 0;  // the issue or pull request it is on
};

// An inline review comment, anchored like GitHub's: a line of the file on one
// side of the pull request's diff (RIGHT: the head's line numbers, LEFT: the
// base's), or a range of lines from start_line on start_side to line on side,
// inside one hunk of the diff and starting before it ends.
struct ReviewComment {
  std::string path;
  int64_t line = 0;
  std::string side = "RIGHT";    // RIGHT | LEFT
  std::string severity = "nit";  // blocker | major | minor | nit
  std::string body;
  // Last, with initializers, so that {path, line, side, severity, body}
  // still makes a single-line comment.
  int64_t start_line = 0;    // the range's first line; 0: a comment on line alone
  std::string start_side{};  // RIGHT | LEFT with a start_line; empty without
  // Instead of line and side, as GitHub's API takes them: the line's place
  // in its file's part of the diff (1: the line below the first "@@"). The
  // local forge turns it into line and side; 0: none.
  int64_t position = 0;
};

struct Review {
  int64_t id = 0;
  std::string author;
  std::string verdict;  // approve | comment | request_changes
  std::string body;
  std::string commit_sha;  // the head the review is about
  std::vector<ReviewComment> comments;
  int64_t created_ms = 0;
};

struct CommitStatus {
  std::string context;      // "kiln/verify"
  std::string state;        // pending | success | failure | error
  std::string description;  // one line
  std::string target_url;   // may be empty
  int64_t created_ms = 0;
  std::string sha{};      // the commit (40 hex); filled when read
  std::string creator{};  // who set it; filled when read ("" when unknown)
};

// Something that happened on the forge, for the pipeline. delivery is unique
// per event (the local forge's sequence, GitHub's X-GitHub-Delivery), so a
// duplicated delivery is stored once.
//
// kinds and their payload (besides repo, number, actor):
//   issue.opened         {}
//   issue.labeled        {"label": "ready-to-spec"}
//   issue.unlabeled      {"label": ...}
//   issue.closed         {}
//   comment.created      {"comment_id": N, "body": "..."}
//   pull.opened          {"head_branch", "base_branch", "head_sha"}
//   pull.synchronized    {"head_branch", "head_sha"}       (new commits on its head)
//   pull.labeled         {"label"}
//   pull.closed          {"merged": bool}
//   review.submitted     {"review_id": N, "verdict": "approve", "commit_sha"}
// The local forge also writes (docs/forge.md has the full table):
//   repo.created         {"default_branch", "clone_url"}          (number 0)
//   issue.edited, pull.edited        {"changes": ["title", "body"]}
//   issue.reopened, pull.reopened    {}
//   pull.unlabeled       {"label"}
//   comment.edited       {"comment_id": N, "body": "..."}
//   status.created       {"sha", "context", "state", "description", "target_url"} (number 0)
//   push                 {"branch", "before", "after", "forced"}  (number: its open pull, or 0)
// The GitHub adapter also writes (docs/github.md), for the improver:
//   review.dismissed              {"review_id", "author"}
//   review_thread.resolved, review_thread.unresolved  {"comment_ids": [..]}
// and comment.created of a reply in a review thread carries "in_reply_to".
// issue.closed of an issue closed by a merge carries {"closed_by": <pull number>};
// pull.closed of a merge carries "merged_sha" and "fast_forward" too. Consumers
// ignore kinds they do not know.
struct Event {
  int64_t seq = 0;  // inbox order
  std::string delivery;
  std::string source;  // "local", "github"
  std::string kind;
  std::string repo;
  int64_t number = 0;  // the issue or pull request
  std::string actor;   // who did it
  nlohmann::json payload = nlohmann::json::object();
  int64_t received_ms = 0;
  // What makes it the same event as another whatever its delivery (GitHub:
  // the comment or review it created, else the signed body's SHA-256), so a
  // replayed delivery is stored once; "" for none.
  std::string fingerprint;
};

class Forge {
 public:
  virtual ~Forge() = default;

  virtual std::string kind() const = 0;  // "local", "github"
  // The user writes are made as.
  virtual const std::string& actor() const = 0;

  virtual Result<RepoInfo> Repo(const std::string& repo) = 0;
  // Whether user may start the expensive roles (spec, implement, review,
  // verify) in repo: a maintainer of the local repository, a collaborator
  // with write access on GitHub.
  virtual Result<bool> IsTrusted(const std::string& repo, const std::string& user) = 0;

  virtual Result<Issue> GetIssue(const std::string& repo, int64_t number) = 0;
  virtual Result<std::vector<Comment>> Comments(const std::string& repo, int64_t number) = 0;
  virtual Result<Comment> AddComment(const std::string& repo, int64_t number,
                                     const std::string& body) = 0;
  virtual Status EditComment(const std::string& repo, int64_t comment_id,
                             const std::string& body) = 0;
  // Labels outside the repository's label set are refused (kInvalidArgument).
  virtual Status AddLabels(const std::string& repo, int64_t number,
                           const std::vector<std::string>& labels) = 0;
  virtual Status RemoveLabel(const std::string& repo, int64_t number, const std::string& label) = 0;

  virtual Result<PullRequest> GetPull(const std::string& repo, int64_t number) = 0;
  // The open pull request whose head is branch, if any.
  virtual Result<std::optional<PullRequest>> FindPull(const std::string& repo,
                                                      const std::string& head_branch) = 0;
  virtual Result<PullRequest> OpenPull(const std::string& repo, const std::string& title,
                                       const std::string& body, const std::string& head_branch,
                                       const std::string& base_branch) = 0;
  virtual Status EditPull(const std::string& repo, int64_t number, const std::string& title,
                          const std::string& body) = 0;
  virtual Result<std::vector<Review>> Reviews(const std::string& repo, int64_t number) = 0;
  virtual Result<Review> AddReview(const std::string& repo, int64_t number,
                                   const Review& review) = 0;
  virtual Status SetStatus(const std::string& repo, const std::string& sha,
                           const CommitStatus& status) = 0;
  virtual Result<std::vector<CommitStatus>> Statuses(const std::string& repo,
                                                     const std::string& sha) = 0;

  // Moves branch of repo to commit, whose objects are in the local git
  // repository source_repo (kiln's mirror). force: the branch may move to a
  // commit that does not contain its current one. A push to a branch with an
  // open pull request makes it `pull.synchronized`.
  virtual Status PushBranch(const std::string& repo, const std::string& branch,
                            const std::string& source_repo, const std::string& commit,
                            bool force) = 0;
  // Deletes branch of repo (undoing a push whose pull request could not be
  // opened). A branch that is the head of an open pull request is refused
  // (kInvalidArgument); a missing branch is kNotFound.
  virtual Status DeleteBranch(const std::string& repo, const std::string& branch) = 0;
  // The commit branch of repo points to; nullopt when there is no such branch.
  virtual Result<std::optional<std::string>> BranchSha(const std::string& repo,
                                                       const std::string& branch) = 0;
};

}  // namespace kiln::forge
