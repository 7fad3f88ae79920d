// The local forge's reviews: submitted at once or kept pending (the API's
// review without an event) until their author submits them, their inline
// comments anchored by line or by GitHub's diff position, and those
// comments placed in the diff as GitHub lists them.
#include <algorithm>
#include <map>

#include "base/clock.h"
#include "base/strings.h"
#include "controller/forge/db.h"
#include "controller/forge/local.h"
#include "controller/forge/patches.h"
#include "controller/forge/rows.h"
#include "controller/forge/validate.h"
#include "controller/forge/wire.h"
#include "controller/git/bare.h"
#include "controller/git/write.h"

namespace kiln::forge {

namespace bare = git::bare;

namespace {

using store::sql::Stmt;
using store::sql::Txn;

constexpr std::string_view kPending = "pending";

std::string Short(const std::string& sha) { return sha.substr(0, 12); }

std::string What(const std::string& repo, int64_t number) {
  return "pull request #" + std::to_string(number) + " in " + Quote(repo);
}

// A review as the actor may write it: a verdict (or pending), a body, inline
// comments with a path, a line (or a position), a side, a severity and a
// body. A submitted comment or request for changes says something.
Status CheckReview(const Review& r) {
  if (r.verdict != kPending) KILN_TRY(validate::Verdict(r.verdict));
  KILN_TRY(validate::Body(r.body, "review body"));
  if (r.verdict != "approve" && r.verdict != kPending && Trim(r.body).empty() &&
      r.comments.empty()) {
    return Error::Invalid("a " + Quote(r.verdict) + " review needs a body or inline comments");
  }
  for (size_t i = 0; i < r.comments.size(); ++i) {
    const ReviewComment& c = r.comments[i];
    const std::string at = "inline comment " + std::to_string(i + 1);
    if (c.path.empty()) return Error::Invalid(at + ": the path is empty");
    if (c.position < 0) {
      return Error::Invalid(at + " on " + Quote(c.path) + ": position must be 1 or more");
    }
    if (c.position > 0 && (c.line != 0 || c.start_line != 0)) {
      return Error::Invalid(at + " on " + Quote(c.path) + ": give a position or a line, not both");
    }
    if (c.position == 0 && c.line < 1) {
      return Error::Invalid(at + " on " + Quote(c.path) + ": line must be 1 or more");
    }
    if (Status st = validate::Side(c.side); !st.ok()) return st.error().Wrap(at);
    if (Status st = validate::Severity(c.severity); !st.ok()) return st.error().Wrap(at);
    if (c.position == 0) {
      Status range = validate::CommentRange(c.start_line, c.start_side, c.line, c.side);
      if (!range.ok()) return range.error().Wrap(at + " on " + Quote(c.path));
    }
    if (Trim(c.body).empty()) return Error::Invalid(at + " on " + Quote(c.path) + ": empty body");
    KILN_TRY(validate::Body(c.body, at));
  }
  return Ok();
}

nlohmann::json CommentsJson(const std::vector<ReviewComment>& comments) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& c : comments) a.push_back(wire::ReviewCommentJson(c));
  return a;
}

// The file of files a comment on path is about (its new or its old name).
const patches::FilePatch* FileOf(const std::vector<patches::FilePatch>& files,
                                 const std::string& path) {
  for (const auto& f : files) {
    if (f.path == path || (!f.old_path.empty() && f.old_path == path)) return &f;
  }
  return nullptr;
}

// GitHub's rule: no verdict on one's own pull request.
Status NotOwnVerdict(const Issue& pull, const std::string& actor, const std::string& verdict,
                     const std::string& what) {
  if (pull.author == actor && verdict == "approve") {
    return Error::Invalid("Can not approve your own pull request (" + what + ")");
  }
  if (pull.author == actor && verdict == "request_changes") {
    return Error::Invalid("Can not request changes on your own pull request (" + what + ")");
  }
  return Ok();
}

}  // namespace

Result<std::vector<Review>> Local::Reviews(const std::string& repo, int64_t number) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_TRY(rows::LoadPull(db_, repo, number));
  KILN_ASSIGN_OR_RETURN(std::vector<Review> all, rows::LoadReviews(db_, repo, number));
  // A pending review is its author's alone.
  std::erase_if(all, [&](const Review& r) { return r.verdict == kPending && r.author != actor_; });
  return all;
}

Result<Review> Local::GetReview(const std::string& repo, int64_t number, int64_t review_id) {
  KILN_ASSIGN_OR_RETURN(std::vector<Review> all, Reviews(repo, number));
  for (Review& r : all) {
    if (r.id == review_id) return std::move(r);
  }
  return Error::NotFound("review " + std::to_string(review_id) + " not found on " +
                         What(repo, number));
}

Result<int64_t> Local::ReviewNumber(const std::string& repo, int64_t review_id) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_TRY(rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(Stmt stmt, db_.Prepare("finding review " + std::to_string(review_id),
                                               "SELECT number FROM forge_reviews WHERE repo = ?1 "
                                               "AND id = ?2"));
  stmt.Bind(1, repo).Bind(2, review_id);
  KILN_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) {
    return Error::NotFound("review " + std::to_string(review_id) + " not found in " + Quote(repo));
  }
  return stmt.Int(0);
}

Result<Review> Local::AddReview(const std::string& repo, int64_t number, const Review& given) {
  KILN_TRY(CheckReview(given));
  Review review = given;
  const bool pending = review.verdict == kPending;
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadPull(db_, repo, number));
  const std::string what = What(repo, number);
  if (item.issue.state != "open") {
    return Error::Invalid(what + " is " + item.issue.state + "; only open ones are reviewed");
  }
  // As GitHub: an author's own verdict would count as a review.
  KILN_TRY(NotOwnVerdict(item.issue, actor_, review.verdict, what));
  KILN_ASSIGN_OR_RETURN(PullRequest pull, rows::ToPull(item, r.path));
  if (pull.head_sha.empty() || pull.base_sha.empty()) {
    return Error::Invalid(what + ": its head " + Quote(pull.head_branch) + " or base " +
                          Quote(pull.base_branch) + " branch no longer exists");
  }
  std::string commit = pull.head_sha;
  if (!review.commit_sha.empty()) {
    KILN_ASSIGN_OR_RETURN(commit, validate::Sha(review.commit_sha, "commit_sha"));
    KILN_ASSIGN_OR_RETURN(bool exists, bare::HasCommit(r.path, commit));
    if (!exists) return Error::NotFound("commit " + Quote(commit) + " not found in " + Quote(repo));
  }
  if (!review.comments.empty()) {
    auto patch = DiffAt(r.path, pull.base_sha, commit);
    if (!patch.ok()) return patch.error().Wrap("reviewing " + what);
    // A position (GitHub's place in the file's diff) becomes its line and side.
    std::vector<patches::FilePatch> files = patches::Split(*patch);
    for (size_t i = 0; i < review.comments.size(); ++i) {
      ReviewComment& c = review.comments[i];
      if (c.position == 0) continue;
      const std::string at = "inline comment " + std::to_string(i + 1) + " on " + Quote(c.path);
      const patches::FilePatch* f = FileOf(files, c.path);
      if (f == nullptr) {
        return Error::Invalid(at + ": the file is not in the diff of " + what + " at " +
                              Short(commit));
      }
      std::optional<patches::Anchor> line = patches::AtPosition(*f, c.position);
      if (!line) {
        return Error::Invalid(at + ": position " + std::to_string(c.position) +
                              " is not a line of the file's diff at " + Short(commit) +
                              " (it has " + std::to_string(f->lines.size()) +
                              " positions; hunk headers " + "are none)");
      }
      c.line = line->line;
      c.side = line->side;
      c.position = 0;
    }
    git::CommentableLines lines = git::ParseHunks(*patch);
    for (size_t i = 0; i < review.comments.size(); ++i) {
      const ReviewComment& c = review.comments[i];
      std::string why =
          git::WhyNotAnchored(lines, c.path, c.start_line, c.start_side, c.line, c.side);
      if (!why.empty()) {
        return Error::Invalid("inline comment " + std::to_string(i + 1) + " on " + wire::Anchor(c) +
                              " does not fit the diff of " + what + " at " + Short(commit) + ": " +
                              why);
      }
    }
  }
  const int64_t now = NowMs();
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("reviewing " + what));
  if (pending) {
    // As GitHub: one pending review per user and pull request.
    KILN_ASSIGN_OR_RETURN(std::vector<Review> all, rows::LoadReviews(db_, repo, number));
    for (const Review& other : all) {
      if (other.verdict == kPending && other.author == actor_) {
        return Error::Invalid(Quote(actor_) + " already has pending review " +
                              std::to_string(other.id) + " on " + what +
                              ": submit or delete it first");
      }
    }
  }
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt, db_.Prepare("reviewing " + what,
                             "INSERT INTO forge_reviews (repo, number, author, verdict, body, "
                             "commit_sha, comments, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                             "?7, ?8) RETURNING id"));
  stmt.Bind(1, repo)
      .Bind(2, number)
      .Bind(3, actor_)
      .Bind(4, review.verdict)
      .Bind(5, review.body)
      .Bind(6, commit)
      .Bind(7, db::Dump(CommentsJson(review.comments)))
      .Bind(8, now);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Error::Internal("reviewing " + what + ": no id returned");
  Review out = review;
  out.id = stmt.Int(0);
  out.author = actor_;
  out.commit_sha = commit;
  out.created_ms = now;
  KILN_TRY(stmt.Step());
  if (!pending) {
    KILN_TRY(rows::Touch(db_, repo, number, now));
    KILN_TRY(rows::Emit(db_, actor_, "review.submitted", repo, number,
                        {{"review_id", out.id}, {"verdict", out.verdict}, {"commit_sha", commit}},
                        now));
  }
  KILN_TRY(txn.Commit());
  return out;
}

Result<Review> Local::SubmitReview(const std::string& repo, int64_t number, int64_t review_id,
                                   const std::string& verdict,
                                   const std::optional<std::string>& body) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what = What(repo, number);
  const int64_t now = NowMs();
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("submitting a review of " + what));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadPull(db_, repo, number));
  KILN_ASSIGN_OR_RETURN(std::vector<Review> all, rows::LoadReviews(db_, repo, number));
  auto it = std::find_if(all.begin(), all.end(), [&](const Review& r) {
    return r.id == review_id && (r.verdict != kPending || r.author == actor_);
  });
  if (it == all.end()) {
    return Error::NotFound("review " + std::to_string(review_id) + " not found on " + what);
  }
  Review review = *it;
  if (review.verdict != kPending) {
    return Error::Invalid("review " + std::to_string(review_id) + " on " + what +
                          " is already submitted");
  }
  if (item.issue.state != "open") {
    return Error::Invalid(what + " is " + item.issue.state + "; only open ones are reviewed");
  }
  review.verdict = verdict;
  if (body) review.body = *body;
  KILN_TRY(CheckReview(review));
  KILN_TRY(NotOwnVerdict(item.issue, actor_, verdict, what));
  KILN_ASSIGN_OR_RETURN(Stmt stmt, db_.Prepare("submitting review " + std::to_string(review_id),
                                               "UPDATE forge_reviews SET verdict = ?2, body = ?3, "
                                               "created_ms = ?4 WHERE id = ?1"));
  stmt.Bind(1, review_id).Bind(2, review.verdict).Bind(3, review.body).Bind(4, now);
  KILN_TRY(stmt.Run());
  review.created_ms = now;
  KILN_TRY(rows::Touch(db_, repo, number, now));
  KILN_TRY(rows::Emit(
      db_, actor_, "review.submitted", repo, number,
      {{"review_id", review.id}, {"verdict", review.verdict}, {"commit_sha", review.commit_sha}},
      now));
  KILN_TRY(txn.Commit());
  return review;
}

Result<Review> Local::DeletePendingReview(const std::string& repo, int64_t number,
                                          int64_t review_id) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what = What(repo, number);
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("deleting a review of " + what));
  KILN_TRY(rows::LoadPull(db_, repo, number));
  KILN_ASSIGN_OR_RETURN(std::vector<Review> all, rows::LoadReviews(db_, repo, number));
  auto it = std::find_if(all.begin(), all.end(), [&](const Review& r) {
    return r.id == review_id && (r.verdict != kPending || r.author == actor_);
  });
  if (it == all.end()) {
    return Error::NotFound("review " + std::to_string(review_id) + " not found on " + what);
  }
  if (it->verdict != kPending) {
    return Error::Invalid("Can not delete a non-pending pull request review (review " +
                          std::to_string(review_id) + " on " + what + " is submitted)");
  }
  KILN_ASSIGN_OR_RETURN(Stmt stmt, db_.Prepare("deleting review " + std::to_string(review_id),
                                               "DELETE FROM forge_reviews WHERE id = ?1"));
  stmt.Bind(1, review_id);
  KILN_TRY(stmt.Run());
  KILN_TRY(txn.Commit());
  return *it;
}

Result<std::vector<PullComment>> Local::PullComments(const std::string& repo, int64_t number) {
  KILN_ASSIGN_OR_RETURN(std::vector<Review> reviews, Reviews(repo, number));
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadPull(db_, repo, number));
  KILN_ASSIGN_OR_RETURN(PullRequest pull, rows::ToPull(item, r.path));
  const std::string what = What(repo, number);
  // The diff each review saw: from the merge base (as merged, or with the
  // base now) to its commit. One per commit.
  std::map<std::string, std::vector<patches::FilePatch>> diffs;
  auto files_at = [&](const std::string& commit) -> Result<const std::vector<patches::FilePatch>*> {
    auto it = diffs.find(commit);
    if (it != diffs.end()) return &it->second;
    std::string from = item.merge_base_sha;
    if (from.empty()) {
      if (pull.base_sha.empty()) return &diffs[commit];  // the base is gone: no places
      auto base = git::MergeBase(r.path, pull.base_sha, commit);
      if (!base.ok()) return base.error().Wrap("review comments of " + what);
      from = *base;
    }
    auto patch = git::DiffCommits(r.path, from, commit);
    if (!patch.ok()) return patch.error().Wrap("review comments of " + what);
    return &(diffs[commit] = patches::Split(*patch));
  };
  std::vector<PullComment> out;
  for (const Review& rv : reviews) {
    KILN_ASSIGN_OR_RETURN(const std::vector<patches::FilePatch>* files, files_at(rv.commit_sha));
    for (size_t i = 0; i < rv.comments.size(); ++i) {
      PullComment pc;
      pc.id = wire::ReviewCommentId(rv.id, i);
      pc.review_id = rv.id;
      pc.author = rv.author;
      pc.commit_sha = rv.commit_sha;
      pc.created_ms = rv.created_ms;
      pc.comment = rv.comments[i];
      if (const patches::FilePatch* f = FileOf(*files, pc.comment.path)) {
        std::optional<int64_t> at = patches::PositionOf(*f, pc.comment.line, pc.comment.side);
        pc.original_position = at.value_or(0);
        pc.diff_hunk = at ? patches::HunkUpTo(*f, *at) : "";
      }
      // Where the head still is the review's commit, the comment is current.
      if (item.issue.state == "open" && pull.head_sha == rv.commit_sha && pc.original_position) {
        pc.position = pc.original_position;
      }
      out.push_back(std::move(pc));
    }
  }
  return out;
}

}  // namespace kiln::forge
