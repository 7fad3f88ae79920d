// The forge's objects with GitHub's fields (wire.h): every field the REST
// API's schema requires, from what the forge has. Links follow GitHub's:
// html_url under the web view (WEB/OWNER/REPO/issues/N, .../pull/N,
// #issuecomment-ID, #discussion_rID), url and the other *_url under the API
// (API/repos/OWNER/REPO/...), templates ("{/number}") as GitHub writes them.
// What the forge does not keep (stars, forks, milestones, assignees, a
// profile) is GitHub's empty value: 0, false, [], or null where the schema
// allows it.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "base/digest.h"
#include "base/strings.h"
#include "controller/forge/api.h"
#include "controller/forge/validate.h"
#include "controller/forge/wire.h"

namespace kiln::forge::wire {

using nlohmann::json;

namespace {

// A path segment (or, with keep_slash, a path) %-escaped where a URI needs it.
std::string Escape(std::string_view s, bool keep_slash = false) {
  return PercentEncode(s, keep_slash ? ":@/" : ":@");
}

json TimeOrNull(int64_t ms) { return ms == 0 ? json(nullptr) : json(Time(ms)); }
json StringOrNull(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

std::string Owner(const std::string& repo) { return repo.substr(0, repo.find('/')); }
std::string RepoApi(const Links& l, const std::string& repo) { return l.api + "/repos/" + repo; }
std::string RepoWeb(const Links& l, const std::string& repo) { return l.web + "/" + repo; }

// GitHub's author_association, from what the local forge knows: the
// repository's owner, its maintainers (who may push), everyone else.
std::string Association(const LocalRepo& repo, const std::string& login) {
  if (login == Owner(repo.info.name)) return "OWNER";
  if (std::find(repo.maintainers.begin(), repo.maintainers.end(), login) !=
      repo.maintainers.end()) {
    return "COLLABORATOR";
  }
  return "NONE";
}

json Href(const std::string& url) { return {{"href", url}}; }

// The colours and descriptions of the default label set (docs/forge.md):
// GitHub's own colours for the labels GitHub also has.
struct LabelLook {
  std::string_view name, color, description;
};
constexpr LabelLook kLooks[] = {
    {"triaged", "0e8a16", "triage has looked at it"},
    {"needs-info", "d876e3", "waiting for the reporter"},
    {"duplicate", "cfd3d7", "a duplicate of another issue"},
    {"bug", "d73a4a", "something is not working"},
    {"enhancement", "a2eeef", "new feature or request"},
    {"documentation", "0075ca", "improvements or additions to documentation"},
    {"blocked", "b60205", "waiting on something else"},
    {"ready-to-spec", "fbca04", "a maintainer asks for a spec"},
    {"plan-approved", "1d76db", "a maintainer approved the spec: implement it"},
};

}  // namespace

Links MakeLinks(std::string_view web_url, std::string_view api_url, std::string bot) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && s.back() == '/') s.remove_suffix(1);
    return std::string(s);
  };
  Links l;
  l.web = trim(web_url);
  l.api = api_url.empty() ? l.web + "/api/v1" : trim(api_url);
  l.bot = std::move(bot);
  return l;
}

int64_t StableId(std::string_view kind, std::string_view key) {
  Digest d = Sha256Of(std::string(kind) + ":" + std::string(key));
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | d[i];
  v &= (uint64_t{1} << 53) - 1;
  return v == 0 ? 1 : static_cast<int64_t>(v);
}

std::string NodeId(std::string_view kind, int64_t id) {
  return Base64("kiln:" + std::string(kind) + ":" + std::to_string(id));
}

int64_t ReviewCommentId(int64_t review_id, size_t index) {
  return (review_id << 20) + static_cast<int64_t>(index) + 1;
}

std::pair<int64_t, size_t> ReviewOfComment(int64_t comment_id) {
  if (comment_id < 1) return {0, 0};
  return {comment_id >> 20, static_cast<size_t>((comment_id & ((1 << 20) - 1)) - 1)};
}

json UserJson(const Links& l, const std::string& login) {
  const bool bot = (!l.bot.empty() && login == l.bot) || login.ends_with("[bot]");
  const int64_t id = StableId("user", login);
  const std::string api = l.api + "/users/" + Escape(login);
  return {{"login", login},
          {"id", id},
          {"node_id", NodeId(bot ? "Bot" : "User", id)},
          {"avatar_url", l.web + "/" + Escape(login) + ".png"},
          {"gravatar_id", nullptr},
          {"url", api},
          {"html_url", l.web + "/" + Escape(login)},
          {"followers_url", api + "/followers"},
          {"following_url", api + "/following{/other_user}"},
          {"gists_url", api + "/gists{/gist_id}"},
          {"starred_url", api + "/starred{/owner}{/repo}"},
          {"subscriptions_url", api + "/subscriptions"},
          {"organizations_url", api + "/orgs"},
          {"repos_url", api + "/repos"},
          {"events_url", api + "/events{/privacy}"},
          {"received_events_url", api + "/received_events"},
          {"type", bot ? "Bot" : "User"},
          {"user_view_type", "public"},
          {"site_admin", false}};
}

json AuthenticatedUserJson(const Links& l, const std::string& login, int64_t created_ms) {
  json j = UserJson(l, login);
  for (const char* none :
       {"name", "company", "blog", "location", "email", "hireable", "bio", "twitter_username"}) {
    j[none] = nullptr;
  }
  for (const char* zero :
       {"public_repos", "public_gists", "followers", "following", "private_gists",
        "total_private_repos", "owned_private_repos", "disk_usage", "collaborators"}) {
    j[zero] = 0;
  }
  j["two_factor_authentication"] = false;
  const std::string at = Time(created_ms == 0 ? 1 : created_ms);
  j["created_at"] = at;
  j["updated_at"] = at;
  return j;
}

json LabelJson(const Links& l, const std::string& repo, const std::string& name) {
  const int64_t id = StableId("label", repo + ":" + name);
  std::string color, description;
  for (const LabelLook& look : kLooks) {
    if (look.name == name) {
      color = look.color;
      description = look.description;
    }
  }
  if (color.empty()) {
    // Any other label (area:<name>): a colour of its own, from its id.
    char hex[8];
    std::snprintf(hex, sizeof hex, "%06llx", static_cast<unsigned long long>(id & 0xffffff));
    color = hex;
    if (name.starts_with("area:")) description = "the " + name.substr(5) + " area";
  }
  const auto& set = validate::DefaultLabels();
  return {{"id", id},
          {"node_id", NodeId("Label", id)},
          {"url", RepoApi(l, repo) + "/labels/" + Escape(name)},
          {"name", name},
          {"color", color},
          {"description", StringOrNull(description)},
          {"default", std::find(set.begin(), set.end(), name) != set.end()}};
}

json RepoJson(const Links& l, const LocalRepo& r) {
  const std::string& full = r.info.name;
  const size_t slash = full.find('/');
  const std::string api = RepoApi(l, full);
  const std::string web = RepoWeb(l, full);
  const int64_t id = StableId("repo", full);
  const int64_t pushed = r.pushed_ms == 0 ? r.created_ms : r.pushed_ms;
  json j = {{"id", id},
            {"node_id", NodeId("Repository", id)},
            {"name", slash == std::string::npos ? full : full.substr(slash + 1)},
            {"full_name", full},
            {"owner", UserJson(l, full.substr(0, slash))},
            {"private", false},
            {"visibility", "public"},
            {"html_url", web},
            {"description", nullptr},
            {"fork", false},
            {"url", api},
            {"clone_url", r.info.clone_url},
            {"git_url", r.info.clone_url},
            {"ssh_url", r.info.clone_url},
            {"svn_url", web},
            {"mirror_url", nullptr},
            {"homepage", nullptr},
            {"language", nullptr},
            {"license", nullptr},
            {"default_branch", r.info.default_branch},
            {"topics", json::array()},
            {"open_issues_count", r.open_issues},
            {"open_issues", r.open_issues},
            {"size", r.size_kb},
            {"created_at", Time(r.created_ms)},
            {"updated_at", Time(std::max(pushed, r.created_ms))},
            {"pushed_at", Time(pushed)},
            // kiln's own: the label set and who maintains it.
            {"labels", r.info.labels},
            {"maintainers", r.maintainers}};
  for (const char* zero : {"forks", "forks_count", "stargazers_count", "watchers", "watchers_count",
                           "network_count", "subscribers_count"}) {
    j[zero] = 0;
  }
  for (const char* no :
       {"is_template", "has_projects", "has_wiki", "has_pages", "has_downloads", "has_discussions",
        "archived", "disabled", "allow_forking", "web_commit_signoff_required"}) {
    j[no] = false;
  }
  j["has_issues"] = true;
  // GitHub's hypermedia, routes kiln serves or not, as GitHub spells them.
  static constexpr std::pair<const char*, const char*> kLinks[] = {
      {"archive_url", "/{archive_format}{/ref}"},
      {"assignees_url", "/assignees{/user}"},
      {"blobs_url", "/git/blobs{/sha}"},
      {"branches_url", "/branches{/branch}"},
      {"collaborators_url", "/collaborators{/collaborator}"},
      {"comments_url", "/comments{/number}"},
      {"commits_url", "/commits{/sha}"},
      {"compare_url", "/compare/{base}...{head}"},
      {"contents_url", "/contents/{+path}"},
      {"contributors_url", "/contributors"},
      {"deployments_url", "/deployments"},
      {"downloads_url", "/downloads"},
      {"events_url", "/events"},
      {"forks_url", "/forks"},
      {"git_commits_url", "/git/commits{/sha}"},
      {"git_refs_url", "/git/refs{/sha}"},
      {"git_tags_url", "/git/tags{/sha}"},
      {"hooks_url", "/hooks"},
      {"issue_comment_url", "/issues/comments{/number}"},
      {"issue_events_url", "/issues/events{/number}"},
      {"issues_url", "/issues{/number}"},
      {"keys_url", "/keys{/key_id}"},
      {"labels_url", "/labels{/name}"},
      {"languages_url", "/languages"},
      {"merges_url", "/merges"},
      {"milestones_url", "/milestones{/number}"},
      {"notifications_url", "/notifications{?since,all,participating}"},
      {"pulls_url", "/pulls{/number}"},
      {"releases_url", "/releases{/id}"},
      {"stargazers_url", "/stargazers"},
      {"statuses_url", "/statuses/{sha}"},
      {"subscribers_url", "/subscribers"},
      {"subscription_url", "/subscription"},
      {"tags_url", "/tags"},
      {"teams_url", "/teams"},
      {"trees_url", "/git/trees{/sha}"},
  };
  for (const auto& [field, path] : kLinks) j[field] = api + path;
  return j;
}

json IssueJson(const Links& l, const LocalRepo& repo, const Issue& i) {
  const std::string n = std::to_string(i.number);
  const std::string api = RepoApi(l, i.repo) + "/issues/" + n;
  const std::string web = RepoWeb(l, i.repo) + (i.is_pull ? "/pull/" : "/issues/") + n;
  const int64_t id = StableId("issue", i.repo + "#" + n);
  json labels = json::array();
  for (const auto& name : i.labels) labels.push_back(LabelJson(l, i.repo, name));
  const bool open = i.state == "open";
  json j = {{"id", id},
            {"node_id", NodeId("Issue", id)},
            {"url", api},
            {"repository_url", RepoApi(l, i.repo)},
            {"labels_url", api + "/labels{/name}"},
            {"comments_url", api + "/comments"},
            {"events_url", api + "/events"},
            {"html_url", web},
            {"number", i.number},
            {"state", open ? "open" : "closed"},
            {"state_reason", open ? json(nullptr) : json("completed")},
            {"title", i.title},
            {"body", i.body},
            {"user", UserJson(l, i.author)},
            {"labels", labels},
            {"assignee", nullptr},
            {"assignees", json::array()},
            {"milestone", nullptr},
            {"locked", false},
            {"active_lock_reason", nullptr},
            {"comments", i.comments},
            {"closed_at", open ? json(nullptr) : TimeOrNull(i.closed_ms)},
            {"created_at", Time(i.created_ms)},
            {"updated_at", Time(i.updated_ms)},
            {"author_association", Association(repo, i.author)},
            {"repo", i.repo}};  // kiln's own, as before GitHub's fields
  if (i.is_pull) {
    const std::string pull = RepoApi(l, i.repo) + "/pulls/" + n;
    j["pull_request"] = {
        {"url", pull},
        {"html_url", web},
        {"diff_url", pull + "/diff"},
        {"patch_url", web + ".patch"},
        {"merged_at", i.state == "merged" ? TimeOrNull(i.closed_ms) : json(nullptr)}};
  }
  return j;
}

json PullJson(const Links& l, const LocalRepo& repo, const PullRequest& p,
              const PullDetails* details) {
  const Issue& i = p.issue;
  json j = IssueJson(l, repo, i);
  const std::string n = std::to_string(i.number);
  const std::string api = RepoApi(l, i.repo) + "/pulls/" + n;
  const std::string issue_api = RepoApi(l, i.repo) + "/issues/" + n;
  const std::string web = RepoWeb(l, i.repo) + "/pull/" + n;
  const int64_t id = StableId("pull", i.repo + "#" + n);
  const bool merged = i.state == "merged";
  for (const char* issue_only :
       {"pull_request", "repository_url", "labels_url", "events_url", "comments", "state_reason"}) {
    j.erase(issue_only);
  }
  j["id"] = id;
  j["node_id"] = NodeId("PullRequest", id);
  j["url"] = api;
  j["html_url"] = web;
  j["diff_url"] = api + "/diff";
  j["patch_url"] = web + ".patch";
  j["issue_url"] = issue_api;
  j["commits_url"] = api + "/commits";
  j["review_comments_url"] = api + "/comments";
  j["review_comment_url"] = RepoApi(l, i.repo) + "/pulls/comments{/number}";
  j["comments_url"] = issue_api + "/comments";
  j["statuses_url"] = RepoApi(l, i.repo) + "/statuses/" + p.head_sha;
  j["merged_at"] = merged ? TimeOrNull(i.closed_ms) : json(nullptr);
  j["merge_commit_sha"] = StringOrNull(p.merged_sha);
  j["requested_reviewers"] = json::array();
  j["requested_teams"] = json::array();
  j["draft"] = false;
  j["auto_merge"] = nullptr;
  j["merged"] = merged;
  const json repo_json = RepoJson(l, repo);
  const json owner = UserJson(l, Owner(i.repo));
  auto branch = [&](const std::string& ref, const std::string& sha) {
    return json{{"label", Owner(i.repo) + ":" + ref},
                {"ref", ref},
                {"sha", sha},
                {"user", owner},
                {"repo", repo_json}};
  };
  j["head"] = branch(p.head_branch, p.head_sha);
  j["base"] = branch(p.base_branch, p.base_sha);
  j["_links"] = {{"self", Href(api)},
                 {"html", Href(web)},
                 {"issue", Href(issue_api)},
                 {"comments", Href(issue_api + "/comments")},
                 {"review_comments", Href(api + "/comments")},
                 {"review_comment", Href(RepoApi(l, i.repo) + "/pulls/comments{/number}")},
                 {"commits", Href(api + "/commits")},
                 {"statuses", Href(RepoApi(l, i.repo) + "/statuses/" + p.head_sha)}};
  if (details != nullptr) {
    j["merged_by"] = merged && !p.merged_by.empty() ? UserJson(l, p.merged_by) : json(nullptr);
    j["mergeable"] = details->mergeable ? json(*details->mergeable) : json(nullptr);
    j["rebaseable"] = nullptr;
    j["mergeable_state"] = !details->mergeable   ? "unknown"
                           : *details->mergeable ? "clean"
                                                 : "dirty";
    j["comments"] = i.comments;
    j["review_comments"] = details->review_comments;
    j["maintainer_can_modify"] = false;
    j["commits"] = details->commits;
    j["additions"] = details->additions;
    j["deletions"] = details->deletions;
    j["changed_files"] = details->changed_files;
  }
  return j;
}

json CommentJson(const Links& l, const LocalRepo& repo, bool is_pull, const Comment& c) {
  const std::string n = std::to_string(c.number);
  const std::string id = std::to_string(c.id);
  return {{"id", c.id},
          {"node_id", NodeId("IssueComment", c.id)},
          {"url", RepoApi(l, repo.info.name) + "/issues/comments/" + id},
          {"html_url", RepoWeb(l, repo.info.name) + (is_pull ? "/pull/" : "/issues/") + n +
                           "#issuecomment-" + id},
          {"issue_url", RepoApi(l, repo.info.name) + "/issues/" + n},
          {"user", UserJson(l, c.author)},
          {"body", c.body},
          {"created_at", Time(c.created_ms)},
          {"updated_at", Time(c.updated_ms)},
          {"author_association", Association(repo, c.author)}};
}

std::string ReviewState(const std::string& verdict) {
  if (verdict == "approve") return "APPROVED";
  if (verdict == "request_changes") return "CHANGES_REQUESTED";
  if (verdict == "pending") return "PENDING";
  return "COMMENTED";
}

json ReviewJson(const Links& l, const LocalRepo& repo, int64_t number, const Review& r) {
  const std::string pull = RepoApi(l, repo.info.name) + "/pulls/" + std::to_string(number);
  const std::string web = RepoWeb(l, repo.info.name) + "/pull/" + std::to_string(number) +
                          "#pullrequestreview-" + std::to_string(r.id);
  json comments = json::array();
  for (const auto& c : r.comments) comments.push_back(ReviewCommentJson(c));
  json j = {{"id", r.id},
            {"node_id", NodeId("PullRequestReview", r.id)},
            {"user", UserJson(l, r.author)},
            {"body", r.body},
            {"state", ReviewState(r.verdict)},
            {"html_url", web},
            {"pull_request_url", pull},
            {"_links", {{"html", Href(web)}, {"pull_request", Href(pull)}}},
            {"commit_id", r.commit_sha},
            {"author_association", Association(repo, r.author)},
            {"verdict", r.verdict},  // kiln's own, with its inline comments
            {"comments", comments}};
  if (r.verdict != "pending") j["submitted_at"] = Time(r.created_ms);
  return j;
}

json PullCommentJson(const Links& l, const LocalRepo& repo, int64_t number, const PullComment& pc) {
  const std::string name = repo.info.name;
  const std::string pull = RepoApi(l, name) + "/pulls/" + std::to_string(number);
  const std::string self = RepoApi(l, name) + "/pulls/comments/" + std::to_string(pc.id);
  const std::string web = RepoWeb(l, name) + "/pull/" + std::to_string(number) + "#discussion_r" +
                          std::to_string(pc.id);
  const ReviewComment& c = pc.comment;
  const bool range = c.start_line != 0;
  json j = {{"url", self},
            {"id", pc.id},
            {"node_id", NodeId("PullRequestReviewComment", pc.id)},
            {"pull_request_review_id", pc.review_id},
            {"diff_hunk", pc.diff_hunk},
            {"path", c.path},
            {"original_position", pc.original_position},
            {"commit_id", pc.commit_sha},
            {"original_commit_id", pc.commit_sha},
            {"user", UserJson(l, pc.author)},
            {"body", c.body},
            {"created_at", Time(pc.created_ms)},
            {"updated_at", Time(pc.created_ms)},
            {"html_url", web},
            {"pull_request_url", pull},
            {"author_association", Association(repo, pc.author)},
            {"_links", {{"self", Href(self)}, {"html", Href(web)}, {"pull_request", Href(pull)}}},
            {"start_line", range ? json(c.start_line) : json(nullptr)},
            {"original_start_line", range ? json(c.start_line) : json(nullptr)},
            {"start_side", range ? json(c.start_side) : json(nullptr)},
            {"line", c.line},
            {"original_line", c.line},
            {"side", c.side},
            {"subject_type", "line"},
            {"severity", c.severity}};  // kiln's own
  // An outdated comment has no position now (GitHub leaves it out).
  if (pc.position) j["position"] = *pc.position;
  return j;
}

json FileJson(const Links& l, const LocalRepo& repo, const std::string& head_sha,
              const PullFile& f) {
  const std::string& name = repo.info.name;
  const patches::FilePatch& d = f.diff;
  const std::string path = Escape(d.path, /*keep_slash=*/true);
  json j = {{"sha", StringOrNull(f.sha)},
            {"filename", d.path},
            {"status", d.status},
            {"additions", d.additions},
            {"deletions", d.deletions},
            {"changes", d.additions + d.deletions},
            {"blob_url", RepoWeb(l, name) + "/blob/" + head_sha + "/" + path},
            {"raw_url", RepoWeb(l, name) + "/raw/" + head_sha + "/" + path},
            {"contents_url", RepoApi(l, name) + "/contents/" + path + "?ref=" + head_sha}};
  if (!d.patch.empty()) j["patch"] = d.patch;
  if (!d.old_path.empty()) j["previous_filename"] = d.old_path;
  return j;
}

namespace {

json SimpleStatusJson(const Links& l, const LocalRepo& repo, const CommitStatus& s) {
  const int64_t id = StableId("status", repo.info.name + "/" + s.sha + "/" + s.context + "/" +
                                            std::to_string(s.created_ms));
  return {{"url", RepoApi(l, repo.info.name) + "/statuses/" + s.sha},
          {"avatar_url",
           s.creator.empty() ? json(nullptr) : json(l.web + "/" + Escape(s.creator) + ".png")},
          {"id", id},
          {"node_id", NodeId("StatusContext", id)},
          {"state", s.state},
          {"description", StringOrNull(s.description)},
          {"target_url", StringOrNull(s.target_url)},
          {"context", s.context},
          {"created_at", Time(s.created_ms)},
          {"updated_at", Time(s.created_ms)}};
}

}  // namespace

json StatusJson(const Links& l, const LocalRepo& repo, const CommitStatus& s) {
  json j = SimpleStatusJson(l, repo, s);
  j["creator"] = s.creator.empty() ? json(nullptr) : UserJson(l, s.creator);
  return j;
}

json CombinedStatusJson(const Links& l, const LocalRepo& repo, const std::string& sha,
                        const std::vector<CommitStatus>& statuses) {
  std::string state = statuses.empty() ? "pending" : "success";
  json list = json::array();
  for (const auto& s : statuses) {
    list.push_back(SimpleStatusJson(l, repo, s));
    if (s.state == "failure" || s.state == "error") {
      state = "failure";
    } else if (s.state == "pending" && state == "success") {
      state = "pending";
    }
  }
  const std::string commit = RepoApi(l, repo.info.name) + "/commits/" + sha;
  return {{"state", state},
          {"sha", sha},
          {"total_count", statuses.size()},
          {"statuses", list},
          {"repository", RepoJson(l, repo)},
          {"commit_url", commit},
          {"url", commit + "/status"}};
}

}  // namespace kiln::forge::wire
