// The forge API's routes for the acting user, repositories, issues, their
// comments and labels (docs/api.md).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

#include "base/strings.h"
#include "controller/forge/api_call.h"

namespace kiln::forge::api {

using nlohmann::json;

namespace {

// An ISO 8601 time as GitHub takes it ("2025-03-14T09:26:53Z", fractions
// of a second and a "+01:00" offset allowed) in ms since the epoch.
std::optional<int64_t> ParseTime(const std::string& text) {
  int y, mo, d, h, mi, s, n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 ||
      n != 19) {
    return std::nullopt;
  }
  std::string_view rest = std::string_view(text).substr(19);
  if (!rest.empty() && rest[0] == '.') {
    rest.remove_prefix(1);
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest[0])))
      rest.remove_prefix(1);
  }
  int64_t offset_s = 0;
  if (rest == "Z") {
    rest = "";
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &oh, &om) != 2)
      return std::nullopt;
    offset_s = (rest[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    rest = "";
  }
  if (!rest.empty() || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
    return std::nullopt;
  }
  tm parts{};
  parts.tm_year = y - 1900;
  parts.tm_mon = mo - 1;
  parts.tm_mday = d;
  parts.tm_hour = h;
  parts.tm_min = mi;
  parts.tm_sec = s;
  return (static_cast<int64_t>(timegm(&parts)) - offset_s) * 1000;
}

}  // namespace

Result<std::optional<int64_t>> Since(Call& call) {
  std::optional<std::string> text = call.Query("since");
  if (!text) return std::optional<int64_t>();
  std::optional<int64_t> ms = ParseTime(*text);
  if (!ms) {
    return call.Refuse(
        "since", "invalid",
        "parameter 'since' " + Quote(*text) + " is not an ISO 8601 time (YYYY-MM-DDTHH:MM:SSZ)");
  }
  return ms;
}

namespace {

json LabelsJson(Call& call, const LocalRepo& repo, const std::vector<std::string>& names) {
  json a = json::array();
  for (const auto& l : names) a.push_back(wire::LabelJson(call.links, repo.info.name, l));
  return a;
}

// The labels of issue number now, as GitHub lists them.
Result<ApiResponse> LabelsNow(Call& call, int64_t number) {
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(Issue issue, call.f.GetIssue(call.repo(), number));
  return call.List(LabelsJson(call, *repo, issue.labels));
}

// What the local forge has none of, taken only as "none".
Status NoAssigneesOrMilestone(Call& call) {
  KILN_TRY(call.NoneOnly("assignees", "the local forge has no assignees"));
  KILN_TRY(call.NoneOnly("assignee", "the local forge has no assignees"));
  return call.NoneOnly("milestone", "the local forge has no milestones");
}

}  // namespace

Result<ApiResponse> GetUser(Call& call) {
  KILN_ASSIGN_OR_RETURN(std::vector<User> all, call.users.List());
  int64_t created_ms = 0;
  for (const User& u : all) {
    if (u.name == call.user) created_ms = u.created_ms;
  }
  return JsonResponse(200, wire::AuthenticatedUserJson(call.links, call.user, created_ms));
}

Result<ApiResponse> ListRepos(Call& call) {
  KILN_ASSIGN_OR_RETURN(std::vector<LocalRepo> repos, call.f.ListRepos());
  json a = json::array();
  for (const auto& r : repos) a.push_back(wire::RepoJson(call.links, r));
  return call.List(std::move(a));
}

Result<ApiResponse> GetRepo(Call& call) {
  KILN_ASSIGN_OR_RETURN(const LocalRepo* r, call.Repo());
  return JsonResponse(200, wire::RepoJson(call.links, *r));
}

// ?labels=a,b keeps the issues that have all of them; creator, since,
// sort and direction as on GitHub (without sort: by number, oldest first).
Result<ApiResponse> ListIssues(Call& call) {
  IssueFilter filter;
  KILN_ASSIGN_OR_RETURN(filter.state,
                        call.QueryOneOf("state", {"open", "closed", "merged", "all"}, "open"));
  std::vector<std::string> labels;
  for (const auto& l : Split(call.Query("labels").value_or(""), ',')) {
    if (!Trim(l).empty()) labels.emplace_back(Trim(l));
  }
  if (!labels.empty()) filter.label = labels.front();
  for (const char* none : {"assignee", "milestone"}) {
    std::optional<std::string> v = call.Query(none);
    if (v && *v != "none") {
      return call.Refuse(none, "invalid",
                         "parameter " + Quote(none) +
                             " can only be 'none': the local forge has no " +
                             (none == std::string("assignee") ? "assignees" : "milestones"));
    }
  }
  std::optional<std::string> creator = call.Query("creator");
  KILN_ASSIGN_OR_RETURN(std::string sort,
                        call.QueryOneOf("sort", {"created", "updated", "comments"}, ""));
  KILN_ASSIGN_OR_RETURN(std::string direction, call.QueryOneOf("direction", {"asc", "desc"}, ""));
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> since, Since(call));
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(std::vector<Issue> issues, call.f.ListIssues(call.repo(), filter));
  std::erase_if(issues, [&](const Issue& i) {
    if (creator && i.author != *creator) return true;
    if (since && i.updated_ms < *since) return true;
    return !std::all_of(labels.begin(), labels.end(), [&](const std::string& l) {
      return std::find(i.labels.begin(), i.labels.end(), l) != i.labels.end();
    });
  });
  if (!sort.empty() || !direction.empty()) {
    // GitHub's defaults: by creation, newest first.
    const bool asc = direction == "asc";
    auto key = [&](const Issue& i) {
      return sort == "updated" ? i.updated_ms : sort == "comments" ? i.comments : i.number;
    };
    std::stable_sort(issues.begin(), issues.end(), [&](const Issue& a, const Issue& b) {
      return asc ? key(a) < key(b) : key(a) > key(b);
    });
  }
  json a = json::array();
  for (const auto& i : issues) a.push_back(wire::IssueJson(call.links, *repo, i));
  return call.List(std::move(a));
}

Result<ApiResponse> CreateIssue(Call& call) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> title,
                        call.String(call.body, "", "title", true));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> text, call.String(call.body, "", "body"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> labels,
                        call.Strings(call.body, "", "labels"));
  KILN_TRY(NoAssigneesOrMilestone(call));
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(Issue issue,
                        call.f.CreateIssue(call.repo(), *title, text.value_or(""),
                                           labels.value_or(std::vector<std::string>{})));
  ApiResponse r = JsonResponse(201, wire::IssueJson(call.links, *repo, issue));
  r.headers.emplace_back("Location", call.base() + "/issues/" + std::to_string(issue.number));
  return r;
}

Result<ApiResponse> GetIssue(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(Issue issue, call.f.GetIssue(call.repo(), n));
  return JsonResponse(200, wire::IssueJson(call.links, *repo, issue));
}

// title, body, state (open | closed) and labels (the whole set) of an issue
// or a pull request, as one write: all of it or none.
Status PatchItem(Call& call, int64_t number) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> title, call.String(call.body, "", "title"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> text, call.String(call.body, "", "body"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> state, call.String(call.body, "", "state"));
  if (state && *state != "open" && *state != "closed") {
    return call.Refuse("state", "invalid",
                       "field 'state' " + Quote(*state) + " is not one of open, closed");
  }
  std::optional<std::vector<std::string>> labels;
  if (call.route.resource == "Issue") {
    KILN_ASSIGN_OR_RETURN(labels, call.Strings(call.body, "", "labels"));
    KILN_TRY(NoAssigneesOrMilestone(call));
  }
  if (!title && !text && !state && !labels) {
    KILN_TRY(call.f.GetIssue(call.repo(), number));  // 404 for a number that is not there
    return Ok();
  }
  return call.f.Update(call.repo(), number, title, text, state, labels);
}

Result<ApiResponse> PatchIssue(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_TRY(PatchItem(call, n));
  return GetIssue(call);
}

Result<ApiResponse> GetComment(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t id, Number(call.c[2], "comment id"));
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(Comment cm, call.f.GetComment(call.repo(), id));
  KILN_ASSIGN_OR_RETURN(Issue issue, call.f.GetIssue(call.repo(), cm.number));
  return JsonResponse(200, wire::CommentJson(call.links, *repo, issue.is_pull, cm));
}

Result<ApiResponse> EditComment(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t id, Number(call.c[2], "comment id"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> text, call.String(call.body, "", "body", true));
  KILN_TRY(call.f.EditComment(call.repo(), id, *text));
  return GetComment(call);
}

Result<ApiResponse> ListComments(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> since, Since(call));
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(Issue issue, call.f.GetIssue(call.repo(), n));
  KILN_ASSIGN_OR_RETURN(std::vector<Comment> comments, call.f.Comments(call.repo(), n));
  json a = json::array();
  for (const auto& c : comments) {
    if (since && c.updated_ms < *since) continue;
    a.push_back(wire::CommentJson(call.links, *repo, issue.is_pull, c));
  }
  return call.List(std::move(a));
}

Result<ApiResponse> AddComment(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> text, call.String(call.body, "", "body", true));
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(Comment cm, call.f.AddComment(call.repo(), n, *text));
  KILN_ASSIGN_OR_RETURN(Issue issue, call.f.GetIssue(call.repo(), n));
  ApiResponse r = JsonResponse(201, wire::CommentJson(call.links, *repo, issue.is_pull, cm));
  r.headers.emplace_back("Location", call.base() + "/issues/comments/" + std::to_string(cm.id));
  return r;
}

Result<ApiResponse> GetLabels(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  return LabelsNow(call, n);
}

Result<ApiResponse> AddLabels(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> labels,
                        call.Strings(call.body, "", "labels", true));
  KILN_TRY(call.f.AddLabels(call.repo(), n, *labels));
  return LabelsNow(call, n);
}

Result<ApiResponse> SetLabels(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> labels,
                        call.Strings(call.body, "", "labels", true));
  KILN_TRY(call.f.Update(call.repo(), n, std::nullopt, std::nullopt, std::nullopt, labels));
  return LabelsNow(call, n);
}

Result<ApiResponse> RemoveLabels(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_TRY(call.f.Update(call.repo(), n, std::nullopt, std::nullopt, std::nullopt,
                         std::vector<std::string>{}));
  return NoContent();  // as GitHub
}

Result<ApiResponse> RemoveLabel(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "issue number"));
  KILN_TRY(call.f.RemoveLabel(call.repo(), n, call.c[3]));
  return LabelsNow(call, n);
}

}  // namespace kiln::forge::api
