// The forge API's routes for pull requests, their diffs, reviews and
// merges, and commit statuses (docs/api.md).
#include <algorithm>

#include "base/strings.h"
#include "controller/forge/api_call.h"

namespace kiln::forge::api {

using nlohmann::json;

namespace {

// A single pull request with everything GitHub's pull-request has.
Result<ApiResponse> PullOut(Call& call, int status, const PullRequest& p) {
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(PullDetails details, call.f.Details(call.repo(), p.issue.number));
  return JsonResponse(status, wire::PullJson(call.links, *repo, p, &details));
}

// The members an inline comment of a review takes.
constexpr std::string_view kCommentMembers =
    "path position line side start_line start_side body severity";

// An inline comment given by GitHub's position instead of a line: path,
// position, body, and kiln's severity; the line and side are the forge's
// to find.
Result<ReviewComment> ByPosition(Call& call, const json& c, const std::string& at) {
  for (const char* line_member : {"line", "side", "start_line", "start_side"}) {
    if (c.contains(line_member)) {
      const std::string name = at + "." + line_member;
      return call.Refuse(name, "invalid",
                         "field " + Quote(name) + " cannot be given with a position: give a " +
                             "position, or a line and a side");
    }
  }
  ReviewComment rc;
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> position, call.Int(c, at, "position"));
  if (!position || *position < 1) {
    return call.Refuse(at + ".position", "invalid",
                       "field " + Quote(at + ".position") + " must be an integer from 1");
  }
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> path, call.String(c, at, "path", true));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> body, call.String(c, at, "body", true));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> severity, call.String(c, at, "severity"));
  rc.path = *path;
  rc.position = *position;
  rc.body = *body;
  rc.severity = severity.value_or("nit");
  rc.line = 0;
  return rc;
}

// The review a POST .../reviews body asks for.
Result<Review> ReviewFrom(Call& call) {
  const json& j = call.body;
  Review r;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> event, call.String(j, "", "event"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> verdict, call.String(j, "", "verdict"));
  if (event && verdict) {
    return call.Refuse("verdict", "invalid", "give one of 'event' and 'verdict', not both");
  }
  if (event) {
    if (*event == "APPROVE") {
      r.verdict = "approve";
    } else if (*event == "COMMENT") {
      r.verdict = "comment";
    } else if (*event == "REQUEST_CHANGES") {
      r.verdict = "request_changes";
    } else {
      return call.Refuse(
          "event", "invalid",
          "field 'event' " + Quote(*event) + " is not one of APPROVE, COMMENT, REQUEST_CHANGES");
    }
  } else if (verdict) {
    r.verdict = *verdict;
  } else {
    r.verdict = "pending";  // as GitHub: no event, a pending review
  }
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> body, call.String(j, "", "body"));
  r.body = body.value_or("");
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> commit, call.String(j, "", "commit_id"));
  r.commit_sha = commit.value_or("");
  auto it = j.find("comments");
  if (it == j.end() || it->is_null()) return r;
  if (!it->is_array())
    return call.Refuse("comments", "invalid", "field 'comments' must be an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& c = (*it)[i];
    const std::string at = "comments[" + std::to_string(i) + "]";
    if (!c.is_object())
      return call.Refuse(at, "invalid", "field " + Quote(at) + " must be an object");
    KILN_TRY(call.OnlyMembers(c, at, kCommentMembers));
    if (c.contains("position") && !c["position"].is_null()) {
      KILN_ASSIGN_OR_RETURN(ReviewComment rc, ByPosition(call, c, at));
      r.comments.push_back(std::move(rc));
      continue;
    }
    auto rc = wire::ReviewCommentFrom(c);
    if (!rc.ok()) return call.Refuse(at, "invalid", rc.error().Wrap(at).message());
    r.comments.push_back(std::move(*rc));
  }
  return r;
}

}  // namespace

// ?head=OWNER:BRANCH (or BRANCH) and ?base=BRANCH filter; sort and direction
// as on GitHub (without them: by number, oldest first).
Result<ApiResponse> ListPulls(Call& call) {
  KILN_ASSIGN_OR_RETURN(std::string state,
                        call.QueryOneOf("state", {"open", "closed", "merged", "all"}, "open"));
  KILN_ASSIGN_OR_RETURN(std::string sort, call.QueryOneOf("sort", {"created", "updated"}, ""));
  KILN_ASSIGN_OR_RETURN(std::string direction, call.QueryOneOf("direction", {"asc", "desc"}, ""));
  std::optional<std::string> head = call.Query("head");
  std::optional<std::string> base = call.Query("base");
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(std::vector<PullRequest> pulls, call.f.ListPulls(call.repo(), state));
  if (head) {
    // The local forge has no forks: OWNER:BRANCH names this repository's
    // owner, or no pull request.
    std::string branch = *head;
    if (size_t colon = head->find(':'); colon != std::string::npos) {
      branch = head->substr(0, colon) == call.c[0] ? head->substr(colon + 1) : "";
    }
    std::erase_if(pulls, [&](const PullRequest& p) { return p.head_branch != branch; });
  }
  if (base) {
    std::erase_if(pulls, [&](const PullRequest& p) { return p.base_branch != *base; });
  }
  if (!sort.empty() || !direction.empty()) {
    const bool asc = direction == "asc";
    auto key = [&](const PullRequest& p) {
      return sort == "updated" ? p.issue.updated_ms : p.issue.number;
    };
    std::stable_sort(pulls.begin(), pulls.end(), [&](const PullRequest& a, const PullRequest& b) {
      return asc ? key(a) < key(b) : key(a) > key(b);
    });
  }
  json a = json::array();
  for (const auto& p : pulls) a.push_back(wire::PullJson(call.links, *repo, p));
  return call.List(std::move(a));
}

Result<ApiResponse> OpenPull(Call& call) {
  const json& j = call.body;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> title, call.String(j, "", "title", true));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> text, call.String(j, "", "body"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> head, call.String(j, "", "head", true));
  // GitHub's OWNER:BRANCH: the local forge has no forks, so OWNER is this
  // repository's owner.
  if (size_t colon = head->find(':'); colon != std::string::npos) {
    if (head->substr(0, colon) != call.c[0]) {
      return call.Refuse("head", "invalid",
                         "field 'head' " + Quote(*head) + " names owner " +
                             Quote(head->substr(0, colon)) + ": the local forge has no forks, " +
                             "so a head is a branch of " + Quote(call.repo()) + " (" + call.c[0] +
                             ":BRANCH or BRANCH)");
    }
    head = head->substr(colon + 1);
  }
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> base, call.String(j, "", "base"));
  KILN_ASSIGN_OR_RETURN(std::optional<bool> draft, call.Bool(j, "", "draft"));
  if (draft.value_or(false)) {
    return call.Refuse("draft", "invalid",
                       "field 'draft' must be false: the local forge has no draft pull requests");
  }
  KILN_ASSIGN_OR_RETURN(PullRequest p, call.f.OpenPull(call.repo(), *title, text.value_or(""),
                                                       *head, base.value_or("")));
  KILN_ASSIGN_OR_RETURN(ApiResponse r, PullOut(call, 201, p));
  r.headers.emplace_back("Location", call.base() + "/pulls/" + std::to_string(p.issue.number));
  return r;
}

Result<ApiResponse> PullDiff(Call& call);

Result<ApiResponse> GetPull(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  // GitHub's media types: the diff when asked for, never a silent JSON.
  const std::string accept = call.Header("accept");
  if (accept.find("application/vnd.github") != std::string::npos &&
      accept.find(".diff") != std::string::npos) {
    return PullDiff(call);
  }
  if (accept.find("application/vnd.github") != std::string::npos &&
      accept.find(".patch") != std::string::npos) {
    return Message(406, "Accept " + Quote(accept) +
                            ": the local forge serves a pull request as JSON or as a diff "
                            "(application/vnd.github.diff), not as a patch");
  }
  KILN_ASSIGN_OR_RETURN(PullRequest p, call.f.GetPull(call.repo(), n));
  return PullOut(call, 200, p);
}

Result<ApiResponse> PatchPull(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_TRY(call.f.GetPull(call.repo(), n));
  KILN_TRY(PatchItem(call, n));
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
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(std::vector<Review> reviews, call.f.Reviews(call.repo(), n));
  json a = json::array();
  for (const auto& r : reviews) a.push_back(wire::ReviewJson(call.links, *repo, n, r));
  return call.List(std::move(a));
}

Result<ApiResponse> AddReview(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(Review review, ReviewFrom(call));
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(Review out, call.f.AddReview(call.repo(), n, review));
  return JsonResponse(200, wire::ReviewJson(call.links, *repo, n, out));  // 200, as GitHub
}

Result<ApiResponse> GetReview(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(int64_t id, Number(call.c[3], "review id"));
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(Review r, call.f.GetReview(call.repo(), n, id));
  return JsonResponse(200, wire::ReviewJson(call.links, *repo, n, r));
}

// POST .../reviews/ID/events: submits a pending review.
Result<ApiResponse> SubmitReview(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(int64_t id, Number(call.c[3], "review id"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> event,
                        call.String(call.body, "", "event", true));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> body, call.String(call.body, "", "body"));
  std::string verdict;
  if (*event == "APPROVE") {
    verdict = "approve";
  } else if (*event == "COMMENT") {
    verdict = "comment";
  } else if (*event == "REQUEST_CHANGES") {
    verdict = "request_changes";
  } else {
    return call.Refuse(
        "event", "invalid",
        "field 'event' " + Quote(*event) + " is not one of APPROVE, COMMENT, REQUEST_CHANGES");
  }
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(Review r, call.f.SubmitReview(call.repo(), n, id, verdict, body));
  return JsonResponse(200, wire::ReviewJson(call.links, *repo, n, r));
}

Result<ApiResponse> DeleteReview(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(int64_t id, Number(call.c[3], "review id"));
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(Review r, call.f.DeletePendingReview(call.repo(), n, id));
  return JsonResponse(200, wire::ReviewJson(call.links, *repo, n, r));
}

namespace {

// The inline comments of pull request n, filtered by since and sorted as
// the query says (created, or updated: the same, comments are not edited).
Result<json> PullCommentsJson(Call& call, int64_t n, int64_t review_id) {
  KILN_ASSIGN_OR_RETURN(std::string direction, call.QueryOneOf("direction", {"asc", "desc"}, ""));
  KILN_ASSIGN_OR_RETURN(std::string sort, call.QueryOneOf("sort", {"created", "updated"}, ""));
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> since, Since(call));
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(std::vector<PullComment> all, call.f.PullComments(call.repo(), n));
  if (direction == "desc" || (!sort.empty() && direction.empty())) {
    std::reverse(all.begin(), all.end());
  }
  json a = json::array();
  for (const PullComment& pc : all) {
    if (review_id != 0 && pc.review_id != review_id) continue;
    if (since && pc.created_ms < *since) continue;
    json j = wire::PullCommentJson(call.links, *repo, n, pc);
    // GitHub's review-comment (a review's own list) says null when outdated.
    if (review_id != 0 && !j.contains("position")) j["position"] = nullptr;
    a.push_back(std::move(j));
  }
  return a;
}

}  // namespace

Result<ApiResponse> ListPullComments(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(json a, PullCommentsJson(call, n, 0));
  return call.List(std::move(a));
}

Result<ApiResponse> ListReviewComments(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(int64_t id, Number(call.c[3], "review id"));
  KILN_TRY(call.f.GetReview(call.repo(), n, id));
  KILN_ASSIGN_OR_RETURN(json a, PullCommentsJson(call, n, id));
  return call.List(std::move(a));
}

// GET .../pulls/comments/ID: one inline comment, found through its review.
Result<ApiResponse> GetPullComment(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t id, Number(call.c[2], "review comment id"));
  const int64_t review_id = wire::ReviewOfComment(id).first;
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(int64_t n, call.f.ReviewNumber(call.repo(), review_id));
  KILN_ASSIGN_OR_RETURN(std::vector<PullComment> all, call.f.PullComments(call.repo(), n));
  for (const PullComment& pc : all) {
    if (pc.id == id) return JsonResponse(200, wire::PullCommentJson(call.links, *repo, n, pc));
  }
  return Error::NotFound("review comment " + std::to_string(id) + " not found in " +
                         Quote(call.repo()));
}

Result<ApiResponse> ListFiles(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(PullRequest p, call.f.GetPull(call.repo(), n));
  KILN_ASSIGN_OR_RETURN(std::vector<PullFile> files, call.f.Files(call.repo(), n));
  // The blob and raw links name the commit the files are at.
  const std::string at =
      p.issue.state == "merged" || p.head_sha.empty() ? p.merged_sha : p.head_sha;
  json a = json::array();
  for (const PullFile& f : files) a.push_back(wire::FileJson(call.links, *repo, at, f));
  return call.List(std::move(a));
}

// GitHub's "is it merged": 204 or 404.
Result<ApiResponse> IsMerged(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  KILN_ASSIGN_OR_RETURN(PullRequest p, call.f.GetPull(call.repo(), n));
  if (p.issue.state != "merged") {
    return Message(404, "pull request #" + call.c[2] + " is not merged");
  }
  return NoContent();
}

// PUT (or POST) .../merge: merge_method, commit_title, commit_message and
// sha honoured, as GitHub's.
Result<ApiResponse> MergePull(Call& call) {
  KILN_ASSIGN_OR_RETURN(int64_t n, Number(call.c[2], "pull request number"));
  const json& j = call.body;
  MergeOptions options;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> method, call.String(j, "", "merge_method"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> title, call.String(j, "", "commit_title"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> message, call.String(j, "", "commit_message"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> sha, call.String(j, "", "sha"));
  if (method && *method != "merge" && *method != "squash" && *method != "rebase") {
    return call.Refuse(
        "merge_method", "invalid",
        "field 'merge_method' " + Quote(*method) + " is not one of merge, squash, rebase");
  }
  if (method == "rebase" && (title || message)) {
    const char* field = title ? "commit_title" : "commit_message";
    return call.Refuse(field, "invalid",
                       "field " + Quote(field) +
                           " names a commit a rebase does not make: each replayed commit keeps "
                           "its message");
  }
  // A title or message asks for a commit to carry it: without a method, a
  // merge commit (GitHub's default), never a silent fast-forward.
  options.method = method.value_or(title || message ? "merge" : "");
  options.title = title.value_or("");
  options.message = message.value_or("");
  if (sha) {
    // As GitHub: 409 when the head is not the one the caller saw.
    KILN_ASSIGN_OR_RETURN(PullRequest now, call.f.GetPull(call.repo(), n));
    if (*sha != now.head_sha) {
      return Message(409,
                     "Head branch was modified. Review and try the merge again. (the head "
                     "of pull request #" +
                         call.c[2] + " is " + now.head_sha + ", not " + Quote(*sha) + ")");
    }
    options.expected_head = *sha;
  }
  KILN_ASSIGN_OR_RETURN(PullRequest p, call.f.Merge(call.repo(), n, options));
  return JsonResponse(200, {{"merged", true},
                            {"sha", p.merged_sha},
                            {"message", "pull request #" + call.c[2] + " merged"}});
}

Result<ApiResponse> ListStatuses(Call& call) {
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(std::vector<CommitStatus> statuses,
                        call.f.Statuses(call.repo(), call.c[2]));
  json a = json::array();
  for (const auto& s : statuses) a.push_back(wire::StatusJson(call.links, *repo, s));
  return call.List(std::move(a));
}

// GET .../commits/REF/status: the statuses of a commit and their state.
Result<ApiResponse> CombinedStatus(Call& call) {
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_ASSIGN_OR_RETURN(std::string sha, call.f.CommitOf(call.repo(), call.c[2]));
  KILN_ASSIGN_OR_RETURN(std::vector<CommitStatus> statuses, call.f.Statuses(call.repo(), sha));
  json combined = wire::CombinedStatusJson(call.links, *repo, sha, statuses);
  // Paged (when asked) are its statuses; the state and count are of all.
  KILN_ASSIGN_OR_RETURN(ApiResponse page, call.List(combined["statuses"]));
  combined["statuses"] = json::parse(page.body);
  ApiResponse r = JsonResponse(200, combined);
  r.headers = std::move(page.headers);
  return r;
}

Result<ApiResponse> SetStatus(Call& call) {
  const json& j = call.body;
  CommitStatus s;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> state, call.String(j, "", "state", true));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> context, call.String(j, "", "context"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> description, call.String(j, "", "description"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> target_url, call.String(j, "", "target_url"));
  s.state = *state;
  s.context = context.value_or("");
  if (s.context.empty()) s.context = "default";  // as GitHub
  s.description = description.value_or("");
  s.target_url = target_url.value_or("");
  KILN_ASSIGN_OR_RETURN(const LocalRepo* repo, call.Repo());
  KILN_TRY(call.f.SetStatus(call.repo(), call.c[2], s));
  KILN_ASSIGN_OR_RETURN(std::vector<CommitStatus> all, call.f.Statuses(call.repo(), call.c[2]));
  for (const auto& st : all) {
    if (st.context == s.context) return JsonResponse(201, wire::StatusJson(call.links, *repo, st));
  }
  return Error::Internal("status " + Quote(s.context) + " was set but is not there");
}

}  // namespace kiln::forge::api
