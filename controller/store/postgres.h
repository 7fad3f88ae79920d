// Thin owners over libpq for the store's PostgreSQL backend: a connection
// that can be re-established, a query's rows, and the errors of both. Values
// only ever reach SQL as parameters ($1, $2 ...), sent as text. Errors name
// the server with its password hidden, the operation and PostgreSQL's own
// message: "store 'postgres://kiln:***@db:5432/kiln': claiming a run: ...".
//
// Not thread-safe: the owner serialises use of a Conn.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

// libpq's own types, declared only: <libpq-fe.h> stays inside postgres.cc.
struct pg_conn;
struct pg_result;

namespace kiln::store::pg {

// Whether location names a PostgreSQL database (postgres:// or
// postgresql://) rather than a SQLite file.
bool IsUrl(std::string_view location);

// url with the password (in the user part or a password= parameter)
// replaced by "***", for messages and logs.
std::string Redact(std::string_view url);

// A parameter: text (an integer as its decimal digits), or SQL NULL.
using Param = std::optional<std::string>;
inline Param P(std::string_view text) { return std::string(text); }
inline Param P(int64_t value) { return std::to_string(value); }

class Rows {
 public:
  int size() const;
  // Columns are numbered from 0. NULL reads as "" / 0.
  std::string Text(int row, int column) const;
  int64_t Int(int row, int column) const;

 private:
  friend class Conn;
  struct Clear {
    void operator()(pg_result* r) const;
  };
  explicit Rows(pg_result* r) : result_(r) {}
  std::unique_ptr<pg_result, Clear> result_;
};

class Conn {
 public:
  // Connects to url. A malformed URL, an unreachable server, a refused
  // login or a missing database is an error naming the (redacted) URL.
  static Result<Conn> Connect(const std::string& url);
  // How long the server lets a session sit idle inside a transaction before
  // it ends the session (and so releases its locks).
  static constexpr int kIdleInTransactionMs = 10'000;

  Conn(Conn&& o) noexcept;
  Conn& operator=(Conn&& o) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn();

  const std::string& name() const { return name_; }  // the redacted URL

  // Runs one statement with parameters, or (without any) a script of
  // several. `what` names the operation in an error.
  Result<Rows> Exec(std::string_view what, std::string_view sql,
                    const std::vector<Param>& params = {});

  // Whether the last failure can be retried as a whole transaction: the
  // connection was lost (the server restarted, the network cut), or the
  // server gave up on a serialization failure or a deadlock.
  bool Retryable() const { return retryable_; }
  // Re-establishes a lost connection (blocking up to its connect timeout).
  Status Reconnect();
  // Whether the connection was lost (the server went away).
  bool Lost() const;
  // Whether a transaction is open, or failed and not yet rolled back.
  bool InTransaction() const;

 private:
  Conn(pg_conn* conn, std::string name) : conn_(conn), name_(std::move(name)) {}
  // The session's settings, after every connection (postgres.cc).
  Status Configure();
  Error Fail(std::string_view what, std::string_view message, std::string_view sqlstate);

  pg_conn* conn_ = nullptr;
  std::string name_;
  bool retryable_ = false;
};

}  // namespace kiln::store::pg
