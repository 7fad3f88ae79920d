// The local forge's diffs of pull requests: the patch, its files with their
// blobs, what a pull request's GitHub shape counts (commits, lines,
// mergeability), and the commit a ref names.
#include "base/strings.h"
#include "controller/forge/local.h"
#include "controller/forge/patches.h"
#include "controller/forge/rows.h"
#include "controller/forge/validate.h"
#include "controller/git/bare.h"
#include "controller/git/write.h"

namespace kiln::forge {

namespace bare = git::bare;

namespace {

std::string What(const std::string& repo, int64_t number) {
  return "pull request #" + std::to_string(number) + " in " + Quote(repo);
}

}  // namespace

Result<std::string> Local::DiffAt(const std::string& path, const std::string& base_sha,
                                  const std::string& head_sha) {
  KILN_ASSIGN_OR_RETURN(std::string from, git::MergeBase(path, base_sha, head_sha));
  return git::DiffCommits(path, from, head_sha);
}

Result<Local::Range> Local::RangeOf(const rows::RepoRow& r, const rows::ItemRow& item) {
  const std::string what = What(r.name, item.issue.number);
  if (item.issue.state == "merged") return Range{item.merge_base_sha, item.merged_head_sha};
  KILN_ASSIGN_OR_RETURN(PullRequest pull, rows::ToPull(item, r.path));
  if (pull.head_sha.empty()) {
    return Error::NotFound("diff of " + what + ": head branch " + Quote(pull.head_branch) +
                           " no longer exists");
  }
  if (pull.base_sha.empty()) {
    return Error::NotFound("diff of " + what + ": base branch " + Quote(pull.base_branch) +
                           " no longer exists");
  }
  auto from = git::MergeBase(r.path, pull.base_sha, pull.head_sha);
  if (!from.ok()) return from.error().Wrap("diff of " + what);
  return Range{*from, pull.head_sha};
}

Result<std::string> Local::Diff(const std::string& repo, int64_t number) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadPull(db_, repo, number));
  KILN_ASSIGN_OR_RETURN(Range range, RangeOf(r, item));
  auto patch = git::DiffCommits(r.path, range.from, range.to);
  if (!patch.ok()) return patch.error().Wrap("diff of " + What(repo, number));
  return std::move(*patch);
}

Result<std::vector<PullFile>> Local::Files(const std::string& repo, int64_t number) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadPull(db_, repo, number));
  KILN_ASSIGN_OR_RETURN(Range range, RangeOf(r, item));
  auto patch = git::DiffCommits(r.path, range.from, range.to);
  if (!patch.ok()) return patch.error().Wrap("diff of " + What(repo, number));
  std::vector<PullFile> out;
  for (patches::FilePatch& f : patches::Split(*patch)) {
    // A removed file's blob is the one it had.
    const bool removed = f.status == "removed";
    auto sha = bare::EntrySha(r.path, removed ? range.from : range.to, f.path);
    if (!sha.ok()) return sha.error().Wrap("files of " + What(repo, number));
    out.push_back(PullFile{std::move(f), sha->value_or("")});
  }
  return out;
}

Result<PullDetails> Local::Details(const std::string& repo, int64_t number) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadPull(db_, repo, number));
  const std::string what = What(repo, number);
  PullDetails d;
  // The diff and the commits as merged, or as the branches are now; none
  // when a branch is gone.
  auto range = RangeOf(r, item);
  if (!range.ok() && range.error().code() != Error::Code::kNotFound) return range.error();
  if (range.ok()) {
    if (item.issue.state == "open") {
      KILN_ASSIGN_OR_RETURN(PullRequest pull, rows::ToPull(item, r.path));
      auto clean = bare::MergesCleanly(r.path, pull.base_sha, pull.head_sha);
      if (!clean.ok()) return clean.error().Wrap(what);
      d.mergeable = *clean;
    }
    auto commits = bare::CountCommits(r.path, range->from, range->to);
    if (!commits.ok()) return commits.error().Wrap(what);
    d.commits = *commits;
    auto patch = git::DiffCommits(r.path, range->from, range->to);
    if (!patch.ok()) return patch.error().Wrap("diff of " + what);
    for (const patches::FilePatch& f : patches::Split(*patch)) {
      ++d.changed_files;
      d.additions += f.additions;
      d.deletions += f.deletions;
    }
  }
  KILN_ASSIGN_OR_RETURN(std::vector<Review> reviews, rows::LoadReviews(db_, repo, number));
  for (const Review& rv : reviews) {
    if (rv.verdict != "pending") d.review_comments += static_cast<int64_t>(rv.comments.size());
  }
  return d;
}

Result<std::string> Local::CommitOfLocked(const rows::RepoRow& r, const std::string& ref) {
  if (auto full = validate::Sha(ref, "commit"); full.ok()) return *full;
  if (!bare::ValidBranch(ref)) return validate::Sha(ref, "commit").error();
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> at, bare::BranchSha(r.path, ref));
  if (!at) {
    return Error::NotFound(Quote(ref) + " is neither a commit sha nor a branch of " +
                           Quote(r.name));
  }
  return *at;
}

Result<std::string> Local::CommitOf(const std::string& repo, const std::string& ref) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(std::string commit, CommitOfLocked(r, ref));
  KILN_ASSIGN_OR_RETURN(bool exists, bare::HasCommit(r.path, commit));
  if (!exists) return Error::NotFound("commit " + Quote(commit) + " not found in " + Quote(repo));
  return commit;
}

}  // namespace kiln::forge
