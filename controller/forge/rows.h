// The local forge's rows (tables forge_repos, forge_items, forge_comments,
// forge_reviews, forge_statuses; docs/store.md) read into the forge.h types,
// and the writes local.cc and local_pulls.cc share. Internal to the forge:
// callers hold the Local's mutex and, for writes, a transaction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/forge/forge.h"
#include "controller/forge/local.h"
#include "controller/store/sql.h"

namespace kiln::forge::rows {

using store::sql::Db;

struct RepoRow {
  std::string name;
  std::string path;  // the bare repository
  std::string default_branch;
  std::vector<std::string> maintainers;
  std::vector<std::string> labels;
  int64_t next_number = 1;
  int64_t created_ms = 0;
};

struct ItemRow {
  Issue issue;
  std::string head_branch;
  std::string base_branch;
  std::string merged_sha;
  std::string merge_base_sha;   // at the merge: what the diff of a merged pull starts from
  std::string merged_head_sha;  // at the merge: the head that was merged
  std::string merged_by;        // who merged it ("" before, or when no event says)
};

LocalRepo ToLocalRepo(const RepoRow& row);

// kNotFound "repository 'R' not found" when there is none.
Result<RepoRow> LoadRepo(Db& db, const std::string& repo);
Result<std::vector<RepoRow>> LoadRepos(Db& db);
bool IsMaintainer(const RepoRow& repo, const std::string& user);

// kNotFound "issue #N not found in 'R'" (the repository must exist: its
// absence is reported first).
Result<ItemRow> LoadItem(Db& db, const std::string& repo, int64_t number);
// LoadItem, and kNotFound unless it is a pull request.
Result<ItemRow> LoadPull(Db& db, const std::string& repo, int64_t number);
Result<std::vector<ItemRow>> LoadItems(Db& db, const std::string& repo, const IssueFilter& filter);
// The open pull request of repo whose head is branch, if any.
Result<std::optional<ItemRow>> OpenPullWithHead(Db& db, const std::string& repo,
                                                const std::string& branch);

// Takes the next number of repo (and advances it).
Result<int64_t> TakeNumber(Db& db, const std::string& repo);
Status SetLabels(Db& db, const std::string& repo, int64_t number,
                 const std::vector<std::string>& labels, int64_t now_ms);
Status SetState(Db& db, const std::string& repo, int64_t number, const std::string& state,
                int64_t now_ms);
// Sets updated_ms.
Status Touch(Db& db, const std::string& repo, int64_t number, int64_t now_ms);

// The pull request of an item, with its branches' commits now (read from
// the bare repository at path; "" for a branch that is gone).
Result<PullRequest> ToPull(const ItemRow& row, const std::string& path);

Result<std::vector<Comment>> LoadComments(Db& db, const std::string& repo, int64_t number);
Result<std::vector<Review>> LoadReviews(Db& db, const std::string& repo, int64_t number);

// Appends an event of the local forge (a new delivery id, source "local").
Status Emit(Db& db, const std::string& actor, const std::string& kind, const std::string& repo,
            int64_t number, nlohmann::json payload, int64_t now_ms);

// "issue" or "pull" for event kinds ("issue.closed", "pull.closed").
inline std::string KindPrefix(const Issue& issue) { return issue.is_pull ? "pull" : "issue"; }
// "issue #7" or "pull request #7", for messages.
std::string Describe(const Issue& issue);

// A JSON array of strings from a column; corruption names the column.
Result<std::vector<std::string>> StringList(const Db& db, const std::string& text,
                                            std::string_view what);

}  // namespace kiln::forge::rows
