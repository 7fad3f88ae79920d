// The store's schema and the migrations of every owner of tables, in both
// of the store's dialects (SQLite and PostgreSQL).
//
// A kiln store is a SQLite file or a PostgreSQL database with a kiln_meta
// table. Its
// 'schema_version' row says how many of the store's own migration steps
// (runs, steering) have been applied; each other owner of tables (the forge,
// the pipeline) keeps its steps in its own folder and its count in a row of
// its own, 'schema_version:<owner>'. Step i (counting from 0) takes a track
// from version i to i + 1; steps are only ever appended, never edited, so
// that every store can be brought up to date from any older version.
// docs/store.md describes the tables.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "controller/store/sql.h"

namespace kiln::store::schema {

// kiln's migration steps in a dialect, oldest first; their count is the
// current version, kVersion, in both: one version number means one schema.
inline constexpr size_t kVersion = 10;
std::span<const std::string_view> Migrations(sql::Dialect dialect = sql::Dialect::kSqlite);

// The version of the store in db, or nullopt for a database without tables
// (a new or empty file). Refuses, naming the database, a file that is not SQLite,
// a database with tables but no kiln_meta, and a version newer than `known`.
// Only reads, so a refused file is left as it was.
Result<std::optional<int64_t>> ReadVersion(sql::Db& db, int64_t known);

// Brings db to version steps.size(): creates kiln_meta (version 0) in a
// database without tables, then applies each missing step in its own
// write transaction (sql::Txn) together with the version bump. A crash leaves
// the last completed version; a process migrating the same file at the same
// time is seen inside the transaction and its steps are not repeated.
kiln::Status Migrate(sql::Db& db, std::span<const std::string_view> steps);

// An owner's track: its name and its steps, oldest first, in each dialect
// (as many in both: step i of one is step i of the other).
struct Track {
  std::string_view owner;  // "forge", "pipeline"
  std::span<const std::string_view> steps;
  std::span<const std::string_view> pg_steps;
};

// Migrate for an owner's track, in a store whose own track is current: a
// missing row is version 0, a version newer than the steps is refused
// naming the owner, and nothing else in the store is touched.
kiln::Status Migrate(sql::Db& db, const Track& track);

// A connection to the kiln store at location (a SQLite file's path or a
// postgres:// URL), as every part that keeps tables in it opens one (the run
// store, the forge, the pipeline): a SQLite file is created when missing and
// set to WAL mode, synchronous NORMAL and a busy timeout; a foreign database
// is refused before anything is written; the store is migrated to its current
// version, then (when given) the owner's track to its current version.
Result<sql::Db> Open(const std::string& location, int busy_timeout_ms,
                     const Track* owner = nullptr);

}  // namespace kiln::store::schema
