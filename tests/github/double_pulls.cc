// Pull requests in the double: listing, creating (with GitHub's 422s for a
// missing branch, no commits, or a duplicate), editing, and reviews with
// inline comments checked against the diff as GitHub checks them.
#include <algorithm>

#include "tests/github/double_internal.h"

namespace kiln::testing {

using ghd::Call;
using ghd::Caller;
using ghd::Issue;
using ghd::json;
using ghd::Reply;
using ghd::Repo;

namespace {

constexpr char kDocs[] = "https://docs.github.com/rest/pulls";

using ghd::Json;

Reply Error(int status, const std::string& message) { return ghd::Error(status, message, kDocs); }

// One validation error.
Reply Invalid(const json& error) { return ghd::Invalid(json::array({error}), kDocs); }

// GitHub's answer to a review it refuses: the errors are plain strings.
Reply Unprocessable(const std::string& error) {
  return Json(422, {{"message", "Unprocessable Entity"},
                    {"errors", json::array({error})},
                    {"documentation_url", std::string(kDocs) + "/reviews"}});
}

std::string Str(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : "";
}

int IntOr0(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_number_integer() ? it->get<int>() : 0;
}

}  // namespace

Reply GitHubDouble::Impl::HandlePulls(const Call& call, const Caller& caller, Repo& repo,
                                      const std::vector<std::string>& rest) {
  const std::string& m = call.method;
  size_t n = rest.size();
  json body = json::parse(call.body.empty() ? "{}" : call.body, nullptr, false);
  if (n == 1 && m == "GET") {
    auto q = [&](const char* k) { return call.query.count(k) ? call.query.at(k) : ""; };
    std::string state = q("state").empty() ? "open" : q("state");
    std::string head = q("head");
    if (head.find(':') != std::string::npos) {
      if (head.substr(0, head.find(':')) != repo.owner) return Paginate(call, json::array());
      head = head.substr(head.find(':') + 1);
    }
    json all = json::array();
    for (auto it = repo.issues.rbegin(); it != repo.issues.rend(); ++it) {
      const Issue& p = it->second;
      if (!p.is_pull || (state != "all" && p.state != state)) continue;
      if ((!head.empty() && p.head != head) || (!q("base").empty() && p.base != q("base"))) {
        continue;
      }
      all.push_back(PullJson(repo, p, false));
    }
    return Paginate(call, all);
  }
  if (n == 1 && m == "POST") return CreatePull(repo, caller.login, body);
  if (n < 2) return Error(404, "Not Found");
  int64_t number = -1;
  try {
    number = std::stoll(rest[1]);
  } catch (const std::exception&) {
    return Error(404, "Not Found");
  }
  auto it = repo.issues.find(number);
  if (it == repo.issues.end() || !it->second.is_pull) return Error(404, "Not Found");
  Issue& pull = it->second;
  if (n == 2 && m == "GET") return Json(200, PullJson(repo, pull));
  if (n == 2 && m == "PATCH") return EditPull(repo, pull, caller.login, body);
  if (n == 3 && rest[2] == "reviews" && m == "GET") {
    json all = json::array();
    for (const auto& r : pull.reviews) {
      if (r.state != "PENDING" || r.user == caller.login) all.push_back(ReviewJson(repo, pull, r));
    }
    return Paginate(call, all);
  }
  if (n == 3 && rest[2] == "reviews" && m == "POST") {
    return CreateReview(repo, pull, caller.login, body);
  }
  if (n == 3 && rest[2] == "comments" && m == "GET") {
    json all = json::array();
    for (const auto& c : pull.review_comments) all.push_back(ReviewCommentJson(repo, pull, c));
    return Paginate(call, all);
  }
  return Error(404, "Not Found");
}

Reply GitHubDouble::Impl::CreatePull(Repo& repo, const std::string& user, const json& req) {
  if (!req.is_object()) return Error(400, "Problems parsing JSON");
  std::string title = Str(req, "title");
  std::string head = Str(req, "head");
  std::string base = Str(req, "base");
  if (title.empty()) {
    return Invalid({{"resource", "PullRequest"}, {"code", "missing_field"}, {"field", "title"}});
  }
  if (head.find(':') != std::string::npos) {
    if (head.substr(0, head.find(':')) != repo.owner) {
      return Invalid({{"resource", "PullRequest"}, {"field", "head"}, {"code", "invalid"}});
    }
    head = head.substr(head.find(':') + 1);
  }
  std::string head_sha = head.empty() ? "" : BranchShaLocked(repo, head);
  if (head_sha.empty()) {
    return Invalid({{"resource", "PullRequest"}, {"field", "head"}, {"code", "invalid"}});
  }
  std::string base_sha = base.empty() ? "" : BranchShaLocked(repo, base);
  if (base_sha.empty()) {
    return Invalid({{"resource", "PullRequest"}, {"field", "base"}, {"code", "invalid"}});
  }
  for (const auto& [num, p] : repo.issues) {
    if (p.is_pull && p.state == "open" && p.head == head && p.base == base) {
      return Invalid(
          {{"resource", "PullRequest"},
           {"code", "custom"},
           {"message", "A pull request already exists for " + repo.owner + ":" + head + "."}});
    }
  }
  std::string count =
      ghd::Git({"--git-dir", repo.bare, "rev-list", "--count", base_sha + ".." + head_sha});
  if (std::stoll(count) == 0) {
    return Invalid({{"resource", "PullRequest"},
                    {"code", "custom"},
                    {"message", "No commits between " + base + " and " + head}});
  }
  Issue pull;
  pull.id = NextId();
  pull.pull_id = NextId();
  pull.number = repo.next_number++;
  pull.is_pull = true;
  pull.title = title;
  pull.body = Str(req, "body");
  pull.user = user;
  pull.created_at = pull.updated_at = ghd::NowIso();
  pull.head = head;
  pull.base = base;
  pull.head_sha = head_sha;
  pull.draft = req.value("draft", false);
  Issue& stored = repo.issues[pull.number] = pull;
  IssueEvent(repo, stored, "opened", user);
  return Json(201, PullJson(repo, stored));
}

Reply GitHubDouble::Impl::EditPull(Repo& repo, Issue& pull, const std::string& user,
                                   const json& req) {
  if (!req.is_object()) return Error(400, "Problems parsing JSON");
  // Everything is checked before anything changes, as on GitHub.
  std::string state = Str(req, "state");
  if (!state.empty() && state != "open" && state != "closed") {
    return Invalid({{"resource", "PullRequest"}, {"field", "state"}, {"code", "invalid"}});
  }
  std::string base = Str(req, "base");
  const bool rebase = !base.empty() && base != pull.base;
  if (rebase && BranchShaLocked(repo, base).empty()) {
    return Invalid({{"resource", "PullRequest"}, {"field", "base"}, {"code", "invalid"}});
  }
  json changes = ApplyTitleAndBody(pull, req);
  if (rebase) {
    changes["base"] = {{"ref", {{"from", pull.base}}},
                       {"sha", {{"from", BranchShaLocked(repo, pull.base)}}}};
    pull.base = base;
  }
  if (!changes.empty()) {
    pull.updated_at = ghd::NowIso();
    IssueEvent(repo, pull, "edited", user, {{"changes", changes}});
  }
  if (!state.empty() && state != pull.state) SetStateLocked(repo, pull, user, state);
  return Json(200, PullJson(repo, pull));
}

Reply GitHubDouble::Impl::CreateReview(Repo& repo, Issue& pull, const std::string& user,
                                       const json& req) {
  if (!req.is_object()) return Error(400, "Problems parsing JSON");
  std::string event = Str(req, "event");
  static const std::map<std::string, std::string> kStates = {
      {"APPROVE", "APPROVED"},
      {"REQUEST_CHANGES", "CHANGES_REQUESTED"},
      {"COMMENT", "COMMENTED"},
      {"", "PENDING"}};
  auto state = kStates.find(event);
  if (state == kStates.end()) return Unprocessable("Invalid event: " + event);
  if (user == pull.user && event == "APPROVE") {
    return Unprocessable("Can not approve your own pull request");
  }
  if (user == pull.user && event == "REQUEST_CHANGES") {
    return Unprocessable("Can not request changes on your own pull request");
  }
  std::string body = Str(req, "body");
  json comments = req.value("comments", json::array());
  if (!comments.is_array()) return Unprocessable("comments is not an array");
  if ((event == "REQUEST_CHANGES" || event == "COMMENT") && body.empty() && comments.empty()) {
    return Unprocessable("Review Comment is missing: " + event +
                         " needs a body or at least one comment");
  }
  std::string commit = Str(req, "commit_id").empty() ? pull.head_sha : Str(req, "commit_id");
  std::map<std::string, ghd::DiffLines> diff;
  if (!comments.empty()) {
    std::string base_sha = BranchShaLocked(repo, pull.base);
    std::string mb = ghd::Git({"--git-dir", repo.bare, "merge-base", base_sha, commit});
    diff = ghd::ParseDiff(ghd::Git({"--git-dir", repo.bare, "diff", mb, commit}));
  }
  ghd::Review review;
  review.id = NextId();
  review.user = user;
  review.body = body;
  review.state = state->second;
  review.commit_id = commit;
  review.submitted_at = ghd::NowIso();
  std::vector<ghd::ReviewComment> made;
  for (const auto& c : comments) {
    ghd::ReviewComment rc;
    rc.id = NextId();
    rc.review_id = review.id;
    rc.path = Str(c, "path");
    rc.body = Str(c, "body");
    rc.line = IntOr0(c, "line");
    rc.side = Str(c, "side").empty() ? "RIGHT" : Str(c, "side");
    rc.start_line = IntOr0(c, "start_line");
    rc.start_side = rc.start_line == 0             ? ""
                    : Str(c, "start_side").empty() ? rc.side
                                                   : Str(c, "start_side");
    auto file = diff.find(rc.path);
    if (file == diff.end()) return Unprocessable("Path could not be resolved");
    auto on = [](const std::set<int>& left, const std::set<int>& right, const std::string& side,
                 int line) { return (side == "LEFT" ? left : right).count(line) > 0; };
    const ghd::DiffLines& lines = file->second;
    if (rc.line <= 0 || !on(lines.left, lines.right, rc.side, rc.line) ||
        (rc.start_line != 0 && !on(lines.left, lines.right, rc.start_side, rc.start_line))) {
      return Unprocessable("Pull request review thread line must be part of the diff");
    }
    if (rc.start_line != 0) {
      // GitHub's rules for a range: it starts before it ends, inside one hunk.
      if (rc.start_side == rc.side && rc.start_line >= rc.line) {
        return Unprocessable("Pull request review thread start line must precede the end line.");
      }
      bool one_hunk = std::any_of(lines.hunks.begin(), lines.hunks.end(), [&](const auto& h) {
        return on(h.left, h.right, rc.start_side, rc.start_line) &&
               on(h.left, h.right, rc.side, rc.line);
      });
      if (!one_hunk) {
        return Unprocessable(
            "Pull request review thread start line must be part of the same hunk as the line.");
      }
    }
    rc.user = user;
    rc.commit_id = commit;
    rc.created_at = review.submitted_at;
    rc.diff_hunk = file->second.first_hunk;
    made.push_back(rc);
  }
  pull.reviews.push_back(review);
  for (const auto& rc : made) pull.review_comments.push_back(rc);
  if (review.state != "PENDING") {
    QueueHook("pull_request_review",
              {{"action", "submitted"},
               {"review", ReviewJson(repo, pull, review)},
               {"pull_request", PullJson(repo, pull)}},
              repo, user);
    for (const auto& rc : made) {
      QueueHook("pull_request_review_comment",
                {{"action", "created"},
                 {"comment", ReviewCommentJson(repo, pull, rc)},
                 {"pull_request", PullJson(repo, pull)}},
                repo, user);
    }
  }
  return Json(200, ReviewJson(repo, pull, review));
}

}  // namespace kiln::testing
