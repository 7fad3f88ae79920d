// The pipeline's forge in a fleet: every write first asks whether this host
// still leads the pipeline (State::Leads), and one made after the lead passed
// to another host is refused with kPermission, nothing written. Reads go
// straight through. A forge is another system, so the check and the write
// cannot share a transaction: what is left is the time between the two
// (docs/fleet.md).
#pragma once

#include <functional>

#include "controller/forge/forge.h"

namespace kiln::pipeline {

class FencedForge final : public forge::Forge {
 public:
  // check(doing): Ok to write, or the refusal.
  FencedForge(forge::Forge& forge, std::function<Status(const std::string&)> check)
      : forge_(forge), check_(std::move(check)) {}

  std::string kind() const override { return forge_.kind(); }
  const std::string& actor() const override { return forge_.actor(); }
  Result<forge::RepoInfo> Repo(const std::string& repo) override { return forge_.Repo(repo); }
  Result<bool> IsTrusted(const std::string& repo, const std::string& user) override {
    return forge_.IsTrusted(repo, user);
  }
  Result<forge::Issue> GetIssue(const std::string& repo, int64_t number) override {
    return forge_.GetIssue(repo, number);
  }
  Result<std::vector<forge::Comment>> Comments(const std::string& repo, int64_t number) override {
    return forge_.Comments(repo, number);
  }
  Result<forge::Comment> AddComment(const std::string& repo, int64_t number,
                                    const std::string& body) override;
  Status EditComment(const std::string& repo, int64_t comment_id, const std::string& body) override;
  Status AddLabels(const std::string& repo, int64_t number,
                   const std::vector<std::string>& labels) override;
  Status RemoveLabel(const std::string& repo, int64_t number, const std::string& label) override;
  Result<forge::PullRequest> GetPull(const std::string& repo, int64_t number) override {
    return forge_.GetPull(repo, number);
  }
  Result<std::optional<forge::PullRequest>> FindPull(const std::string& repo,
                                                     const std::string& head_branch) override {
    return forge_.FindPull(repo, head_branch);
  }
  Result<forge::PullRequest> OpenPull(const std::string& repo, const std::string& title,
                                      const std::string& body, const std::string& head_branch,
                                      const std::string& base_branch) override;
  Status EditPull(const std::string& repo, int64_t number, const std::string& title,
                  const std::string& body) override;
  Result<std::vector<forge::Review>> Reviews(const std::string& repo, int64_t number) override {
    return forge_.Reviews(repo, number);
  }
  Result<forge::Review> AddReview(const std::string& repo, int64_t number,
                                  const forge::Review& review) override;
  Status SetStatus(const std::string& repo, const std::string& sha,
                   const forge::CommitStatus& status) override;
  Result<std::vector<forge::CommitStatus>> Statuses(const std::string& repo,
                                                    const std::string& sha) override {
    return forge_.Statuses(repo, sha);
  }
  Status PushBranch(const std::string& repo, const std::string& branch,
                    const std::string& source_repo, const std::string& commit, bool force) override;
  Status DeleteBranch(const std::string& repo, const std::string& branch) override;
  Result<std::optional<std::string>> BranchSha(const std::string& repo,
                                               const std::string& branch) override {
    return forge_.BranchSha(repo, branch);
  }

 private:
  forge::Forge& forge_;
  std::function<Status(const std::string&)> check_;
};

}  // namespace kiln::pipeline
