#include "controller/store/schema.h"

#include <array>
#include <string>
#include <vector>

#include "base/strings.h"

namespace kiln::store::schema {
namespace {

// Version 1: the runs table. seq gives the enqueue order (AUTOINCREMENT: never
// reused); the request's commit is `revision` because COMMIT is an SQL keyword.
// JSON columns hold nlohmann::json dumps; status holds ToString(Status).
constexpr std::string_view kV1 = R"sql(
CREATE TABLE runs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  repo TEXT NOT NULL,
  revision TEXT NOT NULL,
  task TEXT NOT NULL,
  priority INTEGER NOT NULL,
  budgets TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  max_attempts INTEGER NOT NULL,
  status TEXT NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  not_before_ms INTEGER NOT NULL DEFAULT 0,
  owner TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  commit_sha TEXT NOT NULL DEFAULT '',
  image_digest TEXT NOT NULL DEFAULT '',
  sandbox_id TEXT NOT NULL DEFAULT '',
  log_path TEXT NOT NULL DEFAULT '',
  log_head TEXT NOT NULL DEFAULT '',
  outcome TEXT NOT NULL DEFAULT '',
  result TEXT NOT NULL DEFAULT 'null',
  error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_by_queue ON runs (status, priority DESC, seq);
CREATE INDEX runs_by_repo ON runs (repo, status);
)sql";

// Version 2: steering messages for running agents, taken once by the owner.
constexpr std::string_view kV2 = R"sql(
CREATE TABLE steering (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL REFERENCES runs (id),
  sender TEXT NOT NULL,
  message TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  taken INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX steering_by_run ON steering (run_id, taken, seq);
)sql";

constexpr std::array<std::string_view, 2> kMigrations = {kV1, kV2};

Error Prefixed(const sqlite::Db& db, Error::Code code, const std::string& message) {
  return Error(code, "store " + Quote(db.path()) + ": " + message);
}

// The tables of db other than SQLite's own (sqlite_sequence, ...).
Result<std::vector<std::string>> Tables(sqlite::Db& db) {
  KILN_ASSIGN_OR_RETURN(sqlite::Stmt stmt,
                        db.Prepare("reading the schema",
                                   "SELECT name FROM sqlite_master WHERE type = 'table' "
                                   "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"));
  std::vector<std::string> names;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    names.push_back(stmt.Text(0));
  }
  return names;
}

Status SetVersion(sqlite::Db& db, int64_t version) {
  KILN_ASSIGN_OR_RETURN(sqlite::Stmt stmt,
                        db.Prepare("recording the schema version",
                                   "UPDATE kiln_meta SET value = ?1 WHERE key = 'schema_version'"));
  return stmt.Bind(1, std::to_string(version)).Run();
}

}  // namespace

std::span<const std::string_view> Migrations() { return kMigrations; }

Result<std::optional<int64_t>> ReadVersion(sqlite::Db& db, int64_t known) {
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> tables, Tables(db));
  bool has_meta = false;
  for (const auto& t : tables) has_meta = has_meta || t == "kiln_meta";
  if (!has_meta) {
    if (tables.empty()) return std::optional<int64_t>();
    std::string list;
    for (const auto& t : tables) list += (list.empty() ? "" : ", ") + Quote(t);
    return Prefixed(
        db, Error::Code::kInvalidArgument,
        "not a kiln store: a SQLite database with tables " + list + " but no kiln_meta table");
  }
  KILN_ASSIGN_OR_RETURN(sqlite::Stmt stmt,
                        db.Prepare("reading the schema version",
                                   "SELECT value FROM kiln_meta WHERE key = 'schema_version'"));
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Prefixed(db, Error::Code::kCorruption, "kiln_meta has no schema_version");
  std::string text = stmt.Text(0);
  auto version = ParseUint(text, "schema_version");
  if (!version.ok() || *version > INT64_MAX) {
    return Prefixed(db, Error::Code::kCorruption,
                    "kiln_meta has schema_version " + Quote(text) + ", not a version number");
  }
  auto v = static_cast<int64_t>(*version);
  if (v > known) {
    return Prefixed(db, Error::Code::kUnsupported,
                    "database is version " + std::to_string(v) + ", this kiln knows up to " +
                        std::to_string(known));
  }
  return std::optional<int64_t>(v);
}

Status Migrate(sqlite::Db& db, std::span<const std::string_view> steps) {
  const auto target = static_cast<int64_t>(steps.size());
  // Most opens find the store up to date: check without the write lock.
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> seen, ReadVersion(db, target));
  if (seen == target) return Ok();
  for (;;) {
    KILN_ASSIGN_OR_RETURN(sqlite::Txn txn, sqlite::Txn::Begin(db, "migrating"));
    // Read again under the lock: another process may have moved it on.
    KILN_ASSIGN_OR_RETURN(std::optional<int64_t> version, ReadVersion(db, target));
    if (!version) {
      KILN_TRY(
          db.Exec("creating kiln_meta",
                  "CREATE TABLE kiln_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
                  "INSERT INTO kiln_meta (key, value) VALUES ('schema_version', '0');"));
    } else if (*version == target) {
      return Ok();  // the transaction changed nothing; rolling it back is fine
    } else {
      const int64_t next = *version + 1;
      KILN_TRY(db.Exec("migrating to version " + std::to_string(next),
                       std::string(steps[static_cast<size_t>(*version)])));
      KILN_TRY(SetVersion(db, next));
    }
    KILN_TRY(txn.Commit());
  }
}

}  // namespace kiln::store::schema
