// The routes of the forge's HTTP API (docs/api.md), without sockets: a
// request in, a response out. api_server.cc serves them.
#include "controller/forge/api.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <variant>

#include <nlohmann/json.hpp>

#include "base/strings.h"
#include "controller/forge/wire.h"

namespace kiln::forge {
namespace {

using nlohmann::json;
using wire::OptString;

constexpr std::string_view kPrefix = "/api/v1/";

ApiResponse JsonResponse(int status, const json& body) {
  ApiResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return r;
}

ApiResponse Message(int status, const std::string& message) {
  return JsonResponse(status, {{"message", message}});
}

int HttpStatus(const Error& e) {
  switch (e.code()) {
    case Error::Code::kInvalidArgument:
      return 422;
    case Error::Code::kNotFound:
      return 404;
    case Error::Code::kPermission:
      return 403;
    case Error::Code::kTimeout:
      return 503;
    default:
      return 500;
  }
}

ApiResponse FromError(const Error& e) { return Message(HttpStatus(e), e.message()); }

struct Target {
  std::vector<std::string> segments;  // after /api/v1/
  std::map<std::string, std::string> query;
};

std::optional<Target> ParseTarget(std::string_view target) {
  Target t;
  std::string_view path = target;
  std::string_view query;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  path.remove_prefix(kPrefix.size());
  for (const std::string& seg : Split(path, '/')) {
    if (seg.empty()) continue;  // a trailing or doubled slash
    auto d = PercentDecode(seg, false);
    if (!d) return std::nullopt;
    t.segments.push_back(*d);
  }
  auto q = ParseQuery(query);
  if (!q) return std::nullopt;
  t.query = std::move(*q);
  return t;
}

// Matches segments against pattern ("repos/*/*/issues"); the '*' parts go
// to captures.
bool Match(const std::vector<std::string>& segments, std::string_view pattern,
           std::vector<std::string>* captures) {
  std::vector<std::string> parts = Split(pattern, '/');
  if (parts.size() != segments.size()) return false;
  captures->clear();
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "*") {
      captures->push_back(segments[i]);
    } else if (parts[i] != segments[i]) {
      return false;
    }
  }
  return true;
}

Result<int64_t> Number(const std::string& text, std::string_view what) {
  auto n = ParseUint(text, what);
  if (!n.ok() || *n == 0 || *n > static_cast<uint64_t>(INT64_MAX)) {
    return Error::NotFound(std::string(what) + " " + Quote(text) + " is not a number");
  }
  return static_cast<int64_t>(*n);
}

// The request body as a JSON object ({} when empty); a response to send
// instead when it is not one.
std::variant<json, ApiResponse> Body(const std::string& text) {
  if (Trim(text).empty()) return json::object();
  try {
    json j = json::parse(text);
    if (!j.is_object()) return Message(400, "the request body must be a JSON object");
    return j;
  } catch (const json::parse_error& e) {
    return Message(400, std::string("malformed JSON body: ") + e.what());
  }
}

Result<std::string> String(const json& j, const char* field, bool required) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> v, OptString(j, field));
  if (!v && required) return Error::Invalid("field " + Quote(field) + " is missing");
  return v.value_or("");
}

Result<std::vector<std::string>> Strings(const json& j, const char* field, bool required) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (required) return Error::Invalid("field " + Quote(field) + " is missing");
    return std::vector<std::string>();
  }
  if (!it->is_array()) return Error::Invalid("field " + Quote(field) + " must be an array");
  std::vector<std::string> out;
  for (const auto& v : *it) {
    // GitHub also takes label objects: {"name": "bug"}.
    if (v.is_object() && v.contains("name") && v["name"].is_string()) {
      out.push_back(v["name"].get<std::string>());
    } else if (v.is_string()) {
      out.push_back(v.get<std::string>());
    } else {
      return Error::Invalid("field " + Quote(field) + " must hold strings");
    }
  }
  return out;
}

json LabelsJson(const std::vector<std::string>& labels) {
  json a = json::array();
  for (const auto& l : labels) a.push_back({{"name", l}});
  return a;
}

Result<Review> ReviewFrom(const json& j) {
  Review r;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> event, OptString(j, "event"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> verdict, OptString(j, "verdict"));
  if (event) {
    if (*event == "APPROVE") {
      r.verdict = "approve";
    } else if (*event == "COMMENT") {
      r.verdict = "comment";
    } else if (*event == "REQUEST_CHANGES") {
      r.verdict = "request_changes";
    } else {
      return Error::Invalid("field 'event' " + Quote(*event) +
                            " is not one of APPROVE, COMMENT, REQUEST_CHANGES");
    }
  } else if (verdict) {
    r.verdict = *verdict;
  } else {
    return Error::Invalid("field 'event' (or 'verdict') is missing");
  }
  KILN_ASSIGN_OR_RETURN(r.body, String(j, "body", false));
  KILN_ASSIGN_OR_RETURN(r.commit_sha, String(j, "commit_id", false));
  auto it = j.find("comments");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_array()) return Error::Invalid("field 'comments' must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& c = (*it)[i];
      const std::string at = "comments[" + std::to_string(i) + "]";
      if (!c.is_object()) return Error::Invalid("field " + Quote(at) + " must be an object");
      auto rc = wire::ReviewCommentFrom(c);
      if (!rc.ok()) return rc.error().Wrap(at);
      r.comments.push_back(std::move(*rc));
    }
  }
  return r;
}

ApiResponse NotAllowed(std::string_view method, std::string allow) {
  ApiResponse r =
      Message(405, "method " + std::string(method) + " is not allowed here; use " + allow);
  r.headers.emplace_back("Allow", std::move(allow));
  return r;
}

// Edits title/body and moves state (open | closed) of an issue or pull.
Status Patch(Local& f, const std::string& repo, int64_t number, const json& j) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> title, OptString(j, "title"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> body, OptString(j, "body"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> state, OptString(j, "state"));
  if (state && *state != "open" && *state != "closed") {
    return Error::Invalid("field 'state' " + Quote(*state) + " is not one of open, closed");
  }
  if (!title && !body && !state) return Ok();
  return f.Update(repo, number, title, body, state);
}

// One request, as a route's handler sees it.
struct Call {
  Local& f;
  const std::string& user;
  const std::string& method;
  const Target& t;
  const std::string& raw_body;
  std::vector<std::string> c;           // the pattern's '*' parts: owner, name, then the rest
  std::optional<ApiResponse> bad_body;  // set by Json() for a body that is not an object

  std::string repo() const { return c[0] + "/" + c[1]; }
  std::string base() const { return "/api/v1/repos/" + repo(); }
  std::string Query(const std::string& key, const std::string& def) const {
    auto it = t.query.find(key);
    return it == t.query.end() ? def : it->second;
  }
  // The body, read by the routes that change something, when they get to
  // it: a malformed one answers 400 (Dispatch sends bad_body).
  Result<json> Json() {
    auto parsed = Body(raw_body);
    if (auto* bad = std::get_if<ApiResponse>(&parsed)) {
      bad_body = *bad;
      return Error::Invalid("malformed body");
    }
    return std::get<json>(std::move(parsed));
  }
};

ApiResponse Created(const json& body, const std::string& location) {
  ApiResponse r = JsonResponse(201, body);
  r.headers.emplace_back("Location", location);
  return r;
}

template <typename T, typename ToJson>
ApiResponse JsonList(const std::vector<T>& items, ToJson to_json) {
  json a = json::array();
  for (const auto& i : items) a.push_back(to_json(i));
  return JsonResponse(200, a);
}

Result<ApiResponse> GetUser(Call& call) { return JsonResponse(200, {{"login", call.user}}); }

Result<ApiResponse> ListRepos(Call& call) {
  KILN_ASSIGN_OR_RETURN(std::vector<LocalRepo> repos, call.f.ListRepos());
  return JsonList(repos, wire::RepoJson);
}

Result<ApiResponse> GetRepo(Call& call) {
  KILN_ASSIGN_OR_RETURN(LocalRepo r, call.f.GetRepo(call.repo()));
  return JsonResponse(200, wire::RepoJson(r));
}

// ?labels=a,b keeps the issues that have all of them.
Result<ApiResponse> ListIssues(Call& call) {
  IssueFilter filter;
  filter.state = call.Query("state", "open");
  std::vector<std::string> labels;
  for (const auto& l : Split(call.Query("labels", ""), ',')) {
    if (!Trim(l).empty()) labels.emplace_back(Trim(l));
  }
  if (!labels.empty()) filter.label = labels.front();
  KILN_ASSIGN_OR_RETURN(std::vector<Issue> issues, call.f.ListIssues(call.repo(), filter));
  std::erase_if(issues, [&](const Issue& i) {
    return !std::all_of(labels.begin(), labels.end(), [&](const std::string& l) {
      return std::find(i.labels.begin(), i.labels.end(), l) != i.labels.end();
    });
  });
  return JsonList(issues, wire::IssueJson);
}

Result<ApiResponse> CreateIssue(Call& call) {
  KILN_ASSIGN_OR_RETURN(json j, call.Json());
  KILN_ASSIGN_OR_RETURN(std::string title, String(j, "title", true));
  KILN_ASSIGN_OR_RETURN(std::string text, String(j, "body", false));
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> labels, Strings(j, "labels", false));
  KILN_ASSIGN_OR_RETURN(Issue issue, call.f.CreateIssue(call.repo(), title, text, labels));
  return Created(wire::IssueJson(issue), call.base() + "/issues/" + std::to_string(issue.number));
}

Result<ApiResponse> EditComment(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t id, Number(call.c[2], "comment id"));
  KILN_ASSIGN_OR_RETURN(json j, call.Json());
  KILN_ASSIGN_OR_RETURN(std::string text, String(j, "body", true));
  KILN_TRY(call.f.EditComment(call.repo(), id, text));
  return JsonResponse(200, {{"id", id}, {"body", text}});
}

Result<ApiResponse> GetIssue(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(Issue issue, call.f.GetIssue(call.repo(), n));
  return JsonResponse(200, wire::IssueJson(issue));
}

Result<ApiResponse> PatchIssue(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(json j, call.Json());
  KILN_TRY(Patch(call.f, call.repo(), n, j));
  return GetIssue(call);
}

Result<ApiResponse> ListComments(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(std::vector<Comment> comments, call.f.Comments(call.repo(), n));
  return JsonList(comments, wire::CommentJson);
}

Result<ApiResponse> AddComment(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(json j, call.Json());
  KILN_ASSIGN_OR_RETURN(std::string text, String(j, "body", true));
  KILN_ASSIGN_OR_RETURN(Comment cm, call.f.AddComment(call.repo(), n, text));
  return JsonResponse(201, wire::CommentJson(cm));
}

Result<ApiResponse> GetLabels(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(Issue issue, call.f.GetIssue(call.repo(), n));
  return JsonResponse(200, LabelsJson(issue.labels));
}

Result<ApiResponse> AddLabels(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(json j, call.Json());
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> labels, Strings(j, "labels", true));
  KILN_TRY(call.f.AddLabels(call.repo(), n, labels));
  return GetLabels(call);
}

Result<ApiResponse> RemoveLabels(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(Issue issue, call.f.GetIssue(call.repo(), n));
  for (const auto& l : issue.labels) KILN_TRY(call.f.RemoveLabel(call.repo(), n, l));
  return GetLabels(call);
}

Result<ApiResponse> RemoveLabel(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_TRY(call.f.RemoveLabel(call.repo(), n, call.c[3]));
  return GetLabels(call);
}

Result<ApiResponse> ListPulls(Call& call) {
  KILN_ASSIGN_OR_RETURN(std::vector<PullRequest> pulls,
                        call.f.ListPulls(call.repo(), call.Query("state", "open")));
  return JsonList(pulls, wire::PullJson);
}

Result<ApiResponse> OpenPull(Call& call) {
  KILN_ASSIGN_OR_RETURN(json j, call.Json());
  KILN_ASSIGN_OR_RETURN(std::string title, String(j, "title", true));
  KILN_ASSIGN_OR_RETURN(std::string text, String(j, "body", false));
  KILN_ASSIGN_OR_RETURN(std::string head, String(j, "head", true));
  KILN_ASSIGN_OR_RETURN(std::string base_branch, String(j, "base", false));
  KILN_ASSIGN_OR_RETURN(PullRequest p,
                        call.f.OpenPull(call.repo(), title, text, head, base_branch));
  return Created(wire::PullJson(p), call.base() + "/pulls/" + std::to_string(p.issue.number));
}

Result<ApiResponse> GetPull(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(PullRequest p, call.f.GetPull(call.repo(), n));
  return JsonResponse(200, wire::PullJson(p));
}

Result<ApiResponse> PatchPull(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_TRY(call.f.GetPull(call.repo(), n));
  KILN_ASSIGN_OR_RETURN(json j, call.Json());
  KILN_TRY(Patch(call.f, call.repo(), n, j));
  return GetPull(call);
}

Result<ApiResponse> PullDiff(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(std::string patch, call.f.Diff(call.repo(), n));
  ApiResponse r;
  r.content_type = "text/x-diff; charset=utf-8";
  r.body = std::move(patch);
  return r;
}

Result<ApiResponse> ListReviews(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(std::vector<Review> reviews, call.f.Reviews(call.repo(), n));
  return JsonList(reviews, wire::ReviewJson);
}

Result<ApiResponse> AddReview(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(json j, call.Json());
  KILN_ASSIGN_OR_RETURN(Review review, ReviewFrom(j));
  KILN_ASSIGN_OR_RETURN(Review out, call.f.AddReview(call.repo(), n, review));
  return JsonResponse(201, wire::ReviewJson(out));
}

// GitHub's "is it merged": 204 or 404.
Result<ApiResponse> IsMerged(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(PullRequest p, call.f.GetPull(call.repo(), n));
  if (p.issue.state != "merged")
    return Message(404, "pull request #" + call.c[2] + " is not merged");
  ApiResponse r;
  r.status = 204;
  return r;
}

Result<ApiResponse> MergePull(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(PullRequest p, call.f.Merge(call.repo(), n));
  return JsonResponse(200, {{"merged", true},
                            {"sha", p.merged_sha},
                            {"message", "pull request #" + call.c[2] + " merged"}});
}

Result<ApiResponse> ListStatuses(Call& call) {
  KILN_ASSIGN_OR_RETURN(std::vector<CommitStatus> statuses,
                        call.f.Statuses(call.repo(), call.c[2]));
  return JsonList(statuses, wire::StatusJson);
}

Result<ApiResponse> SetStatus(Call& call) {
  KILN_ASSIGN_OR_RETURN(json j, call.Json());
  CommitStatus s;
  KILN_ASSIGN_OR_RETURN(s.state, String(j, "state", true));
  KILN_ASSIGN_OR_RETURN(s.context, String(j, "context", false));
  if (s.context.empty()) s.context = "default";  // as GitHub
  KILN_ASSIGN_OR_RETURN(s.description, String(j, "description", false));
  KILN_ASSIGN_OR_RETURN(s.target_url, String(j, "target_url", false));
  KILN_TRY(call.f.SetStatus(call.repo(), call.c[2], s));
  KILN_ASSIGN_OR_RETURN(std::vector<CommitStatus> all, call.f.Statuses(call.repo(), call.c[2]));
  for (const auto& st : all) {
    if (st.context == s.context) return JsonResponse(201, wire::StatusJson(st));
  }
  return JsonResponse(201, wire::StatusJson(s));
}

struct Route {
  std::string_view pattern;  // segments after /api/v1/; '*' is one segment
  std::string_view method;
  Result<ApiResponse> (*handle)(Call&);
};

// The routes under /api/v1/ (docs/api.md). The first pattern that matches
// is the route; its methods, in this order, are the Allow header of a 405.
constexpr Route kRoutes[] = {
    {"user", "GET", GetUser},
    {"repos", "GET", ListRepos},
    {"repos/*/*", "GET", GetRepo},
    {"repos/*/*/issues", "GET", ListIssues},
    {"repos/*/*/issues", "POST", CreateIssue},
    {"repos/*/*/issues/comments/*", "PATCH", EditComment},
    {"repos/*/*/issues/*", "GET", GetIssue},
    {"repos/*/*/issues/*", "PATCH", PatchIssue},
    {"repos/*/*/issues/*/comments", "GET", ListComments},
    {"repos/*/*/issues/*/comments", "POST", AddComment},
    {"repos/*/*/issues/*/labels", "GET", GetLabels},
    {"repos/*/*/issues/*/labels", "POST", AddLabels},
    {"repos/*/*/issues/*/labels", "DELETE", RemoveLabels},
    {"repos/*/*/issues/*/labels/*", "DELETE", RemoveLabel},
    {"repos/*/*/pulls", "GET", ListPulls},
    {"repos/*/*/pulls", "POST", OpenPull},
    {"repos/*/*/pulls/*", "GET", GetPull},
    {"repos/*/*/pulls/*", "PATCH", PatchPull},
    {"repos/*/*/pulls/*/diff", "GET", PullDiff},
    {"repos/*/*/pulls/*/reviews", "GET", ListReviews},
    {"repos/*/*/pulls/*/reviews", "POST", AddReview},
    {"repos/*/*/pulls/*/merge", "GET", IsMerged},
    {"repos/*/*/pulls/*/merge", "POST", MergePull},
    {"repos/*/*/pulls/*/merge", "PUT", MergePull},
    {"repos/*/*/commits/*/statuses", "GET", ListStatuses},
    {"repos/*/*/statuses/*", "POST", SetStatus},
};

// The route for an authenticated user's request.
Result<ApiResponse> Dispatch(Local& f, const std::string& user, const std::string& method,
                             const Target& t, const std::string& raw_body) {
  const auto& seg = t.segments;
  Call call{f, user, method, t, raw_body, {}, std::nullopt};
  std::string_view matched;
  std::string allow;
  for (const Route& r : kRoutes) {
    if (matched.empty()) {
      if (!Match(seg, r.pattern, &call.c)) continue;
      matched = r.pattern;
    } else if (r.pattern != matched) {
      break;
    }
    if (r.method == method) {
      Result<ApiResponse> response = r.handle(call);
      if (call.bad_body) return *call.bad_body;
      return response;
    }
    allow += (allow.empty() ? "" : ", ") + std::string(r.method);
  }
  if (!allow.empty()) return NotAllowed(method, allow);
  if (seg.size() < 3 || seg[0] != "repos") {
    return Message(404, "no route " + method + " /api/v1/" + (seg.empty() ? "" : seg[0]));
  }
  std::string path;
  for (const auto& s : seg) path += "/" + s;
  return Message(404, "no route " + method + " /api/v1" + path);
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        return std::nullopt;
      }
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::map<std::string, std::string>> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  for (const std::string& pair : Split(query, '&')) {
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto k = PercentDecode(pair.substr(0, eq), true);
    auto v = PercentDecode(eq == std::string::npos ? "" : pair.substr(eq + 1), true);
    if (!k || !v) return std::nullopt;
    out[*k] = *v;
  }
  return out;
}

Result<std::unique_ptr<Api>> Api::Open(std::string store_path, std::string repos_dir,
                                       std::string bot) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Users> users, Users::Open(store_path));
  return std::unique_ptr<Api>(
      new Api(std::move(store_path), std::move(repos_dir), std::move(bot), std::move(users)));
}

Result<Local*> Api::ForgeFor(const std::string& user) {
  auto it = forges_.find(user);
  if (it != forges_.end()) return it->second.get();
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Local> local, Local::Open(store_path_, repos_dir_, user));
  Local* raw = local.get();
  forges_.emplace(user, std::move(local));
  return raw;
}

ApiResponse Api::Handle(const ApiRequest& req) {
  if (req.target.compare(0, kPrefix.size(), kPrefix) != 0) {
    return Message(404,
                   "no route " + req.method + " " + req.target + ": the API is under /api/v1/");
  }
  // Authentication first: without a token nothing is told, not even which
  // routes exist.
  std::string_view auth = Trim(req.authorization);
  std::string token;
  for (std::string_view scheme : {"Bearer ", "bearer ", "token "}) {
    if (auth.substr(0, scheme.size()) == scheme)
      token = std::string(Trim(auth.substr(scheme.size())));
  }
  if (token.empty()) {
    ApiResponse r = Message(401,
                            "authentication required: send 'Authorization: Bearer <token>' "
                            "with a token from `kiln forge user add`");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"kiln\"");
    return r;
  }
  auto user = users_->Authenticate(token);
  if (!user.ok()) return FromError(user.error());
  if (!*user) {
    ApiResponse r = Message(401, "bad credentials: the token is not known");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"kiln\", error=\"invalid_token\"");
    return r;
  }
  if (!bot_.empty() && **user == bot_) {
    return Message(403, "user " + Quote(bot_) +
                            " is the pipeline's bot (pipeline.bot): its token is not accepted");
  }
  auto target = ParseTarget(req.target);
  if (!target) return Message(400, "malformed request target " + Quote(req.target));
  auto forge = ForgeFor(**user);
  if (!forge.ok()) return FromError(forge.error());
  Result<ApiResponse> r = Dispatch(**forge, **user, req.method, *target, req.body);
  if (!r.ok()) return FromError(r.error());
  return std::move(*r);
}

}  // namespace kiln::forge
