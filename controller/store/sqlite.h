// Thin RAII owners over the sqlite3 C API for the store: a connection and a
// prepared statement (the write transaction of both backends is sql::Txn,
// controller/store/sql.h). Values only ever reach SQL through bound
// parameters. Errors name the database path, the operation and
// SQLite's own message: "store '/var/lib/kiln/kiln.db': claim: database is locked".
//
// Not thread-safe: the owner serialises access to a Db and its statements.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "base/result.h"

// SQLite's own types, declared only: <sqlite3.h> stays inside sqlite.cc.
struct sqlite3;
struct sqlite3_stmt;

namespace kiln::store::sqlite {

class Stmt;

class Db {
 public:
  // Opens or creates path read-write with a busy timeout of busy_timeout_ms:
  // a writer waits that long for another connection's write lock before
  // failing with kTimeout. Nothing is read or written yet.
  static Result<Db> Open(const std::string& path, int busy_timeout_ms);

  Db(Db&& o) noexcept;
  Db& operator=(Db&& o) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  const std::string& path() const { return path_; }

  // Runs SQL without parameters (schema, pragmas, transaction control),
  // discarding any rows. `what` names the operation in an error.
  kiln::Status Exec(std::string_view what, const std::string& sql);
  Result<Stmt> Prepare(std::string_view what, std::string_view sql);
  bool InTransaction() const;

  // The error for a failed call that returned rc: the path, what, and
  // SQLite's message. The code follows rc (busy: kTimeout, not a database or
  // corrupt: kCorruption, otherwise kIO).
  Error Fail(std::string_view what, int rc) const;

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_ = nullptr;
  std::string path_;
};

// A prepared statement. Bind errors are kept and reported by the next Step.
class Stmt {
 public:
  Stmt(Stmt&& o) noexcept;
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

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
  Stmt(Db* db, sqlite3_stmt* stmt, std::string_view what) : db_(db), stmt_(stmt), what_(what) {}
  void NoteBind(int rc);

  Db* db_;
  sqlite3_stmt* stmt_;
  std::string what_;
  int bind_rc_ = 0;  // SQLITE_OK
};

}  // namespace kiln::store::sqlite
