#include "controller/pipeline/fenced_forge.h"

#include "base/strings.h"

namespace kiln::pipeline {
namespace {

std::string Item(const std::string& repo, int64_t number) {
  return repo + " #" + std::to_string(number);
}

}  // namespace

Result<forge::Comment> FencedForge::AddComment(const std::string& repo, int64_t number,
                                               const std::string& body) {
  KILN_TRY(check_("commenting on " + Item(repo, number)));
  return forge_.AddComment(repo, number, body);
}

Status FencedForge::EditComment(const std::string& repo, int64_t comment_id,
                                const std::string& body) {
  KILN_TRY(check_("editing comment " + std::to_string(comment_id) + " in " + repo));
  return forge_.EditComment(repo, comment_id, body);
}

Status FencedForge::AddLabels(const std::string& repo, int64_t number,
                              const std::vector<std::string>& labels) {
  KILN_TRY(check_("labelling " + Item(repo, number)));
  return forge_.AddLabels(repo, number, labels);
}

Status FencedForge::RemoveLabel(const std::string& repo, int64_t number, const std::string& label) {
  KILN_TRY(check_("removing label " + Quote(label) + " from " + Item(repo, number)));
  return forge_.RemoveLabel(repo, number, label);
}

Result<forge::PullRequest> FencedForge::OpenPull(const std::string& repo, const std::string& title,
                                                 const std::string& body,
                                                 const std::string& head_branch,
                                                 const std::string& base_branch) {
  KILN_TRY(check_("opening a pull request from " + head_branch + " in " + repo));
  return forge_.OpenPull(repo, title, body, head_branch, base_branch);
}

Status FencedForge::EditPull(const std::string& repo, int64_t number, const std::string& title,
                             const std::string& body) {
  KILN_TRY(check_("editing " + Item(repo, number)));
  return forge_.EditPull(repo, number, title, body);
}

Result<forge::Review> FencedForge::AddReview(const std::string& repo, int64_t number,
                                             const forge::Review& review) {
  KILN_TRY(check_("reviewing " + Item(repo, number)));
  return forge_.AddReview(repo, number, review);
}

Status FencedForge::SetStatus(const std::string& repo, const std::string& sha,
                              const forge::CommitStatus& status) {
  KILN_TRY(check_("setting status " + status.context + " in " + repo));
  return forge_.SetStatus(repo, sha, status);
}

Status FencedForge::PushBranch(const std::string& repo, const std::string& branch,
                               const std::string& source_repo, const std::string& commit,
                               bool force) {
  KILN_TRY(check_("pushing " + branch + " to " + repo));
  return forge_.PushBranch(repo, branch, source_repo, commit, force);
}

Status FencedForge::DeleteBranch(const std::string& repo, const std::string& branch) {
  KILN_TRY(check_("deleting branch " + branch + " of " + repo));
  return forge_.DeleteBranch(repo, branch);
}

}  // namespace kiln::pipeline
