#include "controller/github/github.h"

#include <curl/curl.h>

#include <algorithm>

#include "base/strings.h"
#include "controller/forge/validate.h"
#include "controller/git/write.h"

namespace kiln::github {

using nlohmann::json;

namespace {

// GitHub's limit on a commit status description.
constexpr size_t kStatusDescriptionMax = 140;

struct LabelStyle {
  const char* color;
  const char* description;
};

// The colour and description kiln gives a label it creates; "area:" labels
// share one.
LabelStyle StyleOf(const std::string& label) {
  static const std::map<std::string, LabelStyle> styles = {
      {"triaged", {"0e8a16", "kiln has triaged this issue"}},
      {"needs-info", {"d876e3", "More information is needed"}},
      {"duplicate", {"cfd3d7", "This issue or pull request already exists"}},
      {"bug", {"d73a4a", "Something is not working"}},
      {"enhancement", {"a2eeef", "New feature or request"}},
      {"documentation", {"0075ca", "Improvements or additions to documentation"}},
      {"blocked", {"b60205", "kiln cannot go on: see its comment"}},
      {"ready-to-spec", {"fbca04", "Ready for kiln to write a spec"}},
      {"plan-approved", {"0e8a16", "The spec is approved: kiln implements it"}},
  };
  auto it = styles.find(label);
  if (it != styles.end()) return it->second;
  return {"c5def5", "An area of the code"};
}

// Percent-encoding of one path or query component.
std::string Escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size()));
  if (e == nullptr) return s;
  std::string out(e);
  curl_free(e);
  return out;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string Login(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? Str(*it, "login") : "";
}

int64_t Int(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

int64_t Ms(const json& j, const char* key) {
  auto t = ParseTimestamp(Str(j, key));
  return t ? *t * 1000 : 0;
}

forge::Comment CommentFrom(const json& j) {
  return {Int(j, "id"), Login(j, "user"), Str(j, "body"), Ms(j, "created_at"), Ms(j, "updated_at")};
}

std::string VerdictOf(const std::string& state) {
  if (state == "APPROVED") return "approve";
  if (state == "CHANGES_REQUESTED") return "request_changes";
  if (state == "COMMENTED") return "comment";
  return "dismissed";
}

std::string EventOf(const std::string& verdict) {
  if (verdict == "approve") return "APPROVE";
  if (verdict == "request_changes") return "REQUEST_CHANGES";
  return "COMMENT";
}

// A repository's URL prefix (scheme://host[:port]/owner/name), for matching
// clone URLs with or without ".git".
std::string Trim(std::string url) {
  if (url.size() > 4 && url.compare(url.size() - 4, 4, ".git") == 0) url.resize(url.size() - 4);
  return url;
}

}  // namespace

GitHub::GitHub(Rest& rest, Auth& auth, Settings settings, std::string bot)
    : rest_(rest), auth_(auth), settings_(std::move(settings)), bot_(std::move(bot)) {}

const RepoSettings* GitHub::Find(const std::string& repo) const {
  auto it = settings_.repos.find(repo);
  return it == settings_.repos.end() ? nullptr : &it->second;
}

bool GitHub::Configured(const std::string& repo) const { return Find(repo) != nullptr; }

std::string GitHub::LabelIn(const std::string& repo, const std::string& label) const {
  if (const RepoSettings* s = Find(repo)) {
    for (const auto& [ours, theirs] : s->labels) {
      if (theirs == label) return ours;
    }
  }
  return label;
}

std::string GitHub::LabelOut(const std::string& repo, const std::string& label) const {
  if (const RepoSettings* s = Find(repo)) {
    auto it = s->labels.find(label);
    if (it != s->labels.end()) return it->second;
  }
  return label;
}

namespace {

// send(authorization, &status) with repo's token; a 401 (expired or revoked)
// gets a new token and one more try.
template <typename Send>
auto WithToken(Auth& auth, const std::string& repo, Send send)
    -> decltype(send(std::string(), static_cast<long*>(nullptr))) {
  for (int attempt = 0;; ++attempt) {
    KILN_ASSIGN_OR_RETURN(std::string token, auth.Token(repo));
    long status = 0;
    auto result = send("Bearer " + token, &status);
    if (result || status != 401 || attempt == 1) return result;
    auth.Refused(repo);
  }
}

}  // namespace

Status GitHub::Served(const std::string& repo) const {
  if (Configured(repo)) return Ok();
  return Error::NotFound("repository " + Quote(repo) + " is not configured for kiln on GitHub");
}

Result<Reply> GitHub::Call(const std::string& repo, const std::string& method,
                           const std::string& path, const json& body) {
  KILN_TRY(Served(repo));
  return WithToken(auth_, repo, [&](const std::string& authorization, long* status) {
    return rest_.Call(method, path, body, authorization, status);
  });
}

Result<json> GitHub::List(const std::string& repo, const std::string& path) {
  KILN_TRY(Served(repo));
  return WithToken(auth_, repo, [&](const std::string& authorization, long* status) {
    return rest_.List(path, authorization, status);
  });
}

Result<std::string> GitHub::TokenForUrl(const std::string& url, bool renew) {
  const std::string wanted = Trim(url);
  // Clone URLs come from Repo(); one not seen yet (runs queued before a
  // restart) is looked up.
  for (bool lookup : {false, true}) {
    for (const auto& [repo, s] : settings_.repos) {
      std::string clone;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = clone_urls_.find(repo);
        if (it != clone_urls_.end()) clone = it->second;
      }
      if (clone.empty() && lookup) {
        auto info = Repo(repo);
        if (info) clone = info->clone_url;
      }
      if (clone.empty() || Trim(clone) != wanted) continue;
      if (renew) auth_.Refused(repo);
      return auth_.Token(repo);
    }
  }
  return std::string();
}

Result<forge::RepoInfo> GitHub::Repo(const std::string& repo) {
  KILN_ASSIGN_OR_RETURN(Reply r, Call(repo, "GET", "/repos/" + repo));
  forge::RepoInfo info;
  info.name = Str(r.body, "full_name");
  info.clone_url = Str(r.body, "clone_url");
  info.default_branch = Str(r.body, "default_branch");
  if (info.clone_url.empty() || info.default_branch.empty()) {
    return Error(Error::Code::kIO,
                 "GitHub's answer for " + Quote(repo) + " lacks clone_url or default_branch");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    clone_urls_[repo] = info.clone_url;
  }
  info.labels = forge::validate::DefaultLabels();
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> theirs, RepoLabels(repo));
  for (const auto& l : theirs) {
    std::string ours = LabelIn(repo, l);
    if (!forge::validate::LabelInSet(ours, info.labels)) info.labels.push_back(ours);
  }
  info.skills_dir = Find(repo)->skills_dir;
  return info;
}

Result<bool> GitHub::IsTrusted(const std::string& repo, const std::string& user) {
  const RepoSettings* s = Find(repo);
  if (s == nullptr) return false;
  if (std::find(s->trusted_users.begin(), s->trusted_users.end(), user) != s->trusted_users.end()) {
    return true;
  }
  auto perm =
      Call(repo, "GET", "/repos/" + repo + "/collaborators/" + Escape(user) + "/permission");
  if (perm) {
    std::string p = Str(perm->body, "permission");
    if (p == "admin" || p == "maintain" || p == "write") return true;
  } else if (perm.error().code() != Error::Code::kNotFound) {
    return perm.error();
  }
  for (const auto& team : s->trusted_teams) {
    size_t slash = team.find('/');
    if (slash == std::string::npos) continue;
    auto member = Call(repo, "GET",
                       "/orgs/" + Escape(team.substr(0, slash)) + "/teams/" +
                           Escape(team.substr(slash + 1)) + "/memberships/" + Escape(user));
    if (member && Str(member->body, "state") == "active") return true;
    if (!member && member.error().code() != Error::Code::kNotFound) return member.error();
  }
  return false;
}

forge::Issue GitHub::IssueFrom(const std::string& repo, const json& j) const {
  forge::Issue i;
  i.repo = repo;
  i.number = Int(j, "number");
  i.is_pull = j.contains("pull_request") || j.contains("head");
  i.title = Str(j, "title");
  i.body = Str(j, "body");
  i.author = Login(j, "user");
  i.state = Str(j, "state");
  if (j.value("merged", false)) i.state = "merged";
  if (auto it = j.find("labels"); it != j.end() && it->is_array()) {
    for (const auto& l : *it) {
      if (l.is_object()) i.labels.push_back(LabelIn(repo, Str(l, "name")));
    }
  }
  i.created_ms = Ms(j, "created_at");
  i.updated_ms = Ms(j, "updated_at");
  return i;
}

forge::PullRequest GitHub::PullFrom(const std::string& repo, const json& j) const {
  forge::PullRequest p;
  p.issue = IssueFrom(repo, j);
  p.issue.is_pull = true;
  const json head = j.value("head", json::object());
  const json base = j.value("base", json::object());
  p.head_branch = Str(head, "ref");
  p.head_sha = Str(head, "sha");
  p.base_branch = Str(base, "ref");
  p.base_sha = Str(base, "sha");
  if (j.value("merged", false)) p.merged_sha = Str(j, "merge_commit_sha");
  return p;
}

Result<forge::Issue> GitHub::GetIssue(const std::string& repo, int64_t number) {
  KILN_ASSIGN_OR_RETURN(Reply r,
                        Call(repo, "GET", "/repos/" + repo + "/issues/" + std::to_string(number)));
  return IssueFrom(repo, r.body);
}

Result<std::vector<forge::Comment>> GitHub::Comments(const std::string& repo, int64_t number) {
  KILN_ASSIGN_OR_RETURN(
      json list, List(repo, "/repos/" + repo + "/issues/" + std::to_string(number) + "/comments"));
  std::vector<forge::Comment> out;
  for (const auto& c : list) out.push_back(CommentFrom(c));
  return out;
}

Result<forge::Comment> GitHub::AddComment(const std::string& repo, int64_t number,
                                          const std::string& body) {
  KILN_ASSIGN_OR_RETURN(
      Reply r,
      Call(repo, "POST", "/repos/" + repo + "/issues/" + std::to_string(number) + "/comments",
           {{"body", body}}));
  return CommentFrom(r.body);
}

Status GitHub::EditComment(const std::string& repo, int64_t comment_id, const std::string& body) {
  KILN_TRY(Call(repo, "PATCH", "/repos/" + repo + "/issues/comments/" + std::to_string(comment_id),
                {{"body", body}}));
  return Ok();
}

Result<std::vector<std::string>> GitHub::RepoLabels(const std::string& repo) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = labels_.find(repo);
    if (it != labels_.end()) return it->second;
  }
  KILN_ASSIGN_OR_RETURN(json list, List(repo, "/repos/" + repo + "/labels"));
  std::vector<std::string> names;
  for (const auto& l : list) names.push_back(Str(l, "name"));
  std::lock_guard<std::mutex> lock(mu_);
  labels_[repo] = names;
  return names;
}

Status GitHub::EnsureLabel(const std::string& repo, const std::string& kiln_name,
                           const std::string& github_name) {
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> have, RepoLabels(repo));
  auto same = [&](const std::string& l) {
    return l.size() == github_name.size() &&
           std::equal(l.begin(), l.end(), github_name.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) ==
                    std::tolower(static_cast<unsigned char>(b));
           });
  };
  if (std::any_of(have.begin(), have.end(), same)) return Ok();
  LabelStyle style = StyleOf(kiln_name);
  auto made =
      Call(repo, "POST", "/repos/" + repo + "/labels",
           {{"name", github_name}, {"color", style.color}, {"description", style.description}});
  // 422 already_exists: someone made it meanwhile; it is there either way.
  if (!made && made.error().code() != Error::Code::kInvalidArgument) return made.error();
  std::lock_guard<std::mutex> lock(mu_);
  labels_[repo].push_back(github_name);
  return Ok();
}

Status GitHub::AddLabels(const std::string& repo, int64_t number,
                         const std::vector<std::string>& labels) {
  KILN_ASSIGN_OR_RETURN(forge::RepoInfo info, Repo(repo));
  json names = json::array();
  for (const auto& label : labels) {
    KILN_TRY(forge::validate::Label(label, repo, info.labels));
    std::string theirs = LabelOut(repo, label);
    KILN_TRY(EnsureLabel(repo, label, theirs));
    names.push_back(theirs);
  }
  KILN_TRY(Call(repo, "POST", "/repos/" + repo + "/issues/" + std::to_string(number) + "/labels",
                {{"labels", names}}));
  return Ok();
}

Status GitHub::RemoveLabel(const std::string& repo, int64_t number, const std::string& label) {
  KILN_TRY(Call(repo, "DELETE",
                "/repos/" + repo + "/issues/" + std::to_string(number) + "/labels/" +
                    Escape(LabelOut(repo, label))));
  return Ok();
}

Result<forge::PullRequest> GitHub::GetPull(const std::string& repo, int64_t number) {
  KILN_ASSIGN_OR_RETURN(Reply r,
                        Call(repo, "GET", "/repos/" + repo + "/pulls/" + std::to_string(number)));
  return PullFrom(repo, r.body);
}

Result<std::optional<forge::PullRequest>> GitHub::FindPull(const std::string& repo,
                                                           const std::string& head_branch) {
  const std::string owner = repo.substr(0, repo.find('/'));
  KILN_ASSIGN_OR_RETURN(
      json list,
      List(repo, "/repos/" + repo + "/pulls?state=open&head=" + Escape(owner + ":" + head_branch)));
  for (const auto& p : list) {
    if (Str(p.value("head", json::object()), "ref") == head_branch) {
      return std::optional<forge::PullRequest>(PullFrom(repo, p));
    }
  }
  return std::optional<forge::PullRequest>();
}

Result<forge::PullRequest> GitHub::OpenPull(const std::string& repo, const std::string& title,
                                            const std::string& body, const std::string& head_branch,
                                            const std::string& base_branch) {
  json req = {{"title", title},
              {"body", body},
              {"head", head_branch},
              {"base", base_branch},
              {"draft", Find(repo) != nullptr && Find(repo)->draft}};
  KILN_ASSIGN_OR_RETURN(Reply r, Call(repo, "POST", "/repos/" + repo + "/pulls", req));
  return PullFrom(repo, r.body);
}

Status GitHub::EditPull(const std::string& repo, int64_t number, const std::string& title,
                        const std::string& body) {
  KILN_TRY(Call(repo, "PATCH", "/repos/" + repo + "/pulls/" + std::to_string(number),
                {{"title", title}, {"body", body}}));
  return Ok();
}

Result<std::vector<forge::Review>> GitHub::Reviews(const std::string& repo, int64_t number) {
  KILN_ASSIGN_OR_RETURN(
      json list, List(repo, "/repos/" + repo + "/pulls/" + std::to_string(number) + "/reviews"));
  std::vector<forge::Review> out;
  for (const auto& r : list) {
    forge::Review review;
    review.id = Int(r, "id");
    review.author = Login(r, "user");
    review.verdict = VerdictOf(Str(r, "state"));
    review.body = Str(r, "body");
    review.commit_sha = Str(r, "commit_id");
    review.created_ms = Ms(r, "submitted_at");
    out.push_back(std::move(review));
  }
  return out;
}

Result<forge::Review> GitHub::AddReview(const std::string& repo, int64_t number,
                                        const forge::Review& review) {
  KILN_ASSIGN_OR_RETURN(forge::PullRequest pull, GetPull(repo, number));
  const std::string event = EventOf(review.verdict);
  const std::string& body = review.body;
  json comments = json::array();
  for (const auto& c : review.comments) {
    json comment = {{"path", c.path},
                    {"line", c.line},
                    {"side", c.side},
                    {"body", "**" + c.severity + "**: " + c.body}};
    if (c.start_line > 0) {
      // A range: GitHub anchors it from start_line to line, within one hunk.
      comment["start_line"] = c.start_line;
      comment["start_side"] = c.start_side.empty() ? c.side : c.start_side;
    }
    comments.push_back(std::move(comment));
  }
  json req = {{"commit_id", review.commit_sha.empty() ? pull.head_sha : review.commit_sha},
              {"body", body},
              {"event", event},
              {"comments", comments}};
  KILN_ASSIGN_OR_RETURN(
      Reply r,
      Call(repo, "POST", "/repos/" + repo + "/pulls/" + std::to_string(number) + "/reviews", req));
  forge::Review out = review;
  out.id = Int(r.body, "id");
  out.author = Login(r.body, "user");
  out.created_ms = Ms(r.body, "submitted_at");
  return out;
}

Status GitHub::SetStatus(const std::string& repo, const std::string& sha,
                         const forge::CommitStatus& status) {
  std::string description = Ellipsize(status.description, kStatusDescriptionMax);
  json req = {{"state", status.state}, {"context", status.context}, {"description", description}};
  if (!status.target_url.empty()) req["target_url"] = status.target_url;
  KILN_TRY(Call(repo, "POST", "/repos/" + repo + "/statuses/" + sha, req));
  return Ok();
}

Result<std::vector<forge::CommitStatus>> GitHub::Statuses(const std::string& repo,
                                                          const std::string& sha) {
  KILN_ASSIGN_OR_RETURN(json list, List(repo, "/repos/" + repo + "/commits/" + sha + "/statuses"));
  std::vector<forge::CommitStatus> out;
  for (const auto& s : list) {
    out.push_back({Str(s, "context"), Str(s, "state"), Str(s, "description"), Str(s, "target_url"),
                   Ms(s, "created_at")});
  }
  return out;
}

Status GitHub::PushBranch(const std::string& repo, const std::string& branch,
                          const std::string& source_repo, const std::string& commit, bool force) {
  KILN_ASSIGN_OR_RETURN(forge::RepoInfo info, Repo(repo));
  return git::WithToken(
      [&](bool renew) {
        if (renew) auth_.Refused(repo);
        return auth_.Token(repo);
      },
      [&](const std::string& token) {
        git::PushOptions options;
        options.force = force;
        options.token = token;
        return git::Push(source_repo, commit, info.clone_url, branch, options);
      });
}

Status GitHub::DeleteBranch(const std::string& repo, const std::string& branch) {
  KILN_ASSIGN_OR_RETURN(std::optional<forge::PullRequest> open, FindPull(repo, branch));
  if (open) {
    return Error::Invalid("branch " + Quote(branch) + " of " + Quote(repo) +
                          " is the head of open pull request #" +
                          std::to_string(open->issue.number));
  }
  std::string path = "/repos/" + repo + "/git/refs/heads";
  size_t start = 0;
  while (start <= branch.size()) {
    size_t slash = branch.find('/', start);
    if (slash == std::string::npos) slash = branch.size();
    path += "/" + Escape(branch.substr(start, slash - start));
    start = slash + 1;
  }
  auto deleted = Call(repo, "DELETE", path);
  if (!deleted && deleted.error().code() == Error::Code::kInvalidArgument) {
    // GitHub answers 422 "Reference does not exist".
    return Error::NotFound(deleted.error().message());
  }
  if (!deleted) return deleted.error();
  return Ok();
}

Result<std::optional<std::string>> GitHub::BranchSha(const std::string& repo,
                                                     const std::string& branch) {
  auto b = Call(repo, "GET", "/repos/" + repo + "/branches/" + Escape(branch));
  if (!b && b.error().code() == Error::Code::kNotFound) return std::optional<std::string>();
  if (!b) return b.error();
  std::string sha = Str(b->body.value("commit", json::object()), "sha");
  if (sha.empty())
    return Error(Error::Code::kIO, "GitHub's branch " + Quote(branch) + " has no commit");
  return std::optional<std::string>(sha);
}

}  // namespace kiln::github
