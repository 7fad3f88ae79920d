// The forge's HTTP API (docs/api.md) without sockets, a request in and a
// response out: authentication, the routes and what each takes, the
// members refused, errors and paging. The routes' work is in api_issues.cc
// and api_pulls.cc; api_server.cc serves it all.
#include "controller/forge/api.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "base/digest.h"
#include "base/strings.h"
#include "controller/forge/api_call.h"
#include "controller/forge/wire.h"

namespace kiln::forge {
namespace api {

using nlohmann::json;

namespace {

constexpr std::string_view kPrefix = "/api/v1/";
// Where an error's documentation_url points: kiln's API reference.
constexpr std::string_view kErrorsDoc = "docs/api.md#errors";

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
  // A parameter given twice would have one of its values dropped: named,
  // and refused.
  std::map<std::string, int> seen;
  for (const std::string& pair : Split(query, '&')) {
    if (pair.empty()) continue;
    auto k = PercentDecode(pair.substr(0, pair.find('=')), true);
    if (k && ++seen[*k] == 2 && t.repeated.empty()) t.repeated = *k;
  }
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

bool Listed(std::string_view list, std::string_view name) {
  for (const std::string& m : Split(list, ' ')) {
    if (m == name) return true;
  }
  return false;
}

std::string Described(std::string_view list) {
  std::string out;
  for (const std::string& m : Split(list, ' ')) {
    if (!m.empty()) out += (out.empty() ? "" : ", ") + m;
  }
  return out.empty() ? "none" : out;
}

// GitHub's members that the local forge has nothing for, and why, for the
// message of their refusal.
constexpr std::pair<std::string_view, std::string_view> kUnsupported[] = {
    {"assignee", "the local forge has no assignees"},
    {"assignees", "the local forge has no assignees"},
    {"milestone", "the local forge has no milestones"},
    {"mentioned", "the local forge keeps no mentions"},
    {"type", "the local forge has no issue types"},
    {"issue_field_values", "the local forge has no issue fields"},
    {"state_reason", "the local forge keeps no reason for a state"},
    {"duplicate_issue_id", "the local forge keeps no duplicates"},
    {"draft", "the local forge has no draft pull requests"},
    {"maintainer_can_modify", "the local forge has no forks"},
    {"head_repo", "the local forge has no forks"},
    {"issue", "an issue cannot become a pull request on the local forge"},
    {"in_reply_to", "the local forge has no replies to review comments"},
    {"subject_type", "the local forge's review comments are on lines"},
    {"before", "the local forge lists by number"},
    {"visibility", "every repository of the local forge is visible to every user"},
    {"affiliation", "the local forge has no affiliations"},
};

// The refusal of member `at` + name that the route does not take.
Refusal NotTaken(const Route& route, const std::string& what, const std::string& name,
                 std::string_view taken) {
  for (const auto& [member, why] : kUnsupported) {
    if (member == name) {
      return {name, "invalid", what + " " + Quote(name) + " is not supported: " + std::string(why)};
    }
  }
  return {name, "invalid",
          what + " " + Quote(name) + " is not one " + std::string(route.method) +
              " takes here (it takes: " + Described(taken) + ")"};
}

ApiResponse ValidationFailed(const Route& route, const Refusal& r) {
  json error = route.simple_errors ? json(r.message)
                                   : json{{"resource", route.resource},
                                          {"field", r.field},
                                          {"code", r.code},
                                          {"message", r.message}};
  return JsonResponse(422, {{"message", "Validation Failed"},
                            {"errors", json::array({error})},
                            {"documentation_url", kErrorsDoc}});
}

ApiResponse NotAllowed(std::string_view method, std::string allow) {
  ApiResponse r =
      Message(405, "method " + std::string(method) + " is not allowed here; use " + allow);
  r.headers.emplace_back("Allow", std::move(allow));
  return r;
}

// The routes under /api/v1/ (docs/api.md). The first pattern that matches
// is the route; its methods, in this order, are the Allow header of a 405.
// Each names the query and body members it takes: any other is refused.
constexpr std::string_view kPage = "per_page page";
constexpr std::string_view kMergeMembers = "merge_method commit_title commit_message sha";
constexpr Route kRoutes[] = {
    {"user", "GET", GetUser, "User", "", "", false},
    {"repos", "GET", ListRepos, "Repository", kPage, "", false},
    {"repos/*/*", "GET", GetRepo, "Repository", "", "", false},
    {"repos/*/*/issues", "GET", ListIssues, "Issue",
     "state labels creator assignee milestone sort direction since per_page page", "", false},
    {"repos/*/*/issues", "POST", CreateIssue, "Issue", "",
     "title body labels assignees assignee milestone", false},
    {"repos/*/*/issues/comments/*", "GET", GetComment, "IssueComment", "", "", false},
    {"repos/*/*/issues/comments/*", "PATCH", EditComment, "IssueComment", "", "body", false},
    {"repos/*/*/issues/*", "GET", GetIssue, "Issue", "", "", false},
    {"repos/*/*/issues/*", "PATCH", PatchIssue, "Issue", "",
     "title body state labels assignees assignee milestone", false},
    {"repos/*/*/issues/*/comments", "GET", ListComments, "IssueComment", "since per_page page", "",
     false},
    {"repos/*/*/issues/*/comments", "POST", AddComment, "IssueComment", "", "body", false},
    {"repos/*/*/issues/*/labels", "GET", GetLabels, "Label", kPage, "", false},
    {"repos/*/*/issues/*/labels", "POST", AddLabels, "Label", "", "labels", false},
    {"repos/*/*/issues/*/labels", "PUT", SetLabels, "Label", "", "labels", false},
    {"repos/*/*/issues/*/labels", "DELETE", RemoveLabels, "Label", "", "", false},
    {"repos/*/*/issues/*/labels/*", "DELETE", RemoveLabel, "Label", "", "", false},
    {"repos/*/*/pulls", "GET", ListPulls, "PullRequest",
     "state head base sort direction per_page page", "", false},
    {"repos/*/*/pulls", "POST", OpenPull, "PullRequest", "", "title body head base draft", false},
    {"repos/*/*/pulls/comments/*", "GET", GetPullComment, "PullRequestReviewComment", "", "",
     false},
    {"repos/*/*/pulls/*", "GET", GetPull, "PullRequest", "", "", false},
    {"repos/*/*/pulls/*", "PATCH", PatchPull, "PullRequest", "", "title body state", false},
    {"repos/*/*/pulls/*/diff", "GET", PullDiff, "PullRequest", "", "", false},
    {"repos/*/*/pulls/*/files", "GET", ListFiles, "PullRequest", kPage, "", false},
    {"repos/*/*/pulls/*/comments", "GET", ListPullComments, "PullRequestReviewComment",
     "sort direction since per_page page", "", false},
    {"repos/*/*/pulls/*/reviews", "GET", ListReviews, "PullRequestReview", kPage, "", true},
    {"repos/*/*/pulls/*/reviews", "POST", AddReview, "PullRequestReview", "",
     "event verdict body commit_id comments", true},
    {"repos/*/*/pulls/*/reviews/*", "GET", GetReview, "PullRequestReview", "", "", true},
    {"repos/*/*/pulls/*/reviews/*", "DELETE", DeleteReview, "PullRequestReview", "", "", true},
    {"repos/*/*/pulls/*/reviews/*/comments", "GET", ListReviewComments, "PullRequestReview", kPage,
     "", true},
    {"repos/*/*/pulls/*/reviews/*/events", "POST", SubmitReview, "PullRequestReview", "",
     "event body", true},
    {"repos/*/*/pulls/*/merge", "GET", IsMerged, "PullRequest", "", "", false},
    {"repos/*/*/pulls/*/merge", "POST", MergePull, "PullRequest", "", kMergeMembers, false},
    {"repos/*/*/pulls/*/merge", "PUT", MergePull, "PullRequest", "", kMergeMembers, false},
    {"repos/*/*/commits/*/status", "GET", CombinedStatus, "Status", kPage, "", false},
    {"repos/*/*/commits/*/statuses", "GET", ListStatuses, "Status", kPage, "", false},
    {"repos/*/*/statuses/*", "POST", SetStatus, "Status", "",
     "state context description target_url", false},
};

// The body as a JSON object ({} when empty); a 400 when it is not one.
std::optional<ApiResponse> ParseBody(const std::string& text, json* out) {
  *out = json::object();
  if (Trim(text).empty()) return std::nullopt;
  try {
    *out = json::parse(text);
  } catch (const json::parse_error& e) {
    return Message(400, std::string("malformed JSON body: ") + e.what());
  }
  if (!out->is_object()) return Message(400, "the request body must be a JSON object");
  return std::nullopt;
}

// The route for an authenticated user's request.
Result<ApiResponse> Dispatch(Local& f, Users& users, const wire::Links& links,
                             const std::string& user, const ApiRequest& req, const Target& t) {
  const std::string& method = req.method;
  const auto& seg = t.segments;
  std::vector<std::string> captures;
  std::string_view matched;
  std::string allow;
  for (const Route& r : kRoutes) {
    if (matched.empty()) {
      if (!Match(seg, r.pattern, &captures)) continue;
      matched = r.pattern;
    } else if (r.pattern != matched) {
      break;
    }
    if (r.method != method) {
      allow += (allow.empty() ? "" : ", ") + std::string(r.method);
      continue;
    }
    json body;
    if (auto bad = ParseBody(req.body, &body)) return *bad;
    // What the route does not take is refused before anything is done.
    if (!t.repeated.empty()) {
      return ValidationFailed(r, {t.repeated, "invalid",
                                  "parameter " + Quote(t.repeated) +
                                      " is given more than once; give it once (a list: "
                                      "comma-separated)"});
    }
    for (const auto& [name, value] : t.query) {
      if (!Listed(r.query, name))
        return ValidationFailed(r, NotTaken(r, "parameter", name, r.query));
    }
    for (const auto& [name, value] : body.items()) {
      if (!Listed(r.body, name)) return ValidationFailed(r, NotTaken(r, "field", name, r.body));
    }
    Call call(f, users, links, user, r, t, body, req.headers, std::move(captures));
    Result<ApiResponse> response = r.handle(call);
    if (call.refused) return ValidationFailed(r, *call.refused);
    return response;
  }
  if (!allow.empty()) return NotAllowed(method, allow);
  if (seg.size() < 3 || seg[0] != "repos") {
    return Message(404, "no route " + method + " /api/v1/" + (seg.empty() ? "" : seg[0]));
  }
  std::string path;
  for (const auto& s : seg) path += "/" + s;
  return Message(404, "no route " + method + " /api/v1" + path);
}

// "comments[0].path" for a member of an object at "comments[0]".
std::string MemberName(const std::string& at, const std::string& field) {
  return at.empty() ? field : at + "." + field;
}

}  // namespace

ApiResponse JsonResponse(int status, const json& body) {
  ApiResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return r;
}

ApiResponse Message(int status, const std::string& message) {
  return JsonResponse(status, {{"message", message}, {"documentation_url", kErrorsDoc}});
}

ApiResponse NoContent() {
  ApiResponse r;
  r.status = 204;
  return r;
}

Result<int64_t> Number(const std::string& text, std::string_view what) {
  auto n = ParseUint(text, what);
  if (!n.ok() || *n == 0 || *n > static_cast<uint64_t>(INT64_MAX)) {
    return Error::NotFound(std::string(what) + " " + Quote(text) + " is not a number");
  }
  return static_cast<int64_t>(*n);
}

Result<const LocalRepo*> Call::Repo() {
  if (!repo_row_) {
    KILN_ASSIGN_OR_RETURN(LocalRepo r, f.GetRepo(repo()));
    repo_row_ = std::move(r);
  }
  return &*repo_row_;
}

Error Call::Refuse(std::string field, std::string code, std::string message) {
  refused = Refusal{std::move(field), std::move(code), message};
  return Error::Invalid(std::move(message));
}

std::optional<std::string> Call::Query(const std::string& key) const {
  auto it = target.query.find(key);
  if (it == target.query.end()) return std::nullopt;
  return it->second;
}

Result<std::string> Call::QueryOneOf(const std::string& key, std::vector<std::string> allowed,
                                     const std::string& def) {
  std::optional<std::string> v = Query(key);
  if (!v) return def;
  if (std::find(allowed.begin(), allowed.end(), *v) == allowed.end()) {
    return Refuse(
        key, "invalid",
        "parameter " + Quote(key) + " " + Quote(*v) + " is not one of " + Join(allowed, ", "));
  }
  return *v;
}

Result<std::optional<std::string>> Call::String(const json& j, const std::string& at,
                                                const std::string& field, bool required) {
  const std::string name = MemberName(at, field);
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (required) return Refuse(name, "missing_field", "field " + Quote(name) + " is missing");
    return std::optional<std::string>();
  }
  if (!it->is_string()) {
    return Refuse(name, "invalid", "field " + Quote(name) + " must be a string");
  }
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::optional<int64_t>> Call::Int(const json& j, const std::string& at,
                                         const std::string& field) {
  const std::string name = MemberName(at, field);
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX)) {
    return Refuse(name, "invalid", "field " + Quote(name) + " must be an integer");
  }
  return std::optional<int64_t>(it->get<int64_t>());
}

Result<std::optional<bool>> Call::Bool(const json& j, const std::string& at,
                                       const std::string& field) {
  const std::string name = MemberName(at, field);
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean())
    return Refuse(name, "invalid", "field " + Quote(name) + " must be a boolean");
  return std::optional<bool>(it->get<bool>());
}

Result<std::optional<std::vector<std::string>>> Call::Strings(const json& j, const std::string& at,
                                                              const std::string& field,
                                                              bool required) {
  const std::string name = MemberName(at, field);
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) {
    if (required) return Refuse(name, "missing_field", "field " + Quote(name) + " is missing");
    return std::optional<std::vector<std::string>>();
  }
  if (!it->is_array()) return Refuse(name, "invalid", "field " + Quote(name) + " must be an array");
  std::vector<std::string> out;
  for (const auto& v : *it) {
    // GitHub also takes label objects: {"name": "bug"}.
    if (v.is_object() && v.size() == 1 && v.contains("name") && v["name"].is_string()) {
      out.push_back(v["name"].get<std::string>());
    } else if (v.is_string()) {
      out.push_back(v.get<std::string>());
    } else {
      return Refuse(name, "invalid", "field " + Quote(name) + " must hold strings");
    }
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Status Call::OnlyMembers(const json& j, const std::string& at, std::string_view allowed) {
  for (const auto& [name, value] : j.items()) {
    if (Listed(allowed, name)) continue;
    Refusal r = NotTaken(route, "field", MemberName(at, name), allowed);
    return Refuse(r.field, r.code, r.message);
  }
  return Ok();
}

Status Call::NoneOnly(const std::string& field, const std::string& why) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null() || (it->is_array() && it->empty())) return Ok();
  return Refuse(field, "invalid", "field " + Quote(field) + " must be empty or null: " + why);
}

Result<ApiResponse> Call::List(json items) {
  std::optional<std::string> page_text = Query("page");
  std::optional<std::string> per_page_text = Query("per_page");
  if (!page_text && !per_page_text) return JsonResponse(200, items);
  int64_t page = 1, per_page = 30;  // GitHub's defaults
  if (page_text) {
    auto n = ParseUint(*page_text, "page");
    if (!n.ok() || *n < 1 || *n > 1000000) {
      return Refuse("page", "invalid", "parameter 'page' must be a number from 1");
    }
    page = static_cast<int64_t>(*n);
  }
  if (per_page_text) {
    auto n = ParseUint(*per_page_text, "per_page");
    if (!n.ok() || *n < 1 || *n > 100) {
      return Refuse("per_page", "invalid", "parameter 'per_page' must be a number from 1 to 100");
    }
    per_page = static_cast<int64_t>(*n);
  }
  const int64_t total = static_cast<int64_t>(items.size());
  const int64_t last = std::max<int64_t>(1, (total + per_page - 1) / per_page);
  json out = json::array();
  for (int64_t i = (page - 1) * per_page; i < std::min(total, page * per_page); ++i) {
    out.push_back(std::move(items[i]));
  }
  ApiResponse r = JsonResponse(200, out);
  // GitHub's Link header: the query as sent, with page moved.
  std::string path = links.api;
  for (const auto& s : target.segments) path += "/" + s;
  auto url = [&](int64_t p) {
    std::string q;
    for (const auto& [k, v] : target.query) {
      if (k != "page")
        q += (q.empty() ? "?" : "&") + PercentEncode(k, ",:") + "=" + PercentEncode(v, ",:");
    }
    return "<" + path + q + (q.empty() ? "?" : "&") + "page=" + std::to_string(p) + ">";
  };
  std::vector<std::string> rels;
  if (page < last) rels.push_back(url(page + 1) + "; rel=\"next\"");
  if (page < last) rels.push_back(url(last) + "; rel=\"last\"");
  if (page > 1) rels.push_back(url(1) + "; rel=\"first\"");
  if (page > 1) rels.push_back(url(std::min(page - 1, last)) + "; rel=\"prev\"");
  if (!rels.empty()) r.headers.emplace_back("Link", Join(rels, ", "));
  return r;
}

}  // namespace api

std::string TokenOf(std::string_view authorization) {
  std::string_view auth = Trim(authorization);
  for (std::string_view scheme : {"Bearer ", "bearer ", "token "}) {
    if (auth.substr(0, scheme.size()) == scheme)
      return std::string(Trim(auth.substr(scheme.size())));
  }
  if (auth.substr(0, 6) == "Basic ") {
    auto decoded = Base64Decode(Trim(auth.substr(6)));
    if (decoded && decoded->find(':') != std::string::npos) {
      return decoded->substr(decoded->find(':') + 1);
    }
  }
  return "";
}

std::string PercentEncode(std::string_view s, std::string_view keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

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
                                       std::string bot, std::string_view web_url,
                                       std::string_view api_url) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Users> users, Users::Open(store_path));
  wire::Links links = wire::MakeLinks(web_url, api_url, bot);
  return std::unique_ptr<Api>(new Api(std::move(store_path), std::move(repos_dir), std::move(bot),
                                      std::move(links), std::move(users)));
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
  using api::Message;
  if (req.target.compare(0, api::kPrefix.size(), api::kPrefix) != 0) {
    return Message(404,
                   "no route " + req.method + " " + req.target + ": the API is under /api/v1/");
  }
  // Authentication first: without a token nothing is told, not even which
  // routes exist.
  const std::string token = TokenOf(req.authorization);
  if (token.empty()) {
    ApiResponse r = Message(401,
                            "authentication required: send 'Authorization: Bearer <token>' "
                            "with a token from `kiln forge user add`");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"kiln\"");
    return r;
  }
  auto user = users_->Authenticate(token);
  if (!user.ok()) return api::FromError(user.error());
  if (!*user) {
    ApiResponse r = Message(401, "bad credentials: the token is not known");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"kiln\", error=\"invalid_token\"");
    return r;
  }
  if (!bot_.empty() && **user == bot_) {
    return Message(403, "user " + Quote(bot_) +
                            " is the pipeline's bot (pipeline.bot): its token is not accepted");
  }
  auto target = api::ParseTarget(req.target);
  if (!target) return Message(400, "malformed request target " + Quote(req.target));
  auto forge = ForgeFor(**user);
  if (!forge.ok()) return api::FromError(forge.error());
  Result<ApiResponse> r = api::Dispatch(**forge, *users_, links_, **user, req, *target);
  if (!r.ok()) return api::FromError(r.error());
  return std::move(*r);
}

}  // namespace kiln::forge
