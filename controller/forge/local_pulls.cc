// The local forge's pull requests: opening, commit statuses, pushes to
// branches and merges. Repositories, issues, comments and labels are in
// local.cc, reviews in local_reviews.cc, diffs in local_diffs.cc.
#include <algorithm>

#include "base/clock.h"
#include "base/strings.h"
#include "controller/forge/db.h"
#include "controller/forge/local.h"
#include "controller/forge/rows.h"
#include "controller/forge/validate.h"
#include "controller/forge/wire.h"
#include "controller/git/bare.h"
#include "controller/git/write.h"

namespace kiln::forge {

namespace bare = git::bare;

namespace {

using store::sql::Stmt;
using store::sql::Txn;

std::string Short(const std::string& sha) { return sha.substr(0, 12); }

Status OneLine(std::string_view value, std::string_view what, size_t max) {
  if (value.find('\n') != std::string_view::npos || value.find('\r') != std::string_view::npos) {
    return Error::Invalid("the " + std::string(what) + " must be one line");
  }
  if (value.size() > max) {
    return Error::Invalid("the " + std::string(what) + " is longer than " + std::to_string(max) +
                          " bytes");
  }
  return Ok();
}

}  // namespace

Result<PullRequest> Local::GetPull(const std::string& repo, int64_t number) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadPull(db_, repo, number));
  return rows::ToPull(item, r.path);
}

Result<std::optional<PullRequest>> Local::FindPull(const std::string& repo,
                                                   const std::string& head_branch) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(std::optional<rows::ItemRow> item,
                        rows::OpenPullWithHead(db_, repo, head_branch));
  if (!item) return std::optional<PullRequest>();
  KILN_ASSIGN_OR_RETURN(PullRequest p, rows::ToPull(*item, r.path));
  return std::optional<PullRequest>(std::move(p));
}

Result<std::vector<PullRequest>> Local::ListPulls(const std::string& repo,
                                                  const std::string& state) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  IssueFilter f;
  f.state = state;
  f.kind = IssueFilter::Kind::kPulls;
  KILN_ASSIGN_OR_RETURN(std::vector<rows::ItemRow> items, rows::LoadItems(db_, repo, f));
  std::vector<PullRequest> out;
  for (const auto& item : items) {
    KILN_ASSIGN_OR_RETURN(PullRequest p, rows::ToPull(item, r.path));
    out.push_back(std::move(p));
  }
  return out;
}

Result<PullRequest> Local::OpenPull(const std::string& repo, const std::string& title,
                                    const std::string& body, const std::string& head_branch,
                                    const std::string& base_branch) {
  KILN_TRY(validate::Title(title));
  KILN_TRY(validate::Body(body, "body"));
  if (!bare::ValidBranch(head_branch)) {
    return Error::Invalid("head branch " + Quote(head_branch) + " is not a valid branch name");
  }
  if (!base_branch.empty() && !bare::ValidBranch(base_branch)) {
    return Error::Invalid("base branch " + Quote(base_branch) + " is not a valid branch name");
  }
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  const std::string base = base_branch.empty() ? r.default_branch : base_branch;
  if (base == head_branch) {
    return Error::Invalid("head and base are both " + Quote(base) + ": nothing to merge");
  }
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> head_sha, bare::BranchSha(r.path, head_branch));
  if (!head_sha) {
    return Error::Invalid("head branch " + Quote(head_branch) + " not found in " + Quote(repo));
  }
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> base_sha, bare::BranchSha(r.path, base));
  if (!base_sha)
    return Error::Invalid("base branch " + Quote(base) + " not found in " + Quote(repo));
  KILN_ASSIGN_OR_RETURN(bool merged, bare::IsAncestor(r.path, *head_sha, *base_sha));
  if (merged) {
    return Error::Invalid("no commits between " + Quote(base) + " and " + Quote(head_branch) +
                          " in " + Quote(repo) + ": the head is already in the base");
  }
  const int64_t now = NowMs();
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("opening a pull request in " + repo));
  KILN_ASSIGN_OR_RETURN(std::optional<rows::ItemRow> open,
                        rows::OpenPullWithHead(db_, repo, head_branch));
  if (open) {
    return Error::Invalid("pull request #" + std::to_string(open->issue.number) + " in " +
                          Quote(repo) + " is already open for head branch " + Quote(head_branch));
  }
  KILN_ASSIGN_OR_RETURN(int64_t number, rows::TakeNumber(db_, repo));
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt,
      db_.Prepare("opening a pull request in " + repo,
                  "INSERT INTO forge_items (repo, number, is_pull, title, body, author, state, "
                  "labels, head_branch, base_branch, created_ms, updated_ms) VALUES (?1, ?2, 1, "
                  "?3, ?4, ?5, 'open', '[]', ?6, ?7, ?8, ?8)"));
  stmt.Bind(1, repo)
      .Bind(2, number)
      .Bind(3, title)
      .Bind(4, body)
      .Bind(5, actor_)
      .Bind(6, head_branch)
      .Bind(7, base)
      .Bind(8, now);
  KILN_TRY(stmt.Run());
  KILN_TRY(rows::Emit(
      db_, actor_, "pull.opened", repo, number,
      {{"head_branch", head_branch}, {"base_branch", base}, {"head_sha", *head_sha}}, now));
  KILN_TRY(txn.Commit());
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadItem(db_, repo, number));
  return rows::ToPull(item, r.path);
}

// --- statuses ----------------------------------------------------------------

Status Local::SetStatus(const std::string& repo, const std::string& sha,
                        const CommitStatus& status) {
  KILN_ASSIGN_OR_RETURN(std::string commit, validate::Sha(sha, "commit"));
  KILN_TRY(validate::StatusState(status.state));
  if (Trim(status.context).empty()) return Error::Invalid("the status context is empty");
  KILN_TRY(OneLine(status.context, "status context", 255));
  KILN_TRY(OneLine(status.description, "status description", 1024));
  KILN_TRY(OneLine(status.target_url, "status target_url", 2048));
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  // A status is a claim about the commit ("kiln/verify: success"): only
  // those with write access make it.
  KILN_TRY(MayMaintain(r, "setting status " + Quote(status.context)));
  KILN_ASSIGN_OR_RETURN(bool exists, bare::HasCommit(r.path, commit));
  if (!exists) return Error::NotFound("commit " + Quote(commit) + " not found in " + Quote(repo));
  const int64_t now = NowMs();
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("setting a status in " + repo));
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt,
      db_.Prepare("setting status " + status.context + " of " + Short(commit),
                  "INSERT INTO forge_statuses (repo, sha, context, state, description, "
                  "target_url, author, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                  "ON CONFLICT (repo, sha, context) DO UPDATE SET state = excluded.state, "
                  "description = excluded.description, target_url = excluded.target_url, "
                  "author = excluded.author, created_ms = excluded.created_ms"));
  stmt.Bind(1, repo)
      .Bind(2, commit)
      .Bind(3, status.context)
      .Bind(4, status.state)
      .Bind(5, status.description)
      .Bind(6, status.target_url)
      .Bind(7, actor_)
      .Bind(8, now);
  KILN_TRY(stmt.Run());
  KILN_TRY(rows::Emit(db_, actor_, "status.created", repo, 0,
                      {{"sha", commit},
                       {"context", status.context},
                       {"state", status.state},
                       {"description", status.description},
                       {"target_url", status.target_url}},
                      now));
  return txn.Commit();
}

Result<std::vector<CommitStatus>> Local::Statuses(const std::string& repo, const std::string& sha) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(std::string commit, CommitOfLocked(r, sha));
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt, db_.Prepare("reading the statuses of " + Short(commit),
                             "SELECT context, state, description, target_url, created_ms, "
                             "author FROM forge_statuses WHERE repo = ?1 AND sha = ?2 ORDER BY "
                             "context"));
  stmt.Bind(1, repo).Bind(2, commit);
  std::vector<CommitStatus> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    out.push_back(CommitStatus{stmt.Text(0), stmt.Text(1), stmt.Text(2), stmt.Text(3), stmt.Int(4),
                               commit, stmt.Text(5)});
  }
}

// --- pushes and merges -------------------------------------------------------

Result<std::optional<std::string>> Local::BranchSha(const std::string& repo,
                                                    const std::string& branch) {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
    // People push with plain git; a push through the forge writes as the
    // app does.
    KILN_TRY(MayMaintain(r, "pushing " + Quote(branch)));
    path = r.path;
  }
  return bare::BranchSha(path, branch);
}

Status Local::DeleteBranch(const std::string& repo, const std::string& branch) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_TRY(MayMaintain(r, "deleting branch " + Quote(branch)));
  if (branch == r.default_branch) {
    return Error::Invalid("branch " + Quote(branch) + " is the default branch of " + Quote(repo) +
                          "; it is not deleted");
  }
  // The check and the deletion in one transaction: no pull request opens between.
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("deleting branch " + branch + " of " + repo));
  KILN_ASSIGN_OR_RETURN(std::optional<rows::ItemRow> pull,
                        rows::OpenPullWithHead(db_, repo, branch));
  if (pull) {
    return Error::Invalid("branch " + Quote(branch) + " of " + Quote(repo) +
                          " is the head of open pull request #" +
                          std::to_string(pull->issue.number));
  }
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> before, bare::BranchSha(r.path, branch));
  if (!before) {
    return Error::NotFound("repository " + Quote(repo) + " has no branch " + Quote(branch));
  }
  KILN_TRY(rows::Emit(db_, actor_, "push", repo, 0,
                      {{"branch", branch}, {"before", *before}, {"after", ""}, {"deleted", true}},
                      NowMs()));
  KILN_TRY(bare::DeleteBranch(r.path, branch));
  return txn.Commit();
}

Status Local::PushBranch(const std::string& repo, const std::string& branch,
                         const std::string& source_repo, const std::string& commit, bool force) {
  if (!bare::ValidBranch(branch)) {
    return Error::Invalid("branch " + Quote(branch) + " is not a valid branch name");
  }
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
    // People push with plain git; a push through the forge writes as the
    // app does.
    KILN_TRY(MayMaintain(r, "pushing " + Quote(branch)));
    path = r.path;
  }
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> before, bare::BranchSha(path, branch));
  git::PushOptions options;
  options.force = force;
  if (Status st = git::Push(source_repo, commit, path, branch, options); !st.ok()) {
    return st.error().Wrap("pushing " + Quote(branch) + " to " + Quote(repo));
  }
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> after, bare::BranchSha(path, branch));
  if (!after) {
    return Error::Internal("pushing " + Quote(branch) + " to " + Quote(repo) +
                           ": the branch is missing after the push");
  }
  if (before == after) return Ok();  // nothing new: GitHub sends no event either
  return RecordPush(repo, branch, before.value_or(""), *after, force);
}

Status Local::RecordPush(const std::string& repo, const std::string& branch,
                         const std::string& before, const std::string& after, bool forced) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowMs();
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("recording a push to " + repo));
  KILN_ASSIGN_OR_RETURN(std::optional<rows::ItemRow> pull,
                        rows::OpenPullWithHead(db_, repo, branch));
  KILN_TRY(rows::Emit(
      db_, actor_, "push", repo, pull ? pull->issue.number : 0,
      {{"branch", branch}, {"before", before}, {"after", after}, {"forced", forced}}, now));
  if (pull) {
    KILN_TRY(rows::Touch(db_, repo, pull->issue.number, now));
    KILN_TRY(rows::Emit(db_, actor_, "pull.synchronized", repo, pull->issue.number,
                        {{"head_branch", branch}, {"head_sha", after}}, now));
  }
  return txn.Commit();
}

Result<PullRequest> Local::Merge(const std::string& repo, int64_t number,
                                 const MergeOptions& options) {
  bare::MergeStyle style = bare::MergeStyle::kFastForwardOrMerge;
  if (options.method == "merge") {
    style = bare::MergeStyle::kMergeCommit;
  } else if (options.method == "squash") {
    style = bare::MergeStyle::kSquash;
  } else if (options.method == "rebase") {
    style = bare::MergeStyle::kRebase;
  } else if (!options.method.empty()) {
    return Error::Invalid("merge method " + Quote(options.method) +
                          " is not one of merge, squash, rebase");
  }
  if (style == bare::MergeStyle::kRebase && (!options.title.empty() || !options.message.empty())) {
    return Error::Invalid(
        "a rebase keeps each commit's message: it takes no commit title or "
        "message");
  }
  if (!options.title.empty()) KILN_TRY(validate::Title(options.title));
  KILN_TRY(validate::Body(options.message, "commit message"));
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadPull(db_, repo, number));
  const std::string what = "pull request #" + std::to_string(number) + " in " + Quote(repo);
  KILN_TRY(MayMaintain(r, "merging " + what));
  if (item.issue.state != "open") {
    return Error::Invalid("merging " + what + ": it is " + item.issue.state);
  }
  const std::string n = std::to_string(number);
  const bool squash = style == bare::MergeStyle::kSquash;
  std::string title = options.title;
  if (title.empty()) {
    title = squash ? item.issue.title + " (#" + n + ")"
                   : "Merge pull request #" + n + " from " + item.head_branch;
  }
  std::string rest = options.message;
  if (rest.empty()) rest = squash ? item.issue.body : item.issue.title;
  const std::string message = title + "\n" + (Trim(rest).empty() ? "" : "\n" + rest + "\n");
  auto plan = bare::PlanMerge(r.path, item.base_branch, item.head_branch, message,
                              bare::Identity{actor_, actor_ + "@localhost"}, style);
  if (!plan.ok()) return plan.error().Wrap("merging " + what);
  if (!options.expected_head.empty() && options.expected_head != plan->head_sha) {
    return Error::Invalid("merging " + what + ": its head is " + Short(plan->head_sha) + ", not " +
                          Quote(options.expected_head) + "; nothing was changed");
  }

  const int64_t now = NowMs();
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("merging " + what));
  // Another forge instance may have merged or closed it since it was read.
  KILN_ASSIGN_OR_RETURN(rows::ItemRow again, rows::LoadPull(db_, repo, number));
  if (again.issue.state != "open") {
    return Error::Invalid("merging " + what + ": it is " + again.issue.state);
  }
  bool moved = false;
  if (!plan->up_to_date) {
    const std::string log = "merge pull request #" + std::to_string(number);
    if (Status st =
            bare::MoveBranch(r.path, item.base_branch, plan->result_sha, plan->base_sha, log);
        !st.ok()) {
      return st.error().Wrap("merging " + what);
    }
    moved = true;
  }
  auto record = [&]() -> Status {
    KILN_ASSIGN_OR_RETURN(
        Stmt stmt,
        db_.Prepare("merging " + what,
                    "UPDATE forge_items SET state = 'merged', merged_sha = ?3, merge_base_sha = "
                    "?4, merged_head_sha = ?5, updated_ms = ?6, closed_ms = ?6 WHERE repo = ?1 "
                    "AND number = ?2"));
    stmt.Bind(1, repo)
        .Bind(2, number)
        .Bind(3, plan->result_sha)
        .Bind(4, plan->merge_base)
        .Bind(5, plan->head_sha)
        .Bind(6, now);
    KILN_TRY(stmt.Run());
    KILN_TRY(rows::Emit(
        db_, actor_, "pull.closed", repo, number,
        {{"merged", true}, {"merged_sha", plan->result_sha}, {"fast_forward", plan->fast_forward}},
        now));
    for (int64_t n : validate::ClosingReferences(item.issue.body)) {
      auto target = rows::LoadItem(db_, repo, n);
      if (!target.ok()) {
        if (target.error().code() == Error::Code::kNotFound) continue;  // "#99": not ours to fix
        return target.error();
      }
      if (target->issue.is_pull || target->issue.state != "open") continue;
      KILN_TRY(rows::SetState(db_, repo, n, "closed", now));
      KILN_TRY(rows::Emit(db_, actor_, "issue.closed", repo, n, {{"closed_by", number}}, now));
    }
    return txn.Commit();
  };
  if (Status st = record(); !st.ok()) {
    // The store refused: put the base back where it was, if nobody moved it since.
    if (moved) {
      (void)bare::MoveBranch(r.path, item.base_branch, plan->base_sha, plan->result_sha,
                             "undo merge of pull request #" + std::to_string(number));
    }
    return st.error().Wrap("merging " + what);
  }
  KILN_ASSIGN_OR_RETURN(rows::ItemRow done, rows::LoadItem(db_, repo, number));
  return rows::ToPull(done, r.path);
}

}  // namespace kiln::forge
