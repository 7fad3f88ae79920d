// The local forge's repositories, issues, comments and labels. Pull
// requests, reviews, statuses, pushes and merges are in local_pulls.cc.
#include "controller/forge/local.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/clock.h"
#include "base/strings.h"
#include "controller/forge/db.h"
#include "controller/forge/events.h"
#include "controller/forge/rows.h"
#include "controller/forge/validate.h"
#include "controller/git/bare.h"

namespace kiln::forge {

namespace bare = git::bare;

namespace {

using store::sql::Stmt;
using store::sql::Txn;

// Removes a half-made repository directory (ours: never followed links).
void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

Result<std::string> Absolute(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  if (ec) return Error::Sys("resolving " + Quote(path), ec.value());
  return abs.lexically_normal().string();
}

// Imports from_dir into a new bare repository at tmp; returns the default
// branch it ended up with.
Result<std::string> Import(const std::string& tmp, const std::string& from_dir,
                           const std::string& default_branch, const std::string& actor) {
  if (bare::IsRepository(from_dir)) {
    KILN_TRY(bare::Init(tmp, default_branch.empty() ? "main" : default_branch));
    KILN_ASSIGN_OR_RETURN(bare::Imported imported, bare::ImportRepository(tmp, from_dir));
    if (imported.branches.empty()) {
      return Error::Invalid("the git repository " + Quote(from_dir) + " has no branches to import");
    }
    auto has = [&](const std::string& b) {
      return std::find(imported.branches.begin(), imported.branches.end(), b) !=
             imported.branches.end();
    };
    std::string branch = default_branch;
    if (branch.empty()) {
      branch = has(imported.head_branch) ? imported.head_branch
               : has("main")             ? "main"
                                         : imported.branches.front();
    } else if (!has(branch)) {
      return Error::Invalid("default branch " + Quote(branch) + " is not a branch of " +
                            Quote(from_dir) + " (it has " + Join(imported.branches, ", ") + ")");
    }
    KILN_TRY(bare::SetHead(tmp, branch));
    return branch;
  }
  const std::string branch = default_branch.empty() ? "main" : default_branch;
  KILN_TRY(bare::Init(tmp, branch));
  bare::Identity who{actor, actor + "@localhost"};
  KILN_TRY(bare::ImportFiles(tmp, from_dir, branch, who, "Import " + from_dir));
  return branch;
}

}  // namespace

Result<Txn> Local::Begin(const std::string& doing) {
  KILN_ASSIGN_OR_RETURN(Txn txn, Txn::Begin(db_, doing));
  if (guard_) KILN_TRY(guard_(db_, doing));
  return txn;
}

Result<std::unique_ptr<Local>> Local::Open(const std::string& store_path,
                                           const std::string& repos_dir, std::string actor,
                                           Access access) {
  if (Status st = validate::UserName(actor); !st.ok()) return st.error().Wrap("acting user");
  if (repos_dir.empty()) return Error::Invalid("the forge's repositories directory is empty");
  KILN_ASSIGN_OR_RETURN(std::string dir, Absolute(repos_dir));
  KILN_ASSIGN_OR_RETURN(store::sql::Db db, db::Open(store_path));
  return std::unique_ptr<Local>(new Local(std::move(db), std::move(dir), std::move(actor), access));
}

Status Local::MayMaintain(const rows::RepoRow& repo, std::string_view doing) const {
  if (access_ == Access::kApp || rows::IsMaintainer(repo, actor_)) return Ok();
  return Error(Error::Code::kPermission, std::string(doing) + ": " + Quote(actor_) +
                                             " is not a maintainer of " + Quote(repo.name));
}

Status Local::MayChange(const rows::RepoRow& repo, const Issue& item,
                        std::string_view doing) const {
  if (item.author == actor_ || access_ == Access::kApp || rows::IsMaintainer(repo, actor_)) {
    return Ok();
  }
  return Error(Error::Code::kPermission, std::string(doing) + " " + rows::Describe(item) + " in " +
                                             Quote(repo.name) + ": it is " + Quote(item.author) +
                                             "'s, and " + Quote(actor_) +
                                             " is neither its author nor a maintainer");
}

// --- repositories ------------------------------------------------------------

Result<LocalRepo> Local::CreateRepo(const std::string& name, const std::string& from_dir,
                                    const std::vector<std::string>& maintainers,
                                    const std::string& default_branch) {
  KILN_TRY(validate::RepoName(name));
  std::vector<std::string> owners =
      maintainers.empty() ? std::vector<std::string>{actor_} : maintainers;
  for (const auto& m : owners) {
    if (Status st = validate::UserName(m); !st.ok()) return st.error().Wrap("maintainer");
  }
  std::sort(owners.begin(), owners.end());
  owners.erase(std::unique(owners.begin(), owners.end()), owners.end());
  if (!default_branch.empty() && !bare::ValidBranch(default_branch)) {
    return Error::Invalid("default branch " + Quote(default_branch) +
                          " is not a valid branch name");
  }
  struct stat st;
  if (::stat(from_dir.c_str(), &st) != 0) {
    return Error::Invalid("cannot import " + Quote(from_dir) + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return Error::Invalid(Quote(from_dir) + " is not a directory");
  KILN_ASSIGN_OR_RETURN(std::string source, Absolute(from_dir));

  const size_t slash = name.find('/');
  const std::string owner_dir = repos_dir_ + "/" + name.substr(0, slash);
  const std::string path = owner_dir + "/" + name.substr(slash + 1) + ".git";
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto existing = rows::LoadRepo(db_, name);
    if (existing.ok()) return Error::Invalid("repository " + Quote(name) + " already exists");
    if (existing.error().code() != Error::Code::kNotFound) return existing.error();
  }
  if (::access(path.c_str(), F_OK) == 0) {
    return Error::Invalid("repository " + Quote(name) + ": " + Quote(path) +
                          " already exists on disk, but not in the forge's store; move it away");
  }
  // Built beside its final place and renamed in, so that a failed import
  // leaves nothing a later attempt would trip over.
  KILN_ASSIGN_OR_RETURN(std::string suffix, events::NewDelivery());
  const std::string tmp =
      owner_dir + "/." + name.substr(slash + 1) + ".git.tmp-" + suffix.substr(6);
  std::error_code ec;
  std::filesystem::create_directories(owner_dir, ec);
  if (ec) return Error::Sys("creating " + Quote(owner_dir), ec.value());
  auto branch = Import(tmp, source, default_branch, actor_);
  if (!branch.ok()) {
    RemoveTree(tmp);
    return branch.error().Wrap("creating repository " + Quote(name));
  }

  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowMs();
  auto commit = [&]() -> Status {
    KILN_ASSIGN_OR_RETURN(Txn txn, Begin("creating repository " + name));
    auto existing = rows::LoadRepo(db_, name);
    if (existing.ok()) return Error::Invalid("repository " + Quote(name) + " already exists");
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      return Error::Sys("rename(" + Quote(tmp) + ", " + Quote(path) + ")", errno);
    }
    KILN_ASSIGN_OR_RETURN(
        Stmt stmt,
        db_.Prepare("creating repository " + name,
                    "INSERT INTO forge_repos (name, path, default_branch, maintainers, labels, "
                    "next_number, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)"));
    stmt.Bind(1, name)
        .Bind(2, path)
        .Bind(3, *branch)
        .Bind(4, db::Dump(owners))
        .Bind(5, db::Dump(validate::DefaultLabels()))
        .Bind(6, now);
    Status done = stmt.Run();
    if (done.ok()) {
      done = rows::Emit(db_, actor_, "repo.created", name, 0,
                        {{"default_branch", *branch}, {"clone_url", path}}, now);
    }
    if (done.ok()) done = txn.Commit();
    if (!done.ok()) ::rename(path.c_str(), tmp.c_str());  // back out of the way
    return done;
  };
  if (Status st = commit(); !st.ok()) {
    RemoveTree(tmp);
    return st.error();
  }
  KILN_ASSIGN_OR_RETURN(rows::RepoRow row, rows::LoadRepo(db_, name));
  return rows::ToLocalRepo(row);
}

namespace {

// What GetRepo and ListRepos add to the row: open items, the last push
// through the forge, the size on disk.
Result<LocalRepo> Described(store::sql::Db& db, const rows::RepoRow& row) {
  LocalRepo r = rows::ToLocalRepo(row);
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt,
      db.Prepare("describing repository " + row.name,
                 "SELECT (SELECT COUNT(*) FROM forge_items WHERE repo = ?1 AND state = 'open'), "
                 "(SELECT COALESCE(MAX(received_ms), 0) FROM events WHERE source = 'local' AND "
                 "repo = ?1 AND kind = 'push')"));
  stmt.Bind(1, row.name);
  KILN_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (found) {
    r.open_issues = stmt.Int(0);
    r.pushed_ms = stmt.Int(1);
  }
  uint64_t bytes = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(row.path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) bytes += it->file_size(ec);
  }
  r.size_kb = static_cast<int64_t>(bytes / 1024);
  return r;
}

}  // namespace

Result<LocalRepo> Local::GetRepo(const std::string& repo) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow row, rows::LoadRepo(db_, repo));
  return Described(db_, row);
}

Result<std::vector<LocalRepo>> Local::ListRepos() {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(std::vector<rows::RepoRow> all, rows::LoadRepos(db_));
  std::vector<LocalRepo> out;
  for (const auto& r : all) {
    KILN_ASSIGN_OR_RETURN(LocalRepo described, Described(db_, r));
    out.push_back(std::move(described));
  }
  return out;
}

Result<RepoInfo> Local::Repo(const std::string& repo) {
  KILN_ASSIGN_OR_RETURN(LocalRepo r, GetRepo(repo));
  return r.info;
}

Result<bool> Local::IsTrusted(const std::string& repo, const std::string& user) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::RepoRow row, rows::LoadRepo(db_, repo));
  return rows::IsMaintainer(row, user);
}

// --- issues ------------------------------------------------------------------

Result<Issue> Local::CreateIssue(const std::string& repo, const std::string& title,
                                 const std::string& body, const std::vector<std::string>& labels) {
  KILN_TRY(validate::Title(title));
  KILN_TRY(validate::Body(body, "body"));
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowMs();
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("opening an issue in " + repo));
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  if (!labels.empty()) KILN_TRY(MayMaintain(r, "labelling a new issue in " + Quote(repo)));
  std::vector<std::string> sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  for (const auto& l : sorted) KILN_TRY(validate::Label(l, repo, r.labels));
  KILN_ASSIGN_OR_RETURN(int64_t number, rows::TakeNumber(db_, repo));
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt, db_.Prepare("opening an issue in " + repo,
                             "INSERT INTO forge_items (repo, number, is_pull, title, body, author, "
                             "state, labels, created_ms, updated_ms) VALUES (?1, ?2, 0, ?3, ?4, "
                             "?5, 'open', ?6, ?7, ?7)"));
  stmt.Bind(1, repo)
      .Bind(2, number)
      .Bind(3, title)
      .Bind(4, body)
      .Bind(5, actor_)
      .Bind(6, db::Dump(sorted))
      .Bind(7, now);
  KILN_TRY(stmt.Run());
  KILN_TRY(rows::Emit(db_, actor_, "issue.opened", repo, number, nlohmann::json::object(), now));
  for (const auto& l : sorted) {
    KILN_TRY(rows::Emit(db_, actor_, "issue.labeled", repo, number, {{"label", l}}, now));
  }
  KILN_TRY(txn.Commit());
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadItem(db_, repo, number));
  return item.issue;
}

Result<Issue> Local::GetIssue(const std::string& repo, int64_t number) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadItem(db_, repo, number));
  return item.issue;
}

Result<std::vector<Issue>> Local::ListIssues(const std::string& repo, const IssueFilter& filter) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(std::vector<rows::ItemRow> items, rows::LoadItems(db_, repo, filter));
  std::vector<Issue> out;
  for (auto& i : items) out.push_back(std::move(i.issue));
  return out;
}

Status Local::EditIssue(const std::string& repo, int64_t number,
                        const std::optional<std::string>& title,
                        const std::optional<std::string>& body) {
  return Update(repo, number, title, body, std::nullopt);
}

Status Local::EditPull(const std::string& repo, int64_t number, const std::string& title,
                       const std::string& body) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    KILN_TRY(rows::LoadPull(db_, repo, number));
  }
  return EditIssue(repo, number, title, body);
}

Status Local::Close(const std::string& repo, int64_t number) {
  return Update(repo, number, std::nullopt, std::nullopt, "closed");
}

Status Local::Reopen(const std::string& repo, int64_t number) {
  return Update(repo, number, std::nullopt, std::nullopt, "open");
}

Status Local::Update(const std::string& repo, int64_t number,
                     const std::optional<std::string>& title,
                     const std::optional<std::string>& body,
                     const std::optional<std::string>& state,
                     const std::optional<std::vector<std::string>>& labels) {
  if (title) KILN_TRY(validate::Title(*title));
  if (body) KILN_TRY(validate::Body(*body, "body"));
  if (state && *state != "open" && *state != "closed") {
    return Error::Invalid("state " + Quote(*state) + " is not one of open, closed");
  }
  const std::string what = repo + " #" + std::to_string(number);
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowMs();
  // One transaction: every check before any write, so a refused part leaves
  // nothing of the others.
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("updating " + what));
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadItem(db_, repo, number));
  const std::string kind = rows::KindPrefix(item.issue);
  if (title || body || state) {
    KILN_TRY(MayChange(r, item.issue,
                       title || body      ? "editing"
                       : *state == "open" ? "reopening"
                                          : "closing"));
  }
  if (state && item.issue.state == "merged") {
    return Error::Invalid(rows::Describe(item.issue) + " in " + Quote(repo) + " is merged; it " +
                          "cannot be " + (*state == "open" ? "reopened" : "closed"));
  }
  if (state && *state == "open" && item.issue.state != "open" && item.issue.is_pull) {
    KILN_ASSIGN_OR_RETURN(std::optional<rows::ItemRow> other,
                          rows::OpenPullWithHead(db_, repo, item.head_branch));
    if (other) {
      return Error::Invalid("pull request #" + std::to_string(other->issue.number) + " in " +
                            Quote(repo) + " is already open for head branch " +
                            Quote(item.head_branch));
    }
  }
  // The labels given become the set: added and removed are what changes.
  std::vector<std::string> next, added, removed;
  if (labels) {
    KILN_TRY(MayMaintain(r, "labelling " + rows::Describe(item.issue)));
    next = *labels;
    std::sort(next.begin(), next.end());
    next.erase(std::unique(next.begin(), next.end()), next.end());
    for (const auto& l : next) KILN_TRY(validate::Label(l, repo, r.labels));
    auto has = [](const std::vector<std::string>& v, const std::string& l) {
      return std::find(v.begin(), v.end(), l) != v.end();
    };
    for (const auto& l : next) {
      if (!has(item.issue.labels, l)) added.push_back(l);
    }
    for (const auto& l : item.issue.labels) {
      if (!has(next, l)) removed.push_back(l);
    }
  }
  nlohmann::json changes = nlohmann::json::array();
  if (title && *title != item.issue.title) changes.push_back("title");
  if (body && *body != item.issue.body) changes.push_back("body");
  if (!changes.empty()) {
    KILN_ASSIGN_OR_RETURN(Stmt stmt,
                          db_.Prepare("editing " + what,
                                      "UPDATE forge_items SET title = ?3, body = ?4, "
                                      "updated_ms = ?5 WHERE repo = ?1 AND number = ?2"));
    stmt.Bind(1, repo)
        .Bind(2, number)
        .Bind(3, title ? *title : item.issue.title)
        .Bind(4, body ? *body : item.issue.body)
        .Bind(5, now);
    KILN_TRY(stmt.Run());
    KILN_TRY(rows::Emit(db_, actor_, kind + ".edited", repo, number, {{"changes", changes}}, now));
  }
  if (!added.empty() || !removed.empty()) {
    KILN_TRY(rows::SetLabels(db_, repo, number, next, now));
    for (const auto& l : added) {
      KILN_TRY(rows::Emit(db_, actor_, kind + ".labeled", repo, number, {{"label", l}}, now));
    }
    for (const auto& l : removed) {
      KILN_TRY(rows::Emit(db_, actor_, kind + ".unlabeled", repo, number, {{"label", l}}, now));
    }
  }
  if (state && *state != item.issue.state) {
    KILN_TRY(rows::SetState(db_, repo, number, *state, now));
    nlohmann::json payload = nlohmann::json::object();
    if (*state == "closed" && item.issue.is_pull) payload["merged"] = false;
    KILN_TRY(rows::Emit(db_, actor_, kind + (*state == "open" ? ".reopened" : ".closed"), repo,
                        number, payload, now));
  }
  return txn.Commit();
}

// --- comments ----------------------------------------------------------------

Result<std::vector<Comment>> Local::Comments(const std::string& repo, int64_t number) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_TRY(rows::LoadItem(db_, repo, number));
  return rows::LoadComments(db_, repo, number);
}

Result<Comment> Local::AddComment(const std::string& repo, int64_t number,
                                  const std::string& body) {
  if (Trim(body).empty()) return Error::Invalid("the comment is empty");
  KILN_TRY(validate::Body(body, "comment"));
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowMs();
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("commenting on " + repo + " #" + std::to_string(number)));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadItem(db_, repo, number));
  KILN_ASSIGN_OR_RETURN(
      Stmt stmt, db_.Prepare("commenting on " + repo + " #" + std::to_string(number),
                             "INSERT INTO forge_comments (repo, number, author, body, created_ms, "
                             "updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id"));
  stmt.Bind(1, repo).Bind(2, number).Bind(3, actor_).Bind(4, body).Bind(5, now);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Error::Internal("commenting on " + repo + ": no id returned");
  Comment c{stmt.Int(0), actor_, body, now, now, number};
  KILN_TRY(stmt.Step());
  KILN_TRY(rows::Touch(db_, repo, number, now));
  KILN_TRY(rows::Emit(db_, actor_, "comment.created", repo, number,
                      {{"comment_id", c.id}, {"body", body}}, now));
  KILN_TRY(txn.Commit());
  return c;
}

Result<Comment> Local::GetComment(const std::string& repo, int64_t comment_id) {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_TRY(rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(Stmt stmt, db_.Prepare("reading comment " + std::to_string(comment_id),
                                               "SELECT id, author, body, created_ms, updated_ms, "
                                               "number FROM forge_comments WHERE repo = ?1 AND "
                                               "id = ?2"));
  stmt.Bind(1, repo).Bind(2, comment_id);
  KILN_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) {
    return Error::NotFound("comment " + std::to_string(comment_id) + " not found in " +
                           Quote(repo));
  }
  return Comment{stmt.Int(0), stmt.Text(1), stmt.Text(2), stmt.Int(3), stmt.Int(4), stmt.Int(5)};
}

Status Local::EditComment(const std::string& repo, int64_t comment_id, const std::string& body) {
  if (Trim(body).empty()) return Error::Invalid("the comment is empty");
  KILN_TRY(validate::Body(body, "comment"));
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowMs();
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("editing comment " + std::to_string(comment_id)));
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_ASSIGN_OR_RETURN(Stmt find, db_.Prepare("reading comment " + std::to_string(comment_id),
                                               "SELECT number, author, body FROM forge_comments "
                                               "WHERE repo = ?1 AND id = ?2"));
  find.Bind(1, repo).Bind(2, comment_id);
  KILN_ASSIGN_OR_RETURN(bool found, find.Step());
  if (!found) {
    return Error::NotFound("comment " + std::to_string(comment_id) + " not found in " +
                           Quote(repo));
  }
  const int64_t number = find.Int(0);
  const std::string author = find.Text(1);
  if (author != actor_ && !rows::IsMaintainer(r, actor_)) {
    return Error(Error::Code::kPermission, "comment " + std::to_string(comment_id) + " in " +
                                               Quote(repo) + " is " + Quote(author) + "'s; " +
                                               Quote(actor_) +
                                               " is neither its author nor a maintainer");
  }
  if (find.Text(2) == body) return Ok();
  KILN_ASSIGN_OR_RETURN(Stmt stmt, db_.Prepare("editing comment " + std::to_string(comment_id),
                                               "UPDATE forge_comments SET body = ?2, updated_ms = "
                                               "?3 WHERE id = ?1"));
  stmt.Bind(1, comment_id).Bind(2, body).Bind(3, now);
  KILN_TRY(stmt.Run());
  KILN_TRY(rows::Touch(db_, repo, number, now));
  KILN_TRY(rows::Emit(db_, actor_, "comment.edited", repo, number,
                      {{"comment_id", comment_id}, {"body", body}}, now));
  return txn.Commit();
}

// --- labels ------------------------------------------------------------------

Status Local::AddLabels(const std::string& repo, int64_t number,
                        const std::vector<std::string>& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowMs();
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("labelling " + repo + " #" + std::to_string(number)));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadItem(db_, repo, number));
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_TRY(MayMaintain(r, "labelling " + rows::Describe(item.issue)));
  for (const auto& l : labels) KILN_TRY(validate::Label(l, repo, r.labels));
  std::vector<std::string> now_labels = item.issue.labels;
  std::vector<std::string> added;
  for (const auto& l : labels) {
    if (std::find(now_labels.begin(), now_labels.end(), l) != now_labels.end()) continue;
    now_labels.push_back(l);
    added.push_back(l);
  }
  if (added.empty()) return Ok();
  std::sort(now_labels.begin(), now_labels.end());
  KILN_TRY(rows::SetLabels(db_, repo, number, now_labels, now));
  for (const auto& l : added) {
    KILN_TRY(rows::Emit(db_, actor_, rows::KindPrefix(item.issue) + ".labeled", repo, number,
                        {{"label", l}}, now));
  }
  return txn.Commit();
}

Status Local::RemoveLabel(const std::string& repo, int64_t number, const std::string& label) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowMs();
  KILN_ASSIGN_OR_RETURN(Txn txn, Begin("unlabelling " + repo + " #" + std::to_string(number)));
  KILN_ASSIGN_OR_RETURN(rows::ItemRow item, rows::LoadItem(db_, repo, number));
  KILN_ASSIGN_OR_RETURN(rows::RepoRow r, rows::LoadRepo(db_, repo));
  KILN_TRY(MayMaintain(r, "unlabelling " + rows::Describe(item.issue)));
  KILN_TRY(validate::Label(label, repo, r.labels));
  std::vector<std::string> rest = item.issue.labels;
  auto it = std::find(rest.begin(), rest.end(), label);
  if (it == rest.end()) return Ok();
  rest.erase(it);
  KILN_TRY(rows::SetLabels(db_, repo, number, rest, now));
  KILN_TRY(rows::Emit(db_, actor_, rows::KindPrefix(item.issue) + ".unlabeled", repo, number,
                      {{"label", label}}, now));
  return txn.Commit();
}

}  // namespace kiln::forge
