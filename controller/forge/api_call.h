// What the forge API's routes share (internal to api*.cc): one request as a
// route's handler sees it, the readers of its members, the error shapes and
// paging. A route's table entry (api.cc) names the query and body members
// it takes; Dispatch refuses any other with 422 before the handler runs,
// and the handler reads those it takes through Call, which refuses a value
// it cannot honour the same way, naming the member (GitHub's validation
// error: {"message": "Validation Failed", "errors": [{"resource", "field",
// "code", "message"}], "documentation_url"}).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/forge/api.h"
#include "controller/forge/local.h"
#include "controller/forge/users.h"
#include "controller/forge/wire.h"

namespace kiln::forge::api {

struct Target {
  std::vector<std::string> segments;  // after /api/v1/
  std::map<std::string, std::string> query;
  std::string repeated;  // a query parameter given more than once ("" when none)
};

class Call;

struct Route {
  std::string_view pattern;  // segments after /api/v1/; '*' is one segment
  std::string_view method;
  Result<ApiResponse> (*handle)(Call&);
  std::string_view resource;  // GitHub's name of what it works on, for 422s: "Issue"
  std::string_view query;     // the query members it takes, space-separated
  std::string_view body;      // the body members it takes, space-separated
  // GitHub's validation-error-simple (the review routes): errors are strings.
  bool simple_errors;
};

// A member the route cannot honour: what a 422 names.
struct Refusal {
  std::string field;    // "labels", "comments[0].position"
  std::string code;     // GitHub's: missing_field, invalid, unprocessable
  std::string message;  // for people: "field 'assignees' ..."
};

class Call {
 public:
  Call(Local& f, Users& users, const wire::Links& links, const std::string& user,
       const Route& route, const Target& target, const nlohmann::json& body,
       const std::map<std::string, std::string>& headers, std::vector<std::string> captures)
      : f(f),
        users(users),
        links(links),
        user(user),
        route(route),
        target(target),
        body(body),
        headers(headers),
        c(std::move(captures)) {}

  Local& f;
  Users& users;
  const wire::Links& links;
  const std::string& user;
  const Route& route;
  const Target& target;
  const nlohmann::json& body;                         // the request's JSON object ({} when none)
  const std::map<std::string, std::string>& headers;  // names lower-cased
  std::vector<std::string> c;      // the pattern's '*' parts: owner, name, then the rest
  std::optional<Refusal> refused;  // set by Refuse: the response is a validation error

  std::string repo() const { return c[0] + "/" + c[1]; }
  std::string base() const { return "/api/v1/repos/" + repo(); }
  // The repository the route is in (read once), for the objects' links.
  Result<const LocalRepo*> Repo();

  // A 422 naming field (kInvalidArgument; Dispatch answers with the shape).
  Error Refuse(std::string field, std::string code, std::string message);

  // A request header ("" when absent); name lower-cased.
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }

  // Query members (Dispatch has refused those the route does not take).
  std::optional<std::string> Query(const std::string& key) const;
  // One of allowed, or def when absent; a 422 naming the member otherwise.
  Result<std::string> QueryOneOf(const std::string& key, std::vector<std::string> allowed,
                                 const std::string& def);

  // Body members of j (the body, or an object within it named by at:
  // "comments[0]"): a string, an integer, a boolean, or an array of
  // strings (label objects {"name"} too); nullopt when absent or null; a
  // 422 naming the member when of another type, or absent and required.
  Result<std::optional<std::string>> String(const nlohmann::json& j, const std::string& at,
                                            const std::string& field, bool required = false);
  Result<std::optional<int64_t>> Int(const nlohmann::json& j, const std::string& at,
                                     const std::string& field);
  Result<std::optional<bool>> Bool(const nlohmann::json& j, const std::string& at,
                                   const std::string& field);
  Result<std::optional<std::vector<std::string>>> Strings(const nlohmann::json& j,
                                                          const std::string& at,
                                                          const std::string& field,
                                                          bool required = false);
  // The members of j (at: its name) that are not in allowed (space-separated):
  // the first is refused.
  Status OnlyMembers(const nlohmann::json& j, const std::string& at, std::string_view allowed);
  // A member the local forge has nothing for, taken only with the value that
  // says "none" (assignees [], milestone null): anything else is refused with
  // why.
  Status NoneOnly(const std::string& field, const std::string& why);

  // A list response, paged when the query asks (page, per_page; GitHub's
  // Link header), whole otherwise.
  Result<ApiResponse> List(nlohmann::json items);

 private:
  std::optional<LocalRepo> repo_row_;
};

// ?since=TIME (ISO 8601, as GitHub takes it) in ms since the epoch; nullopt
// when absent; a 422 naming the parameter when it does not parse.
Result<std::optional<int64_t>> Since(Call& call);

ApiResponse JsonResponse(int status, const nlohmann::json& body);
// {"message", "documentation_url"}.
ApiResponse Message(int status, const std::string& message);
ApiResponse NoContent();
// A number in a path ("issue number"): kNotFound naming it unless 1 or more.
Result<int64_t> Number(const std::string& text, std::string_view what);

// The routes' handlers: api_issues.cc (the user, repositories, issues,
// comments, labels), api_pulls.cc (pull requests, reviews, merges,
// statuses).
Result<ApiResponse> GetUser(Call& call);
Result<ApiResponse> ListRepos(Call& call);
Result<ApiResponse> GetRepo(Call& call);
Result<ApiResponse> ListIssues(Call& call);
Result<ApiResponse> CreateIssue(Call& call);
Result<ApiResponse> GetIssue(Call& call);
Result<ApiResponse> PatchIssue(Call& call);
Result<ApiResponse> GetComment(Call& call);
Result<ApiResponse> EditComment(Call& call);
Result<ApiResponse> ListComments(Call& call);
Result<ApiResponse> AddComment(Call& call);
Result<ApiResponse> GetLabels(Call& call);
Result<ApiResponse> AddLabels(Call& call);
Result<ApiResponse> SetLabels(Call& call);
Result<ApiResponse> RemoveLabels(Call& call);
Result<ApiResponse> RemoveLabel(Call& call);
// The PATCH of an issue or a pull request (title, body, state; an issue's
// labels too), as one write.
Status PatchItem(Call& call, int64_t number);

Result<ApiResponse> ListPulls(Call& call);
Result<ApiResponse> OpenPull(Call& call);
Result<ApiResponse> GetPull(Call& call);
Result<ApiResponse> PatchPull(Call& call);
Result<ApiResponse> PullDiff(Call& call);
Result<ApiResponse> ListReviews(Call& call);
Result<ApiResponse> AddReview(Call& call);
Result<ApiResponse> GetReview(Call& call);
Result<ApiResponse> SubmitReview(Call& call);
Result<ApiResponse> DeleteReview(Call& call);
Result<ApiResponse> ListReviewComments(Call& call);
Result<ApiResponse> ListPullComments(Call& call);
Result<ApiResponse> GetPullComment(Call& call);
Result<ApiResponse> ListFiles(Call& call);
Result<ApiResponse> CombinedStatus(Call& call);
Result<ApiResponse> IsMerged(Call& call);
Result<ApiResponse> MergePull(Call& call);
Result<ApiResponse> ListStatuses(Call& call);
Result<ApiResponse> SetStatus(Call& call);

}  // namespace kiln::forge::api
