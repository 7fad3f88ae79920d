#include "controller/forge/rows.h"

#include <algorithm>

#include "controller/forge/db.h"
#include "controller/forge/events.h"
#include "controller/forge/wire.h"
#include "controller/git/bare.h"

namespace kiln::forge::rows {
namespace {

using store::sql::Stmt;

constexpr std::string_view kRepoColumns =
    "name, path, default_branch, maintainers, labels, next_number, created_ms";
// The item's columns, then how many comments it has and, once merged, who
// merged it (the actor of the local forge's pull.closed event that merged it).
std::string ItemColumns(const Db& db) {
  const bool lite = db.dialect() == store::sql::Dialect::kSqlite;
  return std::string(
             "repo, number, is_pull, title, body, author, state, labels, head_branch, "
             "base_branch, merged_sha, merge_base_sha, merged_head_sha, created_ms, updated_ms, "
             "closed_ms, (SELECT COUNT(*) FROM forge_comments c WHERE c.repo = forge_items.repo "
             "AND c.number = forge_items.number), CASE WHEN state = 'merged' THEN COALESCE(("
             "SELECT actor FROM events e WHERE e.source = 'local' AND e.kind = 'pull.closed' AND "
             "e.repo = forge_items.repo AND e.number = forge_items.number AND ") +
         (lite ? "json_extract(e.payload, '$.merged') = 1"
               : "(e.payload::jsonb -> 'merged') = 'true'::jsonb") +
         " ORDER BY e.seq DESC LIMIT 1), '') ELSE '' END";
}

Error Corrupt(const Db& db, std::string_view what, const std::string& why) {
  return Error(Error::Code::kCorruption,
               "store " + Quote(db.name()) + ": " + std::string(what) + ": " + why);
}

Result<RepoRow> ReadRepo(const Db& db, const Stmt& s) {
  RepoRow r;
  r.name = s.Text(0);
  r.path = s.Text(1);
  r.default_branch = s.Text(2);
  KILN_ASSIGN_OR_RETURN(r.maintainers,
                        StringList(db, s.Text(3), "repository " + r.name + " maintainers"));
  KILN_ASSIGN_OR_RETURN(r.labels, StringList(db, s.Text(4), "repository " + r.name + " labels"));
  r.next_number = s.Int(5);
  r.created_ms = s.Int(6);
  return r;
}

Result<ItemRow> ReadItem(const Db& db, const Stmt& s) {
  ItemRow r;
  Issue& i = r.issue;
  int c = 0;
  i.repo = s.Text(c++);
  i.number = s.Int(c++);
  i.is_pull = s.Int(c++) != 0;
  i.title = s.Text(c++);
  i.body = s.Text(c++);
  i.author = s.Text(c++);
  i.state = s.Text(c++);
  KILN_ASSIGN_OR_RETURN(
      i.labels, StringList(db, s.Text(c++), i.repo + " #" + std::to_string(i.number) + " labels"));
  r.head_branch = s.Text(c++);
  r.base_branch = s.Text(c++);
  r.merged_sha = s.Text(c++);
  r.merge_base_sha = s.Text(c++);
  r.merged_head_sha = s.Text(c++);
  i.created_ms = s.Int(c++);
  i.updated_ms = s.Int(c++);
  i.closed_ms = s.Int(c++);
  i.comments = s.Int(c++);
  r.merged_by = s.Text(c++);
  return r;
}

Result<std::vector<ItemRow>> ReadItems(const Db& db, Stmt& stmt) {
  std::vector<ItemRow> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    KILN_ASSIGN_OR_RETURN(ItemRow item, ReadItem(db, stmt));
    out.push_back(std::move(item));
  }
}

}  // namespace

Result<std::vector<std::string>> StringList(const Db& db, const std::string& text,
                                            std::string_view what) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Corrupt(db, what, "not a JSON array");
  std::vector<std::string> out;
  for (const auto& v : j) {
    if (!v.is_string()) return Corrupt(db, what, "holds a value that is not a string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

LocalRepo ToLocalRepo(const RepoRow& row) {
  LocalRepo r;
  r.info.name = row.name;
  r.info.clone_url = row.path;
  r.info.default_branch = row.default_branch;
  r.info.labels = row.labels;
  r.maintainers = row.maintainers;
  r.created_ms = row.created_ms;
  return r;
}

Result<RepoRow> LoadRepo(Db& db, const std::string& repo) {
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt, db.Prepare("reading repository " + repo, "SELECT " + std::string(kRepoColumns) +
                                                              " FROM forge_repos WHERE name = ?1"));
  stmt.Bind(1, repo);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Error::NotFound("repository " + Quote(repo) + " not found");
  return ReadRepo(db, stmt);
}

Result<std::vector<RepoRow>> LoadRepos(Db& db) {
  KILN_ASSIGN_OR_RETURN(Stmt stmt,
                        db.Prepare("listing repositories", "SELECT " + std::string(kRepoColumns) +
                                                               " FROM forge_repos ORDER BY name"));
  std::vector<RepoRow> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    KILN_ASSIGN_OR_RETURN(RepoRow r, ReadRepo(db, stmt));
    out.push_back(std::move(r));
  }
}

bool IsMaintainer(const RepoRow& repo, const std::string& user) {
  return std::find(repo.maintainers.begin(), repo.maintainers.end(), user) !=
         repo.maintainers.end();
}

namespace {

// The item, or nullopt when the repository has no such number (an unknown
// repository is an error of its own: the better message).
Result<std::optional<ItemRow>> FindItem(Db& db, const std::string& repo, int64_t number) {
  KILN_ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("reading " + repo + " #" + std::to_string(number),
                                              "SELECT " + ItemColumns(db) +
                                                  " FROM forge_items WHERE repo = ?1 AND "
                                                  "number = ?2"));
  stmt.Bind(1, repo).Bind(2, number);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) {
    KILN_TRY(LoadRepo(db, repo));
    return std::optional<ItemRow>();
  }
  KILN_ASSIGN_OR_RETURN(ItemRow item, ReadItem(db, stmt));
  return std::optional<ItemRow>(std::move(item));
}

}  // namespace

Result<ItemRow> LoadItem(Db& db, const std::string& repo, int64_t number) {
  KILN_ASSIGN_OR_RETURN(std::optional<ItemRow> item, FindItem(db, repo, number));
  if (!item) {
    return Error::NotFound("issue #" + std::to_string(number) + " not found in " + Quote(repo));
  }
  return std::move(*item);
}

Result<ItemRow> LoadPull(Db& db, const std::string& repo, int64_t number) {
  KILN_ASSIGN_OR_RETURN(std::optional<ItemRow> item, FindItem(db, repo, number));
  const std::string n = std::to_string(number);
  if (!item) return Error::NotFound("pull request #" + n + " not found in " + Quote(repo));
  if (!item->issue.is_pull) {
    return Error::NotFound("pull request #" + n + " not found in " + Quote(repo) + " (#" + n +
                           " is an issue)");
  }
  return std::move(*item);
}

Result<std::vector<ItemRow>> LoadItems(Db& db, const std::string& repo, const IssueFilter& f) {
  if (f.state != "open" && f.state != "closed" && f.state != "merged" && f.state != "all") {
    return Error::Invalid("state " + Quote(f.state) + " is not one of open, closed, merged, all");
  }
  KILN_TRY(LoadRepo(db, repo));
  // "closed" covers merged pull requests too, as on GitHub.
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt,
      db.Prepare("listing the issues of " + repo,
                 "SELECT " + ItemColumns(db) +
                     " FROM forge_items WHERE repo = ?1 AND (?2 = 'all' OR state = ?2 OR "
                     "(?2 = 'closed' AND state = 'merged')) AND (?3 = -1 OR is_pull = ?3) AND "
                     "(?4 = '' OR EXISTS (SELECT 1 FROM " +
                     (db.dialect() == store::sql::Dialect::kSqlite
                          ? "json_each(forge_items.labels)"
                          : "jsonb_array_elements_text(forge_items.labels::jsonb) AS l (value)") +
                     " WHERE value = ?4)) ORDER BY number"));
  int64_t pulls = f.kind == IssueFilter::Kind::kAll ? -1 : f.kind == IssueFilter::Kind::kPulls;
  stmt.Bind(1, repo).Bind(2, f.state).Bind(3, pulls).Bind(4, f.label);
  return ReadItems(db, stmt);
}

Result<std::optional<ItemRow>> OpenPullWithHead(Db& db, const std::string& repo,
                                                const std::string& branch) {
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt, db.Prepare("finding the pull request of " + branch,
                            "SELECT " + ItemColumns(db) +
                                " FROM forge_items WHERE repo = ?1 AND is_pull = 1 AND "
                                "head_branch = ?2 AND state = 'open' ORDER BY number LIMIT 1"));
  stmt.Bind(1, repo).Bind(2, branch);
  KILN_ASSIGN_OR_RETURN(std::vector<ItemRow> items, ReadItems(db, stmt));
  if (items.empty()) return std::optional<ItemRow>();
  return std::optional<ItemRow>(std::move(items.front()));
}

Result<int64_t> TakeNumber(Db& db, const std::string& repo) {
  KILN_ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("numbering in " + repo,
                                              "UPDATE forge_repos SET next_number = next_number "
                                              "+ 1 WHERE name = ?1 RETURNING next_number - 1"));
  stmt.Bind(1, repo);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Error::NotFound("repository " + Quote(repo) + " not found");
  int64_t n = stmt.Int(0);
  KILN_TRY(stmt.Step());
  return n;
}

Status SetLabels(Db& db, const std::string& repo, int64_t number,
                 const std::vector<std::string>& labels, int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("labelling " + repo + " #" + std::to_string(number),
                                              "UPDATE forge_items SET labels = ?3, updated_ms = "
                                              "?4 WHERE repo = ?1 AND number = ?2"));
  stmt.Bind(1, repo).Bind(2, number).Bind(3, db::Dump(labels)).Bind(4, now_ms);
  return stmt.Run();
}

Status SetState(Db& db, const std::string& repo, int64_t number, const std::string& state,
                int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt,
      db.Prepare(
          "setting the state of " + repo + " #" + std::to_string(number),
          "UPDATE forge_items SET state = ?3, updated_ms = ?4, closed_ms = CASE "
          "WHEN ?3 = 'open' THEN 0 ELSE CAST(?4 AS BIGINT) END WHERE repo = ?1 AND number = ?2"));
  stmt.Bind(1, repo).Bind(2, number).Bind(3, state).Bind(4, now_ms);
  return stmt.Run();
}

Status Touch(Db& db, const std::string& repo, int64_t number, int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(Stmt stmt,
                        db.Prepare("updating " + repo + " #" + std::to_string(number),
                                   "UPDATE forge_items SET updated_ms = ?3 WHERE repo = ?1 AND "
                                   "number = ?2"));
  stmt.Bind(1, repo).Bind(2, number).Bind(3, now_ms);
  return stmt.Run();
}

Result<PullRequest> ToPull(const ItemRow& row, const std::string& path) {
  PullRequest p;
  p.issue = row.issue;
  p.head_branch = row.head_branch;
  p.base_branch = row.base_branch;
  p.merged_sha = row.merged_sha;
  p.merged_by = row.merged_by;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> head,
                        git::bare::BranchSha(path, row.head_branch));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> base,
                        git::bare::BranchSha(path, row.base_branch));
  p.head_sha = head.value_or("");
  p.base_sha = base.value_or("");
  return p;
}

Result<std::vector<Comment>> LoadComments(Db& db, const std::string& repo, int64_t number) {
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt, db.Prepare("reading the comments of " + repo + " #" + std::to_string(number),
                            "SELECT id, author, body, created_ms, updated_ms FROM forge_comments "
                            "WHERE repo = ?1 AND number = ?2 ORDER BY id"));
  stmt.Bind(1, repo).Bind(2, number);
  std::vector<Comment> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    out.push_back(
        Comment{stmt.Int(0), stmt.Text(1), stmt.Text(2), stmt.Int(3), stmt.Int(4), number});
  }
}

Result<std::vector<Review>> LoadReviews(Db& db, const std::string& repo, int64_t number) {
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt,
      db.Prepare("reading the reviews of " + repo + " #" + std::to_string(number),
                 "SELECT id, author, verdict, body, commit_sha, comments, created_ms FROM "
                 "forge_reviews WHERE repo = ?1 AND number = ?2 ORDER BY id"));
  stmt.Bind(1, repo).Bind(2, number);
  std::vector<Review> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    Review r;
    r.id = stmt.Int(0);
    r.author = stmt.Text(1);
    r.verdict = stmt.Text(2);
    r.body = stmt.Text(3);
    r.commit_sha = stmt.Text(4);
    r.created_ms = stmt.Int(6);
    const std::string what = "review " + std::to_string(r.id) + " comments";
    nlohmann::json cs = nlohmann::json::parse(stmt.Text(5), nullptr, false);
    if (!cs.is_array()) return Corrupt(db, what, "not a JSON array");
    for (const auto& c : cs) {
      // Comments stored before ranges existed have no start_line: single lines.
      auto rc = wire::ReviewCommentFrom(c);
      if (!rc.ok()) return Corrupt(db, what, rc.error().message());
      r.comments.push_back(std::move(*rc));
    }
    out.push_back(std::move(r));
  }
}

Status Emit(Db& db, const std::string& actor, const std::string& kind, const std::string& repo,
            int64_t number, nlohmann::json payload, int64_t now_ms) {
  Event e;
  KILN_ASSIGN_OR_RETURN(e.delivery, events::NewDelivery());
  e.source = "local";
  e.kind = kind;
  e.repo = repo;
  e.number = number;
  e.actor = actor;
  e.payload = std::move(payload);
  KILN_ASSIGN_OR_RETURN(int64_t seq, events::Insert(db, e, now_ms));
  if (seq == 0) return Error::Internal("event delivery " + Quote(e.delivery) + " repeated");
  return Ok();
}

std::string Describe(const Issue& issue) {
  return (issue.is_pull ? "pull request #" : "issue #") + std::to_string(issue.number);
}

}  // namespace kiln::forge::rows
