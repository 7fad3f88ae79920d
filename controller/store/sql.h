// One connection API over both of the store's backends, for every owner of
// tables (the forge, the pipeline, the scheduler, the web view, and the run
// store on SQLite): a connection, a prepared statement and a write
// transaction, on a SQLite file or on PostgreSQL.
//
// SQL is written once, in the subset both dialects share: parameters as ?1,
// ?2 ... (sent to PostgreSQL as $1, $2 ...), ON CONFLICT for upserts,
// RETURNING instead of last_insert_rowid(), COALESCE, no rowid. Where a
// statement cannot be shared, the caller asks dialect() and writes both;
// each owner's migration steps exist in both dialects (schema::Track).
//
// A write transaction (Txn) takes the database's one write lock, as SQLite's
// BEGIN IMMEDIATE does: on PostgreSQL a transaction-scoped advisory lock
// that every Txn of every host takes. Code written for SQLite's single
// writer is therefore correct, unchanged, for several hosts on PostgreSQL.
// (The run store on PostgreSQL does not use Txn: it locks rows, so that hosts
// claim in parallel; controller/store/postgres_store.cc.)
//
// On PostgreSQL a lost connection fails the statement or transaction it cut:
// every later statement of a Txn it cut fails too (it is never carried on
// outside the transaction, on a new connection), and so does its Commit; the
// caller's next call after the Txn reconnects. An operation is either
// applied whole or not at all.
//
// Not thread-safe: the owner serialises access to a Db and its statements.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "controller/store/postgres.h"
#include "controller/store/sqlite.h"

namespace kiln::store::sql {

enum class Dialect { kSqlite, kPostgres };

// ?1, ?2 ... outside quoted strings and identifiers as $1, $2 ...
std::string PostgresParameters(std::string_view sql);

class Stmt;

class Db {
 public:
  explicit Db(sqlite::Db db) : conn_(std::move(db)) {}
  explicit Db(pg::Conn conn) : conn_(std::move(conn)) {}

  Dialect dialect() const {
    return std::holds_alternative<sqlite::Db>(conn_) ? Dialect::kSqlite : Dialect::kPostgres;
  }
  // The database as errors name it: the file's path, or the URL with its
  // password hidden.
  const std::string& name() const;

  // Runs SQL without parameters (a script of statements), discarding rows.
  kiln::Status Exec(std::string_view what, const std::string& sql);
  Result<Stmt> Prepare(std::string_view what, std::string_view sql);
  bool InTransaction() const;

  // The backend's own connection; null for the other backend.
  sqlite::Db* sqlite() { return std::get_if<sqlite::Db>(&conn_); }
  pg::Conn* postgres() { return std::get_if<pg::Conn>(&conn_); }

 private:
  // A connection lost outside a transaction is re-established before the
  // next statement; one lost inside a Txn fails until the Txn ends.
  kiln::Status Ready();

  friend class Txn;
  std::variant<sqlite::Db, pg::Conn> conn_;
  bool txn_ = false;  // a Txn is open on this connection
};

// A prepared statement. On PostgreSQL the parameters are kept until the first
// Step, which runs the statement; rows are then read in order.
class Stmt {
 public:
  Stmt(Stmt&&) noexcept = default;
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Parameters are numbered from 1, as ?1, ?2 ... in the SQL.
  Stmt& Bind(int index, int64_t value);
  Stmt& Bind(int index, std::string_view value);
  Stmt& BindNull(int index);

  // Runs to the next row: true when there is one, false when done.
  Result<bool> Step();
  // Steps a statement that returns no rows (INSERT, UPDATE).
  kiln::Status Run();

  // Columns are numbered from 0. NULL reads as 0 / "".
  int64_t Int(int column) const;
  std::string Text(int column) const;

 private:
  friend class Db;
  explicit Stmt(sqlite::Stmt stmt) : lite_(std::move(stmt)) {}
  Stmt(pg::Conn* conn, std::string sql, std::string_view what)
      : conn_(conn), sql_(std::move(sql)), what_(what) {}
  pg::Param& Slot(int index);

  std::optional<sqlite::Stmt> lite_;
  // PostgreSQL: the statement, its parameters, and once run its rows.
  pg::Conn* conn_ = nullptr;
  std::string sql_;
  std::string what_;
  std::vector<pg::Param> params_;
  std::optional<pg::Rows> rows_;
  int row_ = -1;
};

// The database's write transaction: BEGIN IMMEDIATE on SQLite, BEGIN and
// the fleet-wide write lock on PostgreSQL. Rolls back unless committed.
class Txn {
 public:
  static Result<Txn> Begin(Db& db, std::string_view what);
  Txn(Txn&& o) noexcept;
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn();

  kiln::Status Commit();

 private:
  Txn(Db* db, std::string_view what) : db_(db), what_(what) {}

  Db* db_;  // null once committed or moved from
  std::string what_;
};

}  // namespace kiln::store::sql
