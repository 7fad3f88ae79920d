#include "controller/store/schema.h"

#include <array>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "controller/store/postgres.h"

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

// Version 3: runs.context says what a run is for (forge, repository, issue,
// event; JSON). (This version also created the pipeline's table, which the
// pipeline now creates on its own track: controller/pipeline/state.cc.)
constexpr std::string_view kV3 = R"sql(
ALTER TABLE runs ADD COLUMN context TEXT NOT NULL DEFAULT 'null';
)sql";

// Versions 4 and 5 created the forge's tables and the events inbox, which
// the forge now keeps on its own track (controller/forge/db.cc): nothing of
// the store's changed.
constexpr std::string_view kV4 = "-- the forge's tables: controller/forge/db.cc";
constexpr std::string_view kV5 = "-- the events' fingerprint: controller/forge/db.cc";

// Version 6: each owner of tables keeps its own track of versions
// ('schema_version:<owner>' in kiln_meta). A store that versions 3 to 5
// gave the pipeline's and the forge's tables hands them over at the
// versions they had reached; a new store has none of them yet, and their
// owners create them when they first open it. kiln before version 6 refuses
// the file (it knows up to 5) rather than creating tables twice.
constexpr std::string_view kV6 = R"sql(
INSERT OR IGNORE INTO kiln_meta (key, value)
  SELECT 'schema_version:pipeline', '1'
  WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pipeline_runs');
INSERT OR IGNORE INTO kiln_meta (key, value)
  SELECT 'schema_version:forge',
         CASE WHEN EXISTS (SELECT 1 FROM sqlite_master
                           WHERE type = 'index' AND name = 'events_fingerprint')
              THEN '2' ELSE '1' END
  WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'forge_repos');
)sql";

// Version 7: the fleet. A run's fencing epoch and its owner's lease
// (docs/store.md, "Leases and fencing"), and the hosts that share the store.
constexpr std::string_view kV7 = R"sql(
ALTER TABLE runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_expires_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_by_lease ON runs (status, lease_expires_ms);
CREATE TABLE hosts (
  name TEXT PRIMARY KEY NOT NULL,
  capacity INTEGER NOT NULL,
  version TEXT NOT NULL,
  started_ms INTEGER NOT NULL,
  heartbeat_ms INTEGER NOT NULL
);
)sql";

// Version 8: nothing in SQLite. (PostgreSQL's step adds the queue's partial
// index, below; SQLite's planner already walks runs_by_queue in order.)
constexpr std::string_view kV8 = "-- the queue's partial index: PostgreSQL only";

// Version 9: where each host's API is, and its session-log key, so that any
// host fetches another's logs and verifies them (docs/fleet.md). The same
// statements in both dialects.
constexpr std::string_view kV9 = R"sql(
ALTER TABLE hosts ADD COLUMN url TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN log_key TEXT NOT NULL DEFAULT '';
)sql";

// Version 10: a running attempt's use so far, which its host records while
// it runs, so that the pipeline's leader on another host shows it
// (docs/fleet.md). The same statement in both dialects.
constexpr std::string_view kV10 = "ALTER TABLE runs ADD COLUMN live TEXT NOT NULL DEFAULT '';";

constexpr std::array<std::string_view, kVersion> kMigrations = {kV1, kV2, kV3, kV4, kV5,
                                                                kV6, kV7, kV8, kV9, kV10};

// The store's own migration track in PostgreSQL's dialect, numbered as the
// SQLite track is (kMigrations): step i takes the database from
// version i to i + 1, so one version number means one schema on both.
constexpr std::string_view kPgV1 = R"sql(
CREATE TABLE runs (
  seq BIGSERIAL PRIMARY KEY,
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
  created_ms BIGINT NOT NULL,
  started_ms BIGINT NOT NULL DEFAULT 0,
  finished_ms BIGINT NOT NULL DEFAULT 0,
  not_before_ms BIGINT NOT NULL DEFAULT 0,
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

constexpr std::string_view kPgV2 = R"sql(
CREATE TABLE steering (
  seq BIGSERIAL PRIMARY KEY,
  run_id TEXT NOT NULL REFERENCES runs (id),
  sender TEXT NOT NULL,
  message TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  taken INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX steering_by_run ON steering (run_id, taken, seq);
)sql";

constexpr std::string_view kPgV3 =
    "ALTER TABLE runs ADD COLUMN context TEXT NOT NULL DEFAULT 'null';";

// Versions 4 to 6 moved other owners' tables to tracks of their own in
// SQLite; nothing of the store's changed.
constexpr std::string_view kPgNothing = "SELECT 1";

constexpr std::string_view kPgV7 = R"sql(
ALTER TABLE runs ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_expires_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX runs_by_lease ON runs (status, lease_expires_ms);
CREATE TABLE hosts (
  name TEXT PRIMARY KEY NOT NULL,
  capacity INTEGER NOT NULL,
  version TEXT NOT NULL,
  started_ms BIGINT NOT NULL,
  heartbeat_ms BIGINT NOT NULL
);
)sql";

// Version 8: the queued runs in claim order, and only those. Without it,
// after a burst of runs and before the statistics catch up, the planner read
// every queued run and sorted them at each claim (a claim took 12 ms with
// 8,000 runs queued; tests/bench/queue.sh).
constexpr std::string_view kPgV8 =
    "CREATE INDEX runs_queued ON runs (priority DESC, seq) WHERE status = 'queued';";

constexpr std::array<std::string_view, kVersion> kPgMigrations = {
    kPgV1, kPgV2, kPgV3, kPgNothing, kPgNothing, kPgNothing, kPgV7, kPgV8, kV9, kV10};

Error Prefixed(const sql::Db& db, Error::Code code, const std::string& message) {
  return Error(code, "store " + Quote(db.name()) + ": " + message);
}

// The tables of db other than SQLite's own (sqlite_sequence, ...).
Result<std::vector<std::string>> Tables(sql::Db& db) {
  const char* query = db.dialect() == sql::Dialect::kSqlite
                          ? "SELECT name FROM sqlite_master WHERE type = 'table' "
                            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
                          : "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                            "ORDER BY tablename";
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt, db.Prepare("reading the schema", query));
  std::vector<std::string> names;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    names.push_back(stmt.Text(0));
  }
  return names;
}

constexpr std::string_view kStoreKey = "schema_version";

// The kiln_meta key of a track: the store's own, or an owner's.
std::string Key(std::string_view owner) {
  return owner.empty() ? std::string(kStoreKey) : std::string(kStoreKey) + ":" + std::string(owner);
}

Status SetVersion(sql::Db& db, const std::string& key, int64_t version) {
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt,
                        db.Prepare("recording the schema version",
                                   "INSERT INTO kiln_meta (key, value) VALUES (?1, ?2) "
                                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value"));
  return stmt.Bind(1, key).Bind(2, std::to_string(version)).Run();
}

// The version of a track as kiln_meta records it: nullopt when it has no
// row. Refuses a version that is not a number (corruption) or is newer than
// known, naming the track's owner.
Result<std::optional<int64_t>> TrackVersion(sql::Db& db, std::string_view owner, int64_t known) {
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt, db.Prepare("reading the schema version",
                                                   "SELECT value FROM kiln_meta WHERE key = ?1"));
  const std::string key = Key(owner);
  stmt.Bind(1, key);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<int64_t>();
  std::string text = stmt.Text(0);
  auto version = ParseUint(text, key);
  if (!version.ok() || *version > INT64_MAX) {
    return Prefixed(db, Error::Code::kCorruption,
                    "kiln_meta has " + key + " " + Quote(text) + ", not a version number");
  }
  auto v = static_cast<int64_t>(*version);
  if (v > known) {
    std::string whose = owner.empty() ? "database" : "the " + std::string(owner) + "'s tables";
    return Prefixed(db, Error::Code::kUnsupported,
                    whose + (owner.empty() ? " is" : " are") + " version " + std::to_string(v) +
                        ", this kiln knows up to " + std::to_string(known));
  }
  return std::optional<int64_t>(v);
}

// Brings one track to steps.size(), one step per transaction; the store's
// own track creates kiln_meta first in a database without tables.
Status MigrateTrack(sql::Db& db, std::string_view owner, std::span<const std::string_view> steps) {
  const auto target = static_cast<int64_t>(steps.size());
  const std::string key = Key(owner);
  auto version = [&]() -> Result<std::optional<int64_t>> {
    if (owner.empty()) return ReadVersion(db, target);
    KILN_ASSIGN_OR_RETURN(std::optional<int64_t> v, TrackVersion(db, owner, target));
    return std::optional<int64_t>(v.value_or(0));  // an owner's tables start at 0
  };
  // Most opens find the store up to date: check without the write lock.
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> seen, version());
  if (seen == target) return Ok();
  for (;;) {
    KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db, "migrating"));
    // Read again under the lock: another process may have moved it on.
    KILN_ASSIGN_OR_RETURN(std::optional<int64_t> now, version());
    if (!now) {
      KILN_TRY(
          db.Exec("creating kiln_meta",
                  "CREATE TABLE kiln_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
                  "INSERT INTO kiln_meta (key, value) VALUES ('schema_version', '0');"));
    } else if (*now == target) {
      return Ok();  // the transaction changed nothing; rolling it back is fine
    } else {
      const int64_t next = *now + 1;
      std::string what = "migrating " +
                         (owner.empty() ? "" : "the " + std::string(owner) + "'s tables ") +
                         "to version " + std::to_string(next);
      KILN_TRY(db.Exec(what, std::string(steps[static_cast<size_t>(*now)])));
      KILN_TRY(SetVersion(db, key, next));
    }
    KILN_TRY(txn.Commit());
  }
}

// One attempt at switching db to WAL: the journal mode it has afterwards.
Result<std::string> SetJournalModeWal(sql::Db& db) {
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt,
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
kiln::Status UseWal(sql::Db& db, int busy_timeout_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
  for (;;) {
    Result<std::string> mode = SetJournalModeWal(db);
    if (mode.ok() && *mode == "wal") return Ok();
    if (mode.ok()) {
      return Error(Error::Code::kUnsupported, "store " + Quote(db.name()) +
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

std::span<const std::string_view> Migrations(sql::Dialect dialect) {
  if (dialect == sql::Dialect::kPostgres) return kPgMigrations;
  return kMigrations;
}

Result<std::optional<int64_t>> ReadVersion(sql::Db& db, int64_t known) {
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> tables, Tables(db));
  bool has_meta = false;
  for (const auto& t : tables) has_meta = has_meta || t == "kiln_meta";
  if (!has_meta) {
    if (tables.empty()) return std::optional<int64_t>();
    std::string list;
    for (const auto& t : tables) list += (list.empty() ? "" : ", ") + Quote(t);
    return Prefixed(db, Error::Code::kInvalidArgument,
                    std::string("not a kiln store: a ") +
                        (db.dialect() == sql::Dialect::kSqlite ? "SQLite" : "PostgreSQL") +
                        " database with tables " + list + " but no kiln_meta table");
  }
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> v, TrackVersion(db, "", known));
  if (!v) return Prefixed(db, Error::Code::kCorruption, "kiln_meta has no schema_version");
  return v;
}

Status Migrate(sql::Db& db, std::span<const std::string_view> steps) {
  return MigrateTrack(db, "", steps);
}

Status Migrate(sql::Db& db, const Track& track) {
  if (track.steps.size() != track.pg_steps.size()) {
    return Error::Internal("the " + std::string(track.owner) + "'s tables have " +
                           std::to_string(track.steps.size()) + " SQLite steps but " +
                           std::to_string(track.pg_steps.size()) + " PostgreSQL ones");
  }
  return MigrateTrack(db, track.owner,
                      db.dialect() == sql::Dialect::kSqlite ? track.steps : track.pg_steps);
}

Result<sql::Db> OpenDb(const std::string& location, int busy_timeout_ms) {
  if (pg::IsUrl(location)) {
    KILN_ASSIGN_OR_RETURN(pg::Conn conn, pg::Conn::Connect(location));
    return sql::Db(std::move(conn));
  }
  KILN_ASSIGN_OR_RETURN(sqlite::Db db, sqlite::Db::Open(location, busy_timeout_ms));
  return sql::Db(std::move(db));
}

Result<sql::Db> Open(const std::string& location, int busy_timeout_ms, const Track* owner) {
  KILN_ASSIGN_OR_RETURN(sql::Db db, OpenDb(location, busy_timeout_ms));
  const auto steps = Migrations(db.dialect());
  // Refuse a foreign database before anything below writes to it.
  KILN_TRY(ReadVersion(db, static_cast<int64_t>(steps.size())));
  if (db.dialect() == sql::Dialect::kSqlite) {
    KILN_TRY(UseWal(db, busy_timeout_ms));
    // In WAL mode NORMAL is durable against crashes of kiln; a power loss can
    // lose the last commits but never corrupts the file. Per connection.
    KILN_TRY(db.Exec("setting synchronous", "PRAGMA synchronous = NORMAL"));
  }
  KILN_TRY(Migrate(db, steps));
  if (owner != nullptr) KILN_TRY(Migrate(db, *owner));
  return db;
}

}  // namespace kiln::store::schema
