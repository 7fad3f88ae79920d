#include "controller/store/schema.h"

#include <array>
#include <chrono>
#include <string>
#include <thread>
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

// Version 3: the pipeline. runs.context says what a run is for (forge,
// repository, issue, event; JSON). pipeline_runs follows each pipeline run
// from its event to the forge writes made from its result: the progress
// comment it updates in place, the state that comment shows, and when (and
// how) its result was applied.
constexpr std::string_view kV3 = R"sql(
ALTER TABLE runs ADD COLUMN context TEXT NOT NULL DEFAULT 'null';
CREATE TABLE pipeline_runs (
  run_id TEXT PRIMARY KEY NOT NULL REFERENCES runs (id),
  repo TEXT NOT NULL,
  number INTEGER NOT NULL,
  role TEXT NOT NULL,
  event_seq INTEGER NOT NULL,
  comment_id INTEGER NOT NULL DEFAULT 0,
  shown_state TEXT NOT NULL DEFAULT '',
  applied_ms INTEGER NOT NULL DEFAULT 0,
  outcome TEXT NOT NULL DEFAULT ''
);
CREATE INDEX pipeline_runs_by_issue ON pipeline_runs (repo, number, role);
CREATE INDEX pipeline_runs_to_apply ON pipeline_runs (applied_ms);
)sql";

// Version 4: the local forge (controller/forge/, docs/forge.md): its
// repositories, issues and pull requests (one number sequence per
// repository), comments, reviews, commit statuses and API users, and the
// events inbox the pipeline reads, which the GitHub adapter fills too.
// Timestamps are ms since the epoch; JSON columns hold compact dumps.
constexpr std::string_view kV4 = R"sql(
CREATE TABLE forge_repos (
  name TEXT PRIMARY KEY NOT NULL,
  path TEXT NOT NULL,
  default_branch TEXT NOT NULL,
  maintainers TEXT NOT NULL DEFAULT '[]',
  labels TEXT NOT NULL DEFAULT '[]',
  next_number INTEGER NOT NULL DEFAULT 1,
  created_ms INTEGER NOT NULL
);
CREATE TABLE forge_items (
  repo TEXT NOT NULL REFERENCES forge_repos (name),
  number INTEGER NOT NULL,
  is_pull INTEGER NOT NULL DEFAULT 0,
  title TEXT NOT NULL,
  body TEXT NOT NULL DEFAULT '',
  author TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'open',
  labels TEXT NOT NULL DEFAULT '[]',
  head_branch TEXT NOT NULL DEFAULT '',
  base_branch TEXT NOT NULL DEFAULT '',
  merged_sha TEXT NOT NULL DEFAULT '',
  merge_base_sha TEXT NOT NULL DEFAULT '',
  merged_head_sha TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  closed_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (repo, number)
);
CREATE INDEX forge_items_by_head ON forge_items (repo, head_branch, state);
CREATE TABLE forge_comments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  repo TEXT NOT NULL,
  number INTEGER NOT NULL,
  author TEXT NOT NULL,
  body TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  FOREIGN KEY (repo, number) REFERENCES forge_items (repo, number)
);
CREATE INDEX forge_comments_by_item ON forge_comments (repo, number, id);
CREATE TABLE forge_reviews (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  repo TEXT NOT NULL,
  number INTEGER NOT NULL,
  author TEXT NOT NULL,
  verdict TEXT NOT NULL,
  body TEXT NOT NULL DEFAULT '',
  commit_sha TEXT NOT NULL,
  comments TEXT NOT NULL DEFAULT '[]',
  created_ms INTEGER NOT NULL,
  FOREIGN KEY (repo, number) REFERENCES forge_items (repo, number)
);
CREATE INDEX forge_reviews_by_item ON forge_reviews (repo, number, id);
CREATE TABLE forge_statuses (
  repo TEXT NOT NULL,
  sha TEXT NOT NULL,
  context TEXT NOT NULL,
  state TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  target_url TEXT NOT NULL DEFAULT '',
  author TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (repo, sha, context)
);
CREATE TABLE forge_users (
  name TEXT PRIMARY KEY NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL
);
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  kind TEXT NOT NULL,
  repo TEXT NOT NULL,
  number INTEGER NOT NULL DEFAULT 0,
  actor TEXT NOT NULL DEFAULT '',
  payload TEXT NOT NULL DEFAULT '{}',
  received_ms INTEGER NOT NULL,
  processed_ms INTEGER NOT NULL DEFAULT 0,
  outcome TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_pending ON events (processed_ms, seq);
)sql";

// Version 5: an event's fingerprint, what makes a delivery the same event as
// another whatever its delivery id (docs/github.md): a GitHub delivery resent
// under a new X-GitHub-Delivery is stored once. '' for none (the local
// forge's events, unique by their delivery).
constexpr std::string_view kV5 = R"sql(
ALTER TABLE events ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX events_fingerprint ON events (source, fingerprint) WHERE fingerprint != '';
)sql";

constexpr std::array<std::string_view, 5> kMigrations = {kV1, kV2, kV3, kV4, kV5};

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

// One attempt at switching db to WAL: the journal mode it has afterwards.
Result<std::string> SetJournalModeWal(sqlite::Db& db) {
  KILN_ASSIGN_OR_RETURN(sqlite::Stmt stmt,
                        db.Prepare("enabling WAL mode", "PRAGMA journal_mode = WAL"));
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Text(0) : std::string();
}

// Switches db to write-ahead logging: readers and the writer no longer block
// each other, and a commit costs one append. The mode is stored in the file,
// so this only changes something on the first open. The switch needs an
// exclusive lock, and SQLite reports "database is locked" at once, without its
// busy handler, when another connection holds a shared one (two processes
// opening a new file together): retried here for up to the busy timeout.
kiln::Status UseWal(sqlite::Db& db, int busy_timeout_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
  for (;;) {
    Result<std::string> mode = SetJournalModeWal(db);
    if (mode.ok() && *mode == "wal") return Ok();
    if (mode.ok()) {
      return Error(Error::Code::kUnsupported, "store " + Quote(db.path()) +
                                                  ": cannot use WAL mode (journal mode stays " +
                                                  Quote(*mode) + ")");
    }
    if (mode.error().code() != Error::Code::kTimeout ||
        std::chrono::steady_clock::now() >= deadline) {
      return mode.error();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
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

Result<sqlite::Db> Open(const std::string& path, int busy_timeout_ms) {
  KILN_ASSIGN_OR_RETURN(sqlite::Db db, sqlite::Db::Open(path, busy_timeout_ms));
  const auto steps = Migrations();
  // Refuse a foreign file before anything below writes to it.
  KILN_TRY(ReadVersion(db, static_cast<int64_t>(steps.size())));
  KILN_TRY(UseWal(db, busy_timeout_ms));
  // In WAL mode NORMAL is durable against crashes of kiln; a power loss can
  // lose the last commits but never corrupts the file. Per connection.
  KILN_TRY(db.Exec("setting synchronous", "PRAGMA synchronous = NORMAL"));
  KILN_TRY(Migrate(db, steps));
  return db;
}

}  // namespace kiln::store::schema
