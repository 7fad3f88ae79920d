// The forge on GitHub (docs/github.md): forge::Forge over the REST API v3
// and git over HTTPS, acting as the App's bot (or the token's user). Reads
// and writes are the ones a careful integration makes:
//   - kiln's labels are created with a colour and a description before
//     first use, under the names the repository's settings give them;
//   - reviews of kiln's own pull requests are posted as COMMENT reviews that
//     state the verdict (GitHub lets no one approve their own pull request);
//   - inline comments carry path, line and side (and start_line and
//     start_side for a range); severity leads the body;
//   - status descriptions are cut to GitHub's 140 characters;
//   - a refused token (401) is renewed once and the call repeated.
// Only repositories named in the settings are served; others are kNotFound.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "controller/config/github_settings.h"
#include "controller/forge/forge.h"
#include "controller/github/auth.h"
#include "controller/github/rest.h"

namespace kiln::github {

class GitHub : public forge::Forge {
 public:
  // bot: the login kiln's writes appear as ("kiln-factory[bot]").
  GitHub(Rest& rest, Auth& auth, Settings settings, std::string bot);

  std::string kind() const override { return "github"; }
  const std::string& actor() const override { return bot_; }

  // For the webhook receiver.
  bool Configured(const std::string& repo) const;
  // A label name of the repository as kiln's name, and back.
  std::string LabelIn(const std::string& repo, const std::string& label) const;
  std::string LabelOut(const std::string& repo, const std::string& label) const;
  // The token git fetches url with (a clone URL of a configured repository),
  // "" for other URLs; renew: the last one was refused, get a fresh one.
  Result<std::string> TokenForUrl(const std::string& url, bool renew = false);

  Result<forge::RepoInfo> Repo(const std::string& repo) override;
  Result<bool> IsTrusted(const std::string& repo, const std::string& user) override;
  Result<forge::Issue> GetIssue(const std::string& repo, int64_t number) override;
  Result<std::vector<forge::Comment>> Comments(const std::string& repo, int64_t number) override;
  Result<forge::Comment> AddComment(const std::string& repo, int64_t number,
                                    const std::string& body) override;
  Status EditComment(const std::string& repo, int64_t comment_id, const std::string& body) override;
  Status AddLabels(const std::string& repo, int64_t number,
                   const std::vector<std::string>& labels) override;
  Status RemoveLabel(const std::string& repo, int64_t number, const std::string& label) override;
  Result<forge::PullRequest> GetPull(const std::string& repo, int64_t number) override;
  Result<std::optional<forge::PullRequest>> FindPull(const std::string& repo,
                                                     const std::string& head_branch) override;
  Result<forge::PullRequest> OpenPull(const std::string& repo, const std::string& title,
                                      const std::string& body, const std::string& head_branch,
                                      const std::string& base_branch) override;
  Status EditPull(const std::string& repo, int64_t number, const std::string& title,
                  const std::string& body) override;
  Result<std::vector<forge::Review>> Reviews(const std::string& repo, int64_t number) override;
  Result<forge::Review> AddReview(const std::string& repo, int64_t number,
                                  const forge::Review& review) override;
  Status SetStatus(const std::string& repo, const std::string& sha,
                   const forge::CommitStatus& status) override;
  Result<std::vector<forge::CommitStatus>> Statuses(const std::string& repo,
                                                    const std::string& sha) override;
  Status PushBranch(const std::string& repo, const std::string& branch,
                    const std::string& source_repo, const std::string& commit, bool force) override;
  Status DeleteBranch(const std::string& repo, const std::string& branch) override;
  Result<std::optional<std::string>> BranchSha(const std::string& repo,
                                               const std::string& branch) override;

 private:
  const RepoSettings* Find(const std::string& repo) const;
  // kNotFound for a repository the settings do not name.
  Status Served(const std::string& repo) const;
  Result<Reply> Call(const std::string& repo, const std::string& method, const std::string& path,
                     const nlohmann::json& body = nullptr);
  Result<nlohmann::json> List(const std::string& repo, const std::string& path);
  // The repository's labels (GitHub's names), read once.
  Result<std::vector<std::string>> RepoLabels(const std::string& repo);
  Status EnsureLabel(const std::string& repo, const std::string& kiln_name,
                     const std::string& github_name);
  forge::Issue IssueFrom(const std::string& repo, const nlohmann::json& j) const;
  forge::PullRequest PullFrom(const std::string& repo, const nlohmann::json& j) const;

  Rest& rest_;
  Auth& auth_;
  const Settings settings_;
  const std::string bot_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> labels_;  // guarded by mu_
  std::map<std::string, std::string> clone_urls_;           // guarded by mu_
};

}  // namespace kiln::github
