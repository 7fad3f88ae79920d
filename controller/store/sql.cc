#include "controller/store/sql.h"

#include <utility>

#include "base/strings.h"

namespace kiln::store::sql {
namespace {

// The advisory lock every PostgreSQL write transaction takes ("kiln" and a
// number; postgres_store.cc holds the others).
constexpr int64_t kWriteLock = 0x6b696c6e02;

}  // namespace

std::string PostgresParameters(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  char quote = 0;  // inside '...' or "...": the quote that ends it
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote != 0) {
      if (c == quote) quote = 0;  // a doubled quote reopens at the next character
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
      out += '$';
      continue;
    }
    out += c;
  }
  return out;
}

const std::string& Db::name() const {
  if (const auto* lite = std::get_if<sqlite::Db>(&conn_)) return lite->path();
  return std::get<pg::Conn>(conn_).name();
}

kiln::Status Db::Ready() {
  pg::Conn* pg = postgres();
  if (pg == nullptr || !pg->Lost()) return Ok();
  if (txn_) {
    return Error(Error::Code::kIO, "store " + Quote(pg->name()) +
                                       ": the connection was lost inside a transaction; "
                                       "nothing of it was written");
  }
  return pg->Reconnect();
}

kiln::Status Db::Exec(std::string_view what, const std::string& sql) {
  if (sqlite::Db* lite = sqlite()) return lite->Exec(what, sql);
  KILN_TRY(Ready());
  KILN_TRY(postgres()->Exec(what, sql));
  return Ok();
}

Result<Stmt> Db::Prepare(std::string_view what, std::string_view sql) {
  if (sqlite::Db* lite = sqlite()) {
    KILN_ASSIGN_OR_RETURN(sqlite::Stmt stmt, lite->Prepare(what, sql));
    return Stmt(std::move(stmt));
  }
  KILN_TRY(Ready());
  return Stmt(postgres(), PostgresParameters(sql), what);
}

bool Db::InTransaction() const {
  if (const auto* lite = std::get_if<sqlite::Db>(&conn_)) return lite->InTransaction();
  return std::get<pg::Conn>(conn_).InTransaction();
}

pg::Param& Stmt::Slot(int index) {
  const auto at = static_cast<size_t>(index < 1 ? 0 : index - 1);
  if (params_.size() <= at) params_.resize(at + 1);
  return params_[at];
}

Stmt& Stmt::Bind(int index, int64_t value) {
  if (lite_) {
    lite_->Bind(index, value);
  } else {
    Slot(index) = pg::P(value);
  }
  return *this;
}

Stmt& Stmt::Bind(int index, std::string_view value) {
  if (lite_) {
    lite_->Bind(index, value);
  } else {
    Slot(index) = pg::P(value);
  }
  return *this;
}

Stmt& Stmt::BindNull(int index) {
  if (lite_) {
    lite_->BindNull(index);
  } else {
    Slot(index) = std::nullopt;
  }
  return *this;
}

Result<bool> Stmt::Step() {
  if (lite_) return lite_->Step();
  if (!rows_) {
    KILN_ASSIGN_OR_RETURN(pg::Rows rows, conn_->Exec(what_, sql_, params_));
    rows_.emplace(std::move(rows));
  }
  ++row_;
  return row_ < rows_->size();
}

kiln::Status Stmt::Run() {
  if (lite_) return lite_->Run();
  KILN_ASSIGN_OR_RETURN(bool row, Step());
  if (row) return Error::Internal(what_ + ": statement returned a row");
  return Ok();
}

int64_t Stmt::Int(int column) const {
  return lite_ ? lite_->Int(column) : rows_->Int(row_, column);
}

std::string Stmt::Text(int column) const {
  return lite_ ? lite_->Text(column) : rows_->Text(row_, column);
}

Result<Txn> Txn::Begin(Db& db, std::string_view what) {
  const std::string context = std::string(what) + ": beginning a transaction";
  KILN_TRY(db.Ready());
  kiln::Status begun = db.dialect() == Dialect::kSqlite
                           ? db.Exec(context, "BEGIN IMMEDIATE")
                           : db.Exec(context, "BEGIN; SELECT pg_advisory_xact_lock(" +
                                                  std::to_string(kWriteLock) + ")");
  if (!begun.ok()) {
    // The lock's wait may have failed (a statement timeout) inside BEGIN:
    // end what was begun, so that the connection is usable again.
    if (db.InTransaction()) (void)db.Exec(context, "ROLLBACK");
    return begun.error();
  }
  db.txn_ = true;
  return Txn(&db, what);
}

Txn::Txn(Txn&& o) noexcept : db_(std::exchange(o.db_, nullptr)), what_(std::move(o.what_)) {}

Txn::~Txn() {
  if (db_ == nullptr) return;
  // Some errors end the transaction themselves; roll back only one that is
  // still open.
  if (db_->InTransaction()) (void)db_->Exec(what_, "ROLLBACK");
  db_->txn_ = false;
}

kiln::Status Txn::Commit() {
  Db* db = std::exchange(db_, nullptr);
  kiln::Status st = db->Exec(what_ + ": committing", "COMMIT");
  // A COMMIT that failed can leave the transaction open (SQLite's busy); end it.
  if (!st.ok() && db->InTransaction()) (void)db->Exec(what_, "ROLLBACK");
  db->txn_ = false;
  return st;
}

}  // namespace kiln::store::sql
