// GitHub's JSON shapes for the double's objects: users, repositories, labels,
// issues, pull requests, comments, reviews, review comments and statuses,
// with the URLs a GitHub Enterprise server at https://127.0.0.1:PORT gives.
#include <algorithm>

#include "tests/github/double_internal.h"

namespace kiln::testing {

using ghd::Issue;
using ghd::json;
using ghd::Repo;

namespace {

std::string NodeId(const char* prefix, int64_t id) {
  return std::string(prefix) + "_kwDO" + std::to_string(id);
}

json NullIfEmpty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

}  // namespace

std::string GitHubDouble::Impl::web_base() const {
  return "https://127.0.0.1:" + std::to_string(port);
}

std::string GitHubDouble::Impl::api_base() const { return web_base() + "/api/v3"; }

int64_t GitHubDouble::Impl::UserId(const std::string& login) {
  auto it = user_ids.find(login);
  if (it != user_ids.end()) return it->second;
  int64_t id = 500000 + static_cast<int64_t>(user_ids.size()) + 1;
  user_ids[login] = id;
  return id;
}

json GitHubDouble::Impl::UserJson(const std::string& login) {
  bool bot = login.size() > 5 && login.compare(login.size() - 5, 5, "[bot]") == 0;
  int64_t id = UserId(login);
  std::string url = api_base() + "/users/" + ghd::UrlEncode(login);
  return {{"login", login},
          {"id", id},
          {"node_id", NodeId(bot ? "BOT" : "U", id)},
          {"avatar_url", web_base() + "/avatars/u/" + std::to_string(id)},
          {"url", url},
          {"html_url", web_base() + "/" + (bot ? "apps/" + opt.app_slug : login)},
          {"type", bot ? "Bot" : "User"},
          {"site_admin", false}};
}

std::string GitHubDouble::Impl::Association(const Repo& repo, const std::string& login) const {
  if (login == repo.owner) return "OWNER";
  if (repo.collaborators.count(login)) return "COLLABORATOR";
  for (const auto& [team, members] : teams) {
    if (team.rfind(repo.owner + "/", 0) == 0 && members.count(login)) return "MEMBER";
  }
  return "NONE";
}

json GitHubDouble::Impl::RepoJson(const Repo& repo, const std::string& viewer) {
  std::string url = api_base() + "/repos/" + repo.full_name();
  json owner = UserJson(repo.owner);
  owner["type"] = "Organization";
  auto role = repo.collaborators.find(viewer);
  bool bot = viewer == opt.app_slug + "[bot]" || viewer.empty();
  std::string r = bot ? "write" : role == repo.collaborators.end() ? "read" : role->second;
  return {{"id", repo.id},
          {"node_id", NodeId("R", repo.id)},
          {"name", repo.name},
          {"full_name", repo.full_name()},
          {"owner", owner},
          {"private", true},
          {"visibility", "private"},
          {"fork", false},
          {"archived", false},
          {"disabled", false},
          {"default_branch", "main"},
          {"html_url", web_base() + "/" + repo.full_name()},
          {"url", url},
          {"clone_url", web_base() + "/" + repo.full_name() + ".git"},
          {"git_url", web_base() + "/" + repo.full_name() + ".git"},
          {"issues_url", url + "/issues{/number}"},
          {"pulls_url", url + "/pulls{/number}"},
          {"permissions",
           {{"admin", r == "admin"},
            {"maintain", r == "admin" || r == "maintain"},
            {"push", r == "admin" || r == "maintain" || r == "write"},
            {"triage", r != "read"},
            {"pull", true}}}};
}

json GitHubDouble::Impl::LabelJson(const Repo& repo, const ghd::Label& label) {
  return {
      {"id", label.id},
      {"node_id", NodeId("LA", label.id)},
      {"url", api_base() + "/repos/" + repo.full_name() + "/labels/" + ghd::UrlEncode(label.name)},
      {"name", label.name},
      {"color", label.color},
      {"default", false},
      {"description", NullIfEmpty(label.description)}};
}

json GitHubDouble::Impl::LabelsJson(Repo& repo, const Issue& issue) {
  json out = json::array();
  for (const auto& name : issue.labels) {
    for (const auto& l : repo.labels) {
      if (l.name == name) out.push_back(LabelJson(repo, l));
    }
  }
  return out;
}

json GitHubDouble::Impl::IssueJson(Repo& repo, const Issue& issue) {
  std::string url =
      api_base() + "/repos/" + repo.full_name() + "/issues/" + std::to_string(issue.number);
  std::string kind = issue.is_pull ? "/pull/" : "/issues/";
  std::string html = web_base() + "/" + repo.full_name() + kind + std::to_string(issue.number);
  int64_t comments = 0;
  for (const auto& c : repo.comments) comments += c.number == issue.number ? 1 : 0;
  json j = {{"id", issue.id},
            {"node_id", NodeId(issue.is_pull ? "PR" : "I", issue.id)},
            {"url", url},
            {"repository_url", api_base() + "/repos/" + repo.full_name()},
            {"labels_url", url + "/labels{/name}"},
            {"comments_url", url + "/comments"},
            {"events_url", url + "/events"},
            {"html_url", html},
            {"number", issue.number},
            {"state", issue.state},
            {"state_reason", issue.state == "closed" ? json("completed") : json(nullptr)},
            {"title", issue.title},
            {"body", NullIfEmpty(issue.body)},
            {"user", UserJson(issue.user)},
            {"labels", LabelsJson(repo, issue)},
            {"assignee", nullptr},
            {"assignees", json::array()},
            {"milestone", nullptr},
            {"locked", false},
            {"comments", comments},
            {"created_at", issue.created_at},
            {"updated_at", issue.updated_at},
            {"closed_at", NullIfEmpty(issue.closed_at)},
            {"author_association", Association(repo, issue.user)}};
  if (issue.is_pull) {
    std::string pull_url =
        api_base() + "/repos/" + repo.full_name() + "/pulls/" + std::to_string(issue.number);
    j["draft"] = issue.draft;
    j["pull_request"] = {{"url", pull_url},
                         {"html_url", html},
                         {"diff_url", html + ".diff"},
                         {"patch_url", html + ".patch"},
                         {"merged_at", nullptr}};
  }
  return j;
}

json GitHubDouble::Impl::PullJson(Repo& repo, const Issue& pull, bool full) {
  std::string url =
      api_base() + "/repos/" + repo.full_name() + "/pulls/" + std::to_string(pull.number);
  std::string html = web_base() + "/" + repo.full_name() + "/pull/" + std::to_string(pull.number);
  json repo_json = RepoJson(repo, "");
  auto side = [&](const std::string& ref, const std::string& sha) {
    return json{{"label", repo.owner + ":" + ref},
                {"ref", ref},
                {"sha", sha},
                {"user", repo_json["owner"]},
                {"repo", repo_json}};
  };
  std::string base_sha = BranchShaLocked(repo, pull.base);
  int64_t comments = 0;
  for (const auto& c : repo.comments) comments += c.number == pull.number ? 1 : 0;
  json j = {
      {"url", url},
      {"id", pull.pull_id},
      {"node_id", NodeId("PR", pull.pull_id)},
      {"html_url", html},
      {"diff_url", html + ".diff"},
      {"patch_url", html + ".patch"},
      {"issue_url",
       api_base() + "/repos/" + repo.full_name() + "/issues/" + std::to_string(pull.number)},
      {"commits_url", url + "/commits"},
      {"review_comments_url", url + "/comments"},
      {"comments_url", api_base() + "/repos/" + repo.full_name() + "/issues/" +
                           std::to_string(pull.number) + "/comments"},
      {"statuses_url", api_base() + "/repos/" + repo.full_name() + "/statuses/" + pull.head_sha},
      {"number", pull.number},
      {"state", pull.state},
      {"locked", false},
      {"title", pull.title},
      {"user", UserJson(pull.user)},
      {"body", NullIfEmpty(pull.body)},
      {"labels", LabelsJson(repo, pull)},
      {"milestone", nullptr},
      {"draft", pull.draft},
      {"created_at", pull.created_at},
      {"updated_at", pull.updated_at},
      {"closed_at", NullIfEmpty(pull.closed_at)},
      {"merged_at", nullptr},
      {"merge_commit_sha", nullptr},
      {"assignee", nullptr},
      {"assignees", json::array()},
      {"requested_reviewers", json::array()},
      {"requested_teams", json::array()},
      {"head", side(pull.head, pull.head_sha)},
      {"base", side(pull.base, base_sha)},
      {"author_association", Association(repo, pull.user)}};
  if (!full) return j;
  j["merged"] = false;
  j["mergeable"] = pull.state == "open" ? json(true) : json(nullptr);
  j["rebaseable"] = pull.state == "open" ? json(true) : json(nullptr);
  j["mergeable_state"] = pull.state == "open" ? "clean" : "unknown";
  j["merged_by"] = nullptr;
  j["maintainer_can_modify"] = false;
  j["comments"] = comments;
  j["review_comments"] = pull.review_comments.size();
  // Counts of the diff from the merge base, as GitHub's "Files changed".
  int64_t commits = 0, additions = 0, deletions = 0, files = 0;
  if (!base_sha.empty() && !pull.head_sha.empty()) {
    std::string range = base_sha + ".." + pull.head_sha;
    commits = std::stoll(ghd::Git({"--git-dir", repo.bare, "rev-list", "--count", range}));
    std::string numstat =
        ghd::Git({"--git-dir", repo.bare, "diff", "--numstat", base_sha + "..." + pull.head_sha});
    for (size_t start = 0; start < numstat.size();) {
      size_t end = std::min(numstat.find('\n', start), numstat.size());
      std::string line = numstat.substr(start, end - start);
      start = end + 1;
      ++files;
      if (line.empty() || line[0] == '-') continue;  // binary: "-\t-\tpath"
      size_t tab = line.find('\t');
      additions += std::stoll(line.substr(0, tab));
      deletions += std::stoll(line.substr(tab + 1));
    }
  }
  j["commits"] = commits;
  j["additions"] = additions;
  j["deletions"] = deletions;
  j["changed_files"] = files;
  return j;
}

json GitHubDouble::Impl::CommentJson(Repo& repo, const ghd::IssueComment& c) {
  const Issue& issue = repo.issues.at(c.number);
  std::string kind = issue.is_pull ? "/pull/" : "/issues/";
  return {{"id", c.id},
          {"node_id", NodeId("IC", c.id)},
          {"url",
           api_base() + "/repos/" + repo.full_name() + "/issues/comments/" + std::to_string(c.id)},
          {"html_url", web_base() + "/" + repo.full_name() + kind + std::to_string(c.number) +
                           "#issuecomment-" + std::to_string(c.id)},
          {"issue_url",
           api_base() + "/repos/" + repo.full_name() + "/issues/" + std::to_string(c.number)},
          {"body", c.body},
          {"user", UserJson(c.user)},
          {"created_at", c.created_at},
          {"updated_at", c.updated_at},
          {"author_association", Association(repo, c.user)}};
}

json GitHubDouble::Impl::ReviewJson(Repo& repo, const Issue& pull, const ghd::Review& r) {
  std::string html = web_base() + "/" + repo.full_name() + "/pull/" + std::to_string(pull.number);
  return {{"id", r.id},
          {"node_id", NodeId("PRR", r.id)},
          {"user", UserJson(r.user)},
          {"body", r.body},
          {"state", r.state},
          {"commit_id", r.commit_id},
          {"submitted_at", r.state == "PENDING" ? json(nullptr) : json(r.submitted_at)},
          {"html_url", html + "#pullrequestreview-" + std::to_string(r.id)},
          {"pull_request_url",
           api_base() + "/repos/" + repo.full_name() + "/pulls/" + std::to_string(pull.number)},
          {"author_association", Association(repo, r.user)}};
}

json GitHubDouble::Impl::ReviewCommentJson(Repo& repo, const Issue& pull,
                                           const ghd::ReviewComment& c) {
  std::string pull_url =
      api_base() + "/repos/" + repo.full_name() + "/pulls/" + std::to_string(pull.number);
  std::string html = web_base() + "/" + repo.full_name() + "/pull/" + std::to_string(pull.number);
  return {{"id", c.id},
          {"node_id", NodeId("PRRC", c.id)},
          {"url",
           api_base() + "/repos/" + repo.full_name() + "/pulls/comments/" + std::to_string(c.id)},
          {"pull_request_review_id", c.review_id},
          {"diff_hunk", c.diff_hunk},
          {"path", c.path},
          {"commit_id", c.commit_id},
          {"original_commit_id", c.commit_id},
          {"user", UserJson(c.user)},
          {"body", c.body},
          {"created_at", c.created_at},
          {"updated_at", c.created_at},
          {"html_url", html + "#discussion_r" + std::to_string(c.id)},
          {"pull_request_url", pull_url},
          {"author_association", Association(repo, c.user)},
          {"line", c.line},
          {"original_line", c.line},
          {"side", c.side},
          {"start_line", c.start_line == 0 ? json(nullptr) : json(c.start_line)},
          {"original_start_line", c.start_line == 0 ? json(nullptr) : json(c.start_line)},
          {"start_side", NullIfEmpty(c.start_side)},
          {"subject_type", "line"}};
}

json GitHubDouble::Impl::StatusJson(Repo& repo, const ghd::Status& s) {
  return {{"id", s.id},
          {"node_id", NodeId("SC", s.id)},
          {"url", api_base() + "/repos/" + repo.full_name() + "/statuses/" + s.sha},
          {"state", s.state},
          {"description", NullIfEmpty(s.description)},
          {"target_url", NullIfEmpty(s.target_url)},
          {"context", s.context},
          {"created_at", s.created_at},
          {"updated_at", s.created_at},
          {"creator", UserJson(s.creator)}};
}

}  // namespace kiln::testing
