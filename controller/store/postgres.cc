#include "controller/store/postgres.h"

#include <libpq-fe.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "base/strings.h"

namespace kiln::store::pg {
namespace {

// One line from libpq's messages, which end in newlines and indent hints.
std::string OneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == ' ' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// PostgreSQL's text holds neither NUL bytes (libpq would cut the value there)
// nor invalid UTF-8 (the server refuses it): both become U+FFFD, as the
// store's JSON columns already do, so that a run's record is never lost to
// a stray byte.
std::string Storable(std::string text) {
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  for (size_t at = text.find('\0'); at != std::string::npos; at = text.find('\0', at)) {
    text.replace(at, 1, kReplacement);
  }
  try {
    (void)nlohmann::json(text).dump();
    return text;
  } catch (const nlohmann::json::type_error&) {
    return nlohmann::json::parse(
               nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
        .get<std::string>();
  }
}

bool RetryableState(std::string_view sqlstate) {
  return sqlstate.starts_with("08") ||  // connection exception
         sqlstate == "57P01" ||         // admin_shutdown: the server is stopping
         sqlstate == "57P02" ||         // crash_shutdown
         sqlstate == "57P03" ||         // cannot_connect_now: it is starting up
         sqlstate == "40001" ||         // serialization_failure
         sqlstate == "40P01";           // deadlock_detected
}

}  // namespace

bool IsUrl(std::string_view location) {
  return location.starts_with("postgres://") || location.starts_with("postgresql://");
}

std::string Redact(std::string_view url) {
  std::string out(url);
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = std::min(out.find_first_of("/?", start), out.size());
    const size_t at = out.rfind('@', end);
    if (at != std::string::npos && at >= start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // password=... among the query parameters.
  for (size_t at = out.find("password="); at != std::string::npos;
       at = out.find("password=", at + 1)) {
    if (at > 0 && out[at - 1] != '?' && out[at - 1] != '&') continue;
    const size_t value = at + 9;
    const size_t end = std::min(out.find('&', value), out.size());
    out.replace(value, end - value, "***");
  }
  return out;
}

void Rows::Clear::operator()(pg_result* r) const { PQclear(r); }

int Rows::size() const { return PQntuples(result_.get()); }

std::string Rows::Text(int row, int column) const {
  return std::string(PQgetvalue(result_.get(), row, column),
                     static_cast<size_t>(PQgetlength(result_.get(), row, column)));
}

int64_t Rows::Int(int row, int column) const {
  const char* text = PQgetvalue(result_.get(), row, column);
  const char* end = text + PQgetlength(result_.get(), row, column);
  int64_t value = 0;
  std::from_chars(text, end, value);
  return value;
}

Result<Conn> Conn::Connect(const std::string& url) {
  const std::string name = Redact(url);
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(url.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string why = parse_error != nullptr ? OneLine(parse_error) : "out of memory";
    PQfreemem(parse_error);
    return Error::Invalid("store " + Quote(name) + ": not a PostgreSQL URL: " + why);
  }
  PQconninfoFree(parsed);
  // Defaults first: what the URL itself says replaces them. Keepalives notice
  // a server that went away without closing the connection (a cut network)
  // within about half a minute.
  const char* keys[] = {"connect_timeout",
                        "application_name",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "dbname",
                        nullptr};
  const char* values[] = {"5", "kiln", "10", "5", "3", url.c_str(), nullptr};
  Conn conn(PQconnectdbParams(keys, values, /*expand_dbname=*/1), name);
  if (conn.conn_ == nullptr)
    return Error(Error::Code::kIO, "store " + Quote(name) + ": out of memory");
  if (PQstatus(conn.conn_) != CONNECTION_OK) {
    return Error(Error::Code::kIO, "store " + Quote(name) +
                                       ": cannot connect: " + OneLine(PQerrorMessage(conn.conn_)));
  }
  // The server's notices ("... does not exist, skipping") are not errors, and
  // libpq would print them on kiln's standard error.
  PQsetNoticeProcessor(
      conn.conn_, [](void*, const char*) {}, nullptr);
  KILN_TRY(conn.Configure());
  return conn;
}

// The server ends a session that sits inside a transaction for
// kIdleInTransactionMs: a host paused there (stopped, its VM frozen) would
// otherwise hold its locks, and every other host's claims behind them, for as
// long as it stays paused. kiln's transactions wait on nothing but the
// server. Set on the session (not as a startup option, which PgBouncer
// refuses), at every connection.
Status Conn::Configure() {
  auto set = Exec("configuring the session", "SET idle_in_transaction_session_timeout = " +
                                                 std::to_string(kIdleInTransactionMs));
  if (!set.ok()) return set.error();
  return Ok();
}

Conn::Conn(Conn&& o) noexcept
    : conn_(std::exchange(o.conn_, nullptr)), name_(std::move(o.name_)), retryable_(o.retryable_) {}

Conn& Conn::operator=(Conn&& o) noexcept {
  if (this != &o) {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = std::exchange(o.conn_, nullptr);
    name_ = std::move(o.name_);
    retryable_ = o.retryable_;
  }
  return *this;
}

Conn::~Conn() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Error Conn::Fail(std::string_view what, std::string_view message, std::string_view sqlstate) {
  retryable_ = PQstatus(conn_) != CONNECTION_OK || RetryableState(sqlstate);
  return Error(Error::Code::kIO,
               "store " + Quote(name_) + ": " + std::string(what) + ": " + OneLine(message));
}

Result<Rows> Conn::Exec(std::string_view what, std::string_view sql,
                        const std::vector<Param>& params) {
  retryable_ = false;
  const std::string text(sql);
  pg_result* raw = nullptr;
  if (params.empty()) {
    raw = PQexec(conn_, text.c_str());
  } else {
    std::vector<std::string> storable;
    storable.reserve(params.size());
    std::vector<const char*> values;
    for (const Param& p : params) {
      if (p) {
        storable.push_back(Storable(*p));
        values.push_back(storable.back().c_str());
      } else {
        values.push_back(nullptr);
      }
    }
    raw = PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                       nullptr, nullptr, /*resultFormat=text*/ 0);
  }
  Rows rows(raw);
  if (raw == nullptr) return Fail(what, PQerrorMessage(conn_), "");
  switch (PQresultStatus(raw)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
      return rows;
    default: {
      const char* primary = PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY);
      const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
      return Fail(what, primary != nullptr ? primary : PQerrorMessage(conn_),
                  state != nullptr ? state : "");
    }
  }
}

Status Conn::Reconnect() {
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return Error(Error::Code::kIO,
                 "store " + Quote(name_) + ": reconnecting: " + OneLine(PQerrorMessage(conn_)));
  }
  return Configure();
}

bool Conn::Lost() const { return PQstatus(conn_) != CONNECTION_OK; }

bool Conn::InTransaction() const {
  const PGTransactionStatusType status = PQtransactionStatus(conn_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

}  // namespace kiln::store::pg
