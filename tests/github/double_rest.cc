// The double's REST API below /api/v3 (pull requests are in double_pulls.cc):
// who may call what, pagination with Link headers, and the endpoints for the
// App, users, repositories, labels, issues, comments, statuses, permissions
// and team memberships, with GitHub's error shapes.
#include <algorithm>
#include <cctype>

#include "tests/github/double_internal.h"

namespace kiln::testing {

using ghd::Call;
using ghd::Caller;
using ghd::Issue;
using ghd::json;
using ghd::Reply;
using ghd::Repo;

namespace {

using ghd::Error;
using ghd::Invalid;
using ghd::Json;

// What the App may do, as GET /app and a new installation token say.
json AppPermissions() {
  return {{"contents", "write"}, {"issues", "write"},  {"pull_requests", "write"},
          {"statuses", "write"}, {"metadata", "read"}, {"members", "read"}};
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) out.push_back(ghd::UrlDecode(path.substr(start, slash - start), false));
    start = slash + 1;
  }
  return out;
}

// A decimal number, or -1.
int64_t Number(const std::string& s) {
  if (s.empty() || s.size() > 15 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(c); })) {
    return -1;
  }
  return std::stoll(s);
}

std::string LowerCase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ParseBody(const Call& call, json* out) {
  *out = json::parse(call.body.empty() ? "{}" : call.body, nullptr, false);
  return !out->is_discarded() && (out->is_object() || out->is_array());
}

std::string Str(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

Reply GitHubDouble::Impl::Paginate(const Call& call, const json& items) {
  int64_t per_page = 30;
  int64_t page = 1;
  if (auto it = call.query.find("per_page"); it != call.query.end() && Number(it->second) > 0) {
    per_page = Number(it->second);
  }
  per_page = std::min<int64_t>(per_page, opt.max_per_page);
  if (auto it = call.query.find("page"); it != call.query.end() && Number(it->second) > 0) {
    page = Number(it->second);
  }
  int64_t total = static_cast<int64_t>(items.size());
  int64_t last = std::max<int64_t>(1, (total + per_page - 1) / per_page);
  json slice = json::array();
  for (int64_t i = (page - 1) * per_page; i < std::min(total, page * per_page); ++i) {
    slice.push_back(items[static_cast<size_t>(i)]);
  }
  auto url = [&](int64_t p) {
    std::string q;
    for (const auto& [k, v] : call.query_order) {
      if (k == "page" || k == "per_page") continue;
      q += ghd::UrlEncode(k) + "=" + ghd::UrlEncode(v) + "&";
    }
    if (call.query.count("per_page")) q += "per_page=" + std::to_string(per_page) + "&";
    return "<" + api_base() + call.path + "?" + q + "page=" + std::to_string(p) + ">";
  };
  std::vector<std::string> links;
  if (page > 1) links.push_back(url(std::min(page - 1, last)) + "; rel=\"prev\"");
  if (page < last) {
    links.push_back(url(page + 1) + "; rel=\"next\"");
    links.push_back(url(last) + "; rel=\"last\"");
  }
  if (page > 1) links.push_back(url(1) + "; rel=\"first\"");
  Reply r = Json(200, slice);
  if (!links.empty()) {
    std::string link;
    for (const auto& l : links) link += (link.empty() ? "" : ", ") + l;
    r.headers.emplace_back("link", link);
  }
  return r;
}

Reply GitHubDouble::Impl::HandleApi(const Call& call, const Caller& caller) {
  std::vector<std::string> seg = Split(call.path);
  const std::string& m = call.method;
  if (caller.kind == "none") return Error(401, "Requires authentication");
  if (caller.kind == "bad") {
    return Error(401, caller.jwt_error.empty() ? "Bad credentials" : caller.jwt_error);
  }
  bool god = caller.kind == "god";
  bool app_route = (!seg.empty() && seg[0] == "app") ||
                   (seg.size() == 4 && seg[0] == "repos" && seg[3] == "installation");
  if (app_route && caller.kind != "jwt" && !god) {
    return Error(401, "A JSON web token could not be decoded");
  }
  if (!app_route && caller.kind == "jwt") return Error(401, "Bad credentials");

  if (m == "GET" && seg.size() == 1 && seg[0] == "app") {
    return Json(200, {{"id", opt.app_id},
                      {"slug", opt.app_slug},
                      {"node_id", "A_" + std::to_string(opt.app_id)},
                      {"name", opt.app_slug},
                      {"owner", UserJson("acme")},
                      {"html_url", web_base() + "/apps/" + opt.app_slug},
                      {"permissions", AppPermissions()},
                      {"events",
                       json::array({"issues", "issue_comment", "pull_request",
                                    "pull_request_review", "pull_request_review_comment", "push"})},
                      {"created_at", ghd::Iso(reset_at - 86400)},
                      {"updated_at", ghd::Iso(reset_at - 86400)}});
  }
  if (m == "POST" && seg.size() == 4 && seg[0] == "app" && seg[1] == "installations" &&
      seg[3] == "access_tokens") {
    if (Number(seg[2]) != opt.installation_id) return Error(404, "Not Found");
    std::string token = "ghs_" + ghd::RandomAlnum(36);
    int64_t expiry = Now() + opt.token_ttl_s;
    tokens[token] = expiry;
    return Json(201, {{"token", token},
                      {"expires_at", ghd::Iso(expiry)},
                      {"permissions", AppPermissions()},
                      {"repository_selection", "all"}});
  }
  if (m == "GET" && seg.size() == 1 && seg[0] == "user") {
    if (caller.kind == "installation") {
      return Error(403, "Resource not accessible by integration");
    }
    json u = UserJson(caller.login);
    u["name"] = caller.login;
    return Json(200, u);
  }
  if (m == "GET" && seg.size() == 6 && seg[0] == "orgs" && seg[2] == "teams" &&
      seg[4] == "memberships") {
    auto team = teams.find(seg[1] + "/" + seg[3]);
    if (team == teams.end() || !team->second.count(seg[5])) return Error(404, "Not Found");
    return Json(200, {{"url", api_base() + "/orgs/" + seg[1] + "/teams/" + seg[3] +
                                  "/memberships/" + seg[5]},
                      {"role", "member"},
                      {"state", "active"}});
  }
  if (seg.size() >= 3 && seg[0] == "repos") return HandleRepoApi(call, caller, seg);
  return Error(404, "Not Found");
}

Reply GitHubDouble::Impl::HandleRepoApi(const Call& call, const Caller& caller,
                                        const std::vector<std::string>& seg) {
  Repo* found = FindRepo(seg[1] + "/" + seg[2]);
  if (found == nullptr) return Error(404, "Not Found");
  Repo& repo = *found;
  std::vector<std::string> rest(seg.begin() + 3, seg.end());
  const std::string& m = call.method;
  const std::string& user = caller.login;
  json body;
  if ((m == "POST" || m == "PATCH" || m == "PUT") && !ParseBody(call, &body)) {
    return Error(400, "Problems parsing JSON");
  }
  size_t n = rest.size();
  if (n == 0 && m == "GET") return Json(200, RepoJson(repo, user));
  if (n == 1 && rest[0] == "installation" && m == "GET") {
    return Json(
        200, {{"id", opt.installation_id},
              {"app_id", opt.app_id},
              {"app_slug", opt.app_slug},
              {"account", UserJson(repo.owner)},
              {"target_type", "Organization"},
              {"repository_selection", "all"},
              {"access_tokens_url", api_base() + "/app/installations/" +
                                        std::to_string(opt.installation_id) + "/access_tokens"}});
  }
  // Branch names may hold slashes: the rest of the path is the name.
  auto tail = [&](size_t from) {
    std::string joined;
    for (size_t i = from; i < n; ++i) joined += (i == from ? "" : "/") + rest[i];
    return joined;
  };
  if (n >= 2 && rest[0] == "branches" && m == "GET") {
    std::string sha = BranchShaLocked(repo, tail(1));
    if (sha.empty()) return Error(404, "Branch not found");
    return Json(
        200,
        {{"name", tail(1)},
         {"commit",
          {{"sha", sha}, {"url", api_base() + "/repos/" + repo.full_name() + "/commits/" + sha}}},
         {"protected", false}});
  }
  if (n >= 4 && rest[0] == "git" && rest[1] == "refs" && rest[2] == "heads" && m == "DELETE") {
    std::string branch = tail(3);
    if (BranchShaLocked(repo, branch).empty()) return Error(422, "Reference does not exist");
    auto before = Branches(repo.bare);
    ghd::Git({"--git-dir", repo.bare, "update-ref", "-d", "refs/heads/" + branch});
    repo.branches.reset();
    RefsChanged(repo, before, Branches(repo.bare), user);
    return Reply{204, {}, ""};
  }
  if (n >= 1 && rest[0] == "labels") {
    if (n == 1 && m == "GET") {
      json all = json::array();
      for (const auto& l : repo.labels) all.push_back(LabelJson(repo, l));
      return Paginate(call, all);
    }
    if (n == 2 && m == "GET") {
      for (const auto& l : repo.labels) {
        if (LowerCase(l.name) == LowerCase(rest[1])) return Json(200, LabelJson(repo, l));
      }
      return Error(404, "Not Found");
    }
    if (n == 1 && m == "POST") {
      std::string name = Str(body, "name");
      if (name.empty()) {
        return Invalid(
            json::array({{{"resource", "Label"}, {"code", "missing_field"}, {"field", "name"}}}));
      }
      for (const auto& l : repo.labels) {
        if (LowerCase(l.name) == LowerCase(name)) {
          return Invalid(json::array(
              {{{"resource", "Label"}, {"code", "already_exists"}, {"field", "name"}}}));
        }
      }
      ghd::Label& label = EnsureLabel(repo, name);
      std::string color = Str(body, "color");
      if (!color.empty() && color[0] == '#') color.erase(0, 1);
      if (!color.empty()) label.color = color;
      label.description = Str(body, "description");
      return Json(201, LabelJson(repo, label));
    }
  }
  if (n >= 1 && rest[0] == "pulls") return HandlePulls(call, caller, repo, rest);
  if (n == 1 && rest[0] == "issues" && m == "GET") {
    std::string state = call.query.count("state") ? call.query.at("state") : "open";
    json all = json::array();
    for (auto it = repo.issues.rbegin(); it != repo.issues.rend(); ++it) {
      if (state != "all" && it->second.state != state) continue;
      if (auto l = call.query.find("labels"); l != call.query.end() && !l->second.empty()) {
        bool all_there = true;
        for (size_t start = 0; start < l->second.size();) {
          size_t comma = std::min(l->second.find(',', start), l->second.size());
          const auto& have = it->second.labels;
          std::string want = l->second.substr(start, comma - start);
          all_there &= std::find(have.begin(), have.end(), want) != have.end();
          start = comma + 1;
        }
        if (!all_there) continue;
      }
      all.push_back(IssueJson(repo, it->second));
    }
    return Paginate(call, all);
  }
  if (n == 3 && rest[0] == "issues" && rest[1] == "comments") {
    int64_t id = Number(rest[2]);
    for (auto& c : repo.comments) {
      if (c.id != id) continue;
      if (m == "GET") return Json(200, CommentJson(repo, c));
      if (m != "PATCH") break;
      if (!body.contains("body") || !body["body"].is_string()) {
        return Invalid(json::array(
            {{{"resource", "IssueComment"}, {"code", "missing_field"}, {"field", "body"}}}));
      }
      std::string from = c.body;
      c.body = body["body"].get<std::string>();
      c.updated_at = ghd::NowIso();
      Issue& issue = repo.issues.at(c.number);
      QueueHook("issue_comment",
                {{"action", "edited"},
                 {"changes", {{"body", {{"from", from}}}}},
                 {"issue", IssueJson(repo, issue)},
                 {"comment", CommentJson(repo, c)}},
                repo, user);
      return Json(200, CommentJson(repo, c));
    }
    return Error(404, "Not Found");
  }
  if (n >= 2 && rest[0] == "issues") {
    auto it = repo.issues.find(Number(rest[1]));
    if (it == repo.issues.end()) return Error(404, "Not Found");
    Issue& issue = it->second;
    if (n == 2 && m == "GET") return Json(200, IssueJson(repo, issue));
    if (n == 2 && m == "PATCH") return EditIssue(repo, issue, user, body);
    if (n == 3 && rest[2] == "comments" && m == "GET") {
      json all = json::array();
      for (const auto& c : repo.comments) {
        if (c.number == issue.number) all.push_back(CommentJson(repo, c));
      }
      return Paginate(call, all);
    }
    if (n == 3 && rest[2] == "comments" && m == "POST") {
      if (!body.is_object() || !body.contains("body") || !body["body"].is_string()) {
        return Error(422, "Invalid request.\n\n\"body\" wasn't supplied.");
      }
      auto& c = CommentLocked(repo, issue, user, body["body"].get<std::string>());
      return Json(201, CommentJson(repo, c));
    }
    if (n == 3 && rest[2] == "labels" && m == "GET") {
      return Paginate(call, LabelsJson(repo, issue));
    }
    if (n == 3 && rest[2] == "labels" && m == "POST") {
      json names = body.is_array() ? body : body.value("labels", json::array());
      if (!names.is_array()) return Error(422, "Invalid request.\n\n\"labels\" is not an array.");
      for (const auto& l : names) {
        std::string name = l.is_string() ? l.get<std::string>() : Str(l, "name");
        if (!name.empty()) AddLabelLocked(repo, issue, user, name);
      }
      return Json(200, LabelsJson(repo, issue));
    }
    if (n == 4 && rest[2] == "labels" && m == "DELETE") {
      if (!RemoveLabelLocked(repo, issue, user, rest[3])) {
        return Error(404, "Label does not exist");
      }
      return Json(200, LabelsJson(repo, issue));
    }
  }
  if (n == 2 && rest[0] == "statuses" && m == "POST") {
    static const std::set<std::string> kStates = {"error", "failure", "pending", "success"};
    std::string state = Str(body, "state");
    if (!kStates.count(state)) {
      return Invalid(json::array({{{"resource", "Status"},
                                   {"code", "custom"},
                                   {"field", "state"},
                                   {"message", "state is not included in the list"}}}));
    }
    ghd::Status s;
    s.id = NextId();
    s.sha = rest[1];
    s.state = state;
    s.target_url = Str(body, "target_url");
    s.description = Str(body, "description");
    s.context = Str(body, "context").empty() ? "default" : Str(body, "context");
    s.creator = user;
    s.created_at = ghd::NowIso();
    repo.statuses.push_back(s);
    return Json(201, StatusJson(repo, s));
  }
  if (n == 3 && rest[0] == "commits" && rest[2] == "statuses" && m == "GET") {
    std::string sha = BranchShaLocked(repo, rest[1]);
    if (sha.empty()) sha = rest[1];
    json all = json::array();
    for (auto it = repo.statuses.rbegin(); it != repo.statuses.rend(); ++it) {
      if (it->sha == sha) all.push_back(StatusJson(repo, *it));
    }
    return Paginate(call, all);
  }
  if (n == 3 && rest[0] == "collaborators" && rest[2] == "permission" && m == "GET") {
    auto it = repo.collaborators.find(rest[1]);
    std::string role = it == repo.collaborators.end() ? "none" : it->second;
    std::string permission = role == "maintain" ? "write" : role == "triage" ? "read" : role;
    json u = UserJson(rest[1]);
    u["permissions"] = {{"admin", role == "admin"},
                        {"maintain", role == "admin" || role == "maintain"},
                        {"push", permission == "admin" || permission == "write"},
                        {"triage", role != "none" && role != "read"},
                        {"pull", role != "none"}};
    u["role_name"] = role;
    return Json(200, {{"permission", permission}, {"role_name", role}, {"user", u}});
  }
  return Error(404, "Not Found");
}

Reply GitHubDouble::Impl::EditIssue(Repo& repo, Issue& issue, const std::string& user,
                                    const json& req) {
  if (!req.is_object()) return Error(400, "Problems parsing JSON");
  std::string state = Str(req, "state");
  if (!state.empty() && state != "open" && state != "closed") {
    return Invalid(json::array({{{"resource", "Issue"}, {"code", "invalid"}, {"field", "state"}}}));
  }
  json changes = ApplyTitleAndBody(issue, req);
  if (!changes.empty()) {
    issue.updated_at = ghd::NowIso();
    IssueEvent(repo, issue, "edited", user, {{"changes", changes}});
  }
  if (!state.empty() && state != issue.state) SetStateLocked(repo, issue, user, state);
  return Json(200, IssueJson(repo, issue));
}

}  // namespace kiln::testing
