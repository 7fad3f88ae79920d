// The local forge: kiln's own forge, for hosts without GitHub (and for
// tests and demos). Repositories are bare git repositories under repos_dir
// (<repos_dir>/<owner>/<name>.git); issues, pull requests, comments,
// reviews, statuses and the event inbox are tables of the kiln store
// (docs/store.md). docs/forge.md describes it for users.
//
// Every write runs in one BEGIN IMMEDIATE transaction together with the
// events it causes (see forge.h for kinds and payloads), so the pipeline sees
// an event exactly when the change is visible. Head and base shas of a pull
// request are read from the bare repository when asked for, never stored.
//
// Several Local instances (one per acting user, or per process) may share a
// store and the repositories. Each instance serialises its own calls, so it
// may be used from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "controller/forge/forge.h"
#include "controller/forge/patches.h"
#include "controller/store/sql.h"

namespace kiln::forge::rows {
struct RepoRow;
struct ItemRow;
}  // namespace kiln::forge::rows

namespace kiln::forge {

// Where kiln keeps the local forge's bare repositories: <state_dir>/forge/repos.
inline std::string ReposDir(const std::string& state_dir) { return state_dir + "/forge/repos"; }

// What ListIssues returns.
struct IssueFilter {
  enum class Kind { kIssues, kPulls, kAll };
  std::string state = "open";  // open | closed | merged | all ("closed" includes merged)
  std::string label;           // only items carrying this label; "" for all
  Kind kind = Kind::kAll;
};

// A repository with what only the local forge has.
struct LocalRepo {
  RepoInfo info;
  std::vector<std::string> maintainers;
  int64_t created_ms = 0;
  // Filled by GetRepo and ListRepos (not by CreateRepo).
  int64_t open_issues = 0;  // open issues and pull requests
  int64_t pushed_ms = 0;    // the last push through the forge; created_ms when none
  int64_t size_kb = 0;      // the bare repository's size on disk
};

// What one pull request shows beyond a listing's fields (GitHub's full
// pull-request): its history and diff counted, and whether it would merge.
struct PullDetails {
  int64_t commits = 0;    // on the head since the merge base
  int64_t additions = 0;  // lines, over the diff's files
  int64_t deletions = 0;
  int64_t changed_files = 0;
  int64_t review_comments = 0;  // inline comments of submitted reviews
  // An open pull request's head merges into its base without conflict;
  // nullopt when it is not open or a branch is gone.
  std::optional<bool> mergeable;
};

// A file of a pull request's diff, with the blob it has at the head (at
// the merge base for a removed file); sha "" when there is none (a
// submodule, a link read as nothing).
struct PullFile {
  patches::FilePatch diff;
  std::string sha;
};

// An inline comment of a review placed in the diff as GitHub places it.
struct PullComment {
  int64_t id = 0;  // wire::ReviewCommentId(review_id, index)
  int64_t review_id = 0;
  std::string author;
  std::string commit_sha;  // the review's commit
  int64_t created_ms = 0;
  ReviewComment comment;
  std::string diff_hunk;          // at the review's commit, up to the line
  int64_t original_position = 0;  // in the diff at the review's commit
  // In the diff now: the original position while the head is the review's
  // commit, nullopt once it moved (the comment is outdated).
  std::optional<int64_t> position;
};

// How Merge merges (the API's merge_method, commit_title, commit_message, sha).
struct MergeOptions {
  // "": a fast-forward when the base has not moved since the head branched
  // off, else a merge commit; "merge": a merge commit always; "squash": one
  // commit on the base with the merged tree; "rebase": the head's commits
  // replayed on the base (a linear history only).
  std::string method;
  // The merge or squash commit's first line and the rest of its message;
  // "" for kiln's ("Merge pull request #N from BRANCH" and the title; a
  // squash: "TITLE (#N)" and the body). A rebase takes neither.
  std::string title;
  std::string message;
  std::string expected_head;  // "" or the head commit the merge must find
};

// Who the acting user is to the forge. A user's writes are checked as
// GitHub checks them: a title, body or state only by the item's author or a
// maintainer, labels and commit statuses only by a maintainer, merges only by
// a maintainer, no approval (or request for changes) of one's own pull
// request. The app is kiln's pipeline: its bot may write to every repository,
// as an installed GitHub App with write permission may.
enum class Access { kUser, kApp };

class Local final : public Forge {
 public:
  // Opens the forge in the kiln store at store_path (creating and migrating
  // it as needed) with bare repositories under repos_dir; writes are made as
  // actor (a valid user name, validate::UserName) with its access.
  static Result<std::unique_ptr<Local>> Open(const std::string& store_path,
                                             const std::string& repos_dir, std::string actor,
                                             Access access = Access::kUser);

  Local(const Local&) = delete;
  Local& operator=(const Local&) = delete;

  // A check every write runs inside its own transaction, on this forge's
  // connection, before it writes anything: refused, the write is not made.
  // On a fleet the pipeline's forge checks there that its host still leads
  // (docs/fleet.md), so a former leader's write and the new leader's lead
  // cannot interleave.
  using WriteGuard = std::function<Status(store::sql::Db& db, const std::string& doing)>;
  void SetWriteGuard(WriteGuard guard) { guard_ = std::move(guard); }

  std::string kind() const override { return "local"; }
  const std::string& actor() const override { return actor_; }

  Result<RepoInfo> Repo(const std::string& repo) override;
  Result<bool> IsTrusted(const std::string& repo, const std::string& user) override;
  Result<Issue> GetIssue(const std::string& repo, int64_t number) override;
  Result<std::vector<Comment>> Comments(const std::string& repo, int64_t number) override;
  Result<Comment> AddComment(const std::string& repo, int64_t number,
                             const std::string& body) override;
  // Only the comment's author or a maintainer may edit it (kPermission).
  Status EditComment(const std::string& repo, int64_t comment_id, const std::string& body) override;
  // Labels already there are left as they are (no event); all labels are
  // checked before any is added.
  Status AddLabels(const std::string& repo, int64_t number,
                   const std::vector<std::string>& labels) override;
  // Removing a label that is in the set but not on the item changes nothing.
  Status RemoveLabel(const std::string& repo, int64_t number, const std::string& label) override;
  Result<PullRequest> GetPull(const std::string& repo, int64_t number) override;
  Result<std::optional<PullRequest>> FindPull(const std::string& repo,
                                              const std::string& head_branch) override;
  // base_branch "" means the repository's default branch. Both branches must
  // exist, differ, and head must have commits base lacks; one open pull
  // request per head branch.
  Result<PullRequest> OpenPull(const std::string& repo, const std::string& title,
                               const std::string& body, const std::string& head_branch,
                               const std::string& base_branch) override;
  Status EditPull(const std::string& repo, int64_t number, const std::string& title,
                  const std::string& body) override;
  // Submitted reviews, and the actor's own pending one.
  Result<std::vector<Review>> Reviews(const std::string& repo, int64_t number) override;
  // review.author and created_ms are ignored (the actor, now); an empty
  // commit_sha means the head now. Inline comments must anchor to a line of
  // the pull request's diff at that commit, a range to lines of one hunk
  // (git::WhyNotAnchored); a comment given by position is anchored to the
  // line at that position. Verdict "pending" keeps the review unsubmitted,
  // without event, seen by the actor alone (one per user and pull request);
  // SubmitReview submits it.
  Result<Review> AddReview(const std::string& repo, int64_t number, const Review& review) override;
  // One review of pull request number: submitted, or the actor's pending one.
  Result<Review> GetReview(const std::string& repo, int64_t number, int64_t review_id);
  // Submits the actor's pending review with verdict (approve | comment |
  // request_changes) and, when given, a new body: checked as AddReview
  // checks a review, then review.submitted.
  Result<Review> SubmitReview(const std::string& repo, int64_t number, int64_t review_id,
                              const std::string& verdict, const std::optional<std::string>& body);
  // The pull request a review of repo is on (kNotFound naming it when none).
  Result<int64_t> ReviewNumber(const std::string& repo, int64_t review_id);
  // Deletes the actor's pending review (a submitted one is refused).
  Result<Review> DeletePendingReview(const std::string& repo, int64_t number, int64_t review_id);
  // The commit must exist in the repository; a newer status of the same
  // context replaces the older one.
  Status SetStatus(const std::string& repo, const std::string& sha,
                   const CommitStatus& status) override;
  // sha may also be a branch name (its commit now). Sorted by context.
  Result<std::vector<CommitStatus>> Statuses(const std::string& repo,
                                             const std::string& sha) override;
  Status PushBranch(const std::string& repo, const std::string& branch,
                    const std::string& source_repo, const std::string& commit, bool force) override;
  Status DeleteBranch(const std::string& repo, const std::string& branch) override;
  Result<std::optional<std::string>> BranchSha(const std::string& repo,
                                               const std::string& branch) override;

  // --- only in the local forge ---------------------------------------------

  // Creates repository name ("owner/name") from from_dir: a git repository
  // (its branches and tags are imported) or a plain directory (its files
  // become the first commit of default_branch, authored by the actor).
  // default_branch "" means the source's current branch for a repository,
  // "main" for a directory. maintainers empty means the actor alone.
  Result<LocalRepo> CreateRepo(const std::string& name, const std::string& from_dir,
                               const std::vector<std::string>& maintainers,
                               const std::string& default_branch);
  Result<LocalRepo> GetRepo(const std::string& repo);
  // A push that happened outside the forge's own writes (git over HTTP):
  // the `push` event (before "" for a new branch), and `pull.synchronized`
  // when branch is an open pull request's head; acted as the actor.
  Status RecordPush(const std::string& repo, const std::string& branch, const std::string& before,
                    const std::string& after, bool forced);
  Result<std::vector<LocalRepo>> ListRepos();

  Result<Issue> CreateIssue(const std::string& repo, const std::string& title,
                            const std::string& body, const std::vector<std::string>& labels = {});
  // Issues and pull requests by number, oldest first.
  Result<std::vector<Issue>> ListIssues(const std::string& repo, const IssueFilter& filter);
  // Pull requests in state (open | closed | merged | all), oldest first.
  Result<std::vector<PullRequest>> ListPulls(const std::string& repo, const std::string& state);
  // Changes what is given. Works on issues and pull requests alike.
  Status EditIssue(const std::string& repo, int64_t number, const std::optional<std::string>& title,
                   const std::optional<std::string>& body);
  // Closes an issue or a pull request (without merging). Closing a closed one
  // changes nothing; a merged pull request cannot be closed.
  Status Close(const std::string& repo, int64_t number);
  // Opens a closed issue or pull request again; an open one is left as is.
  Status Reopen(const std::string& repo, int64_t number);
  // EditIssue, then Close (state "closed") or Reopen ("open"), and labels
  // (when given, the whole set: a maintainer's, each in the label set) as
  // one: every check passes before anything is written, or nothing is (the
  // API's PATCH).
  Status Update(const std::string& repo, int64_t number, const std::optional<std::string>& title,
                const std::optional<std::string>& body, const std::optional<std::string>& state,
                const std::optional<std::vector<std::string>>& labels = std::nullopt);

  // Merges pull request number into its base, as options say (by default a
  // fast-forward when the base has not moved since the head branched off,
  // otherwise a merge commit made by the actor). Only maintainers may merge
  // (kPermission). A conflict is an error naming the files, and so is a
  // head other than options.expected_head; nothing changes then. Marks the
  // pull request merged and closes the open issues its body references
  // ("Fixes #N").
  Result<PullRequest> Merge(const std::string& repo, int64_t number,
                            const MergeOptions& options = {});
  // The unified diff of a pull request: from the merge base of base and head
  // to head (as merged, for a merged one).
  Result<std::string> Diff(const std::string& repo, int64_t number);
  // What GET .../pulls/N shows besides the listing's fields.
  Result<PullDetails> Details(const std::string& repo, int64_t number);
  // The files of its diff (Diff's), with their blobs.
  Result<std::vector<PullFile>> Files(const std::string& repo, int64_t number);
  // The inline comments of the reviews Reviews returns, oldest first, placed
  // in the diff at each review's commit.
  Result<std::vector<PullComment>> PullComments(const std::string& repo, int64_t number);
  // The commit ref names in repo: a 40-hex sha of a commit there, or a
  // branch (its commit now); kNotFound naming it otherwise.
  Result<std::string> CommitOf(const std::string& repo, const std::string& ref);
  // One comment, by id (kNotFound naming it when repo has none such).
  Result<Comment> GetComment(const std::string& repo, int64_t comment_id);

 private:
  Local(store::sql::Db db, std::string repos_dir, std::string actor, Access access)
      : db_(std::move(db)),
        repos_dir_(std::move(repos_dir)),
        actor_(std::move(actor)),
        access_(access) {}

  // kPermission unless the actor may change the item's title, body or state
  // (its author, a maintainer, the app); doing names the write.
  Status MayChange(const rows::RepoRow& repo, const Issue& item, std::string_view doing) const;
  // kPermission unless the actor is a maintainer or the app.
  Status MayMaintain(const rows::RepoRow& repo, std::string_view doing) const;

  // The diff of a pull request at head commit `head` (mu_ held).
  Result<std::string> DiffAt(const std::string& path, const std::string& base_sha,
                             const std::string& head_sha);
  // The commits a pull request's diff goes from and to: its merge base and
  // head as merged, or the merge base of its branches now and its head;
  // kNotFound naming the branch that is gone (mu_ held).
  struct Range {
    std::string from, to;
  };
  Result<Range> RangeOf(const rows::RepoRow& repo, const rows::ItemRow& item);
  Result<std::string> CommitOfLocked(const rows::RepoRow& repo, const std::string& ref);

  // A write transaction on db_, the write guard checked in it (mu_ held).
  Result<store::sql::Txn> Begin(const std::string& doing);

  std::mutex mu_;
  store::sql::Db db_;  // guarded by mu_
  WriteGuard guard_;
  const std::string repos_dir_;
  const std::string actor_;
  const Access access_;
};

}  // namespace kiln::forge
