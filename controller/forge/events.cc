#include "controller/forge/events.h"

#include <sys/random.h>

#include <cerrno>

#include "controller/forge/db.h"

namespace kiln::forge::events {

Result<int64_t> Insert(store::sql::Db& db, const Event& e, int64_t now_ms) {
  if (e.delivery.empty()) return Error::Invalid("event " + Quote(e.kind) + ": empty delivery");
  if (e.source.empty()) return Error::Invalid("event " + Quote(e.delivery) + ": empty source");
  if (e.kind.empty()) return Error::Invalid("event " + Quote(e.delivery) + ": empty kind");
  // ON CONFLICT DO NOTHING with RETURNING: a row comes back only when the
  // event was new (by its delivery, or by its fingerprint), so a repeated
  // delivery is told apart without a second query.
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt stmt,
      db.Prepare("appending event " + e.delivery,
                 "INSERT INTO events (delivery, source, kind, repo, number, actor, payload, "
                 "received_ms, fingerprint) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                 "ON CONFLICT DO NOTHING RETURNING seq"));
  stmt.Bind(1, e.delivery)
      .Bind(2, e.source)
      .Bind(3, e.kind)
      .Bind(4, e.repo)
      .Bind(5, e.number)
      .Bind(6, e.actor)
      .Bind(7, db::Dump(e.payload.is_null() ? nlohmann::json::object() : e.payload))
      .Bind(8, now_ms)
      .Bind(9, e.fingerprint);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return int64_t{0};
  int64_t seq = stmt.Int(0);
  KILN_TRY(stmt.Step());  // finishes the statement
  return seq;
}

Result<std::string> NewDelivery() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Sys("getrandom(16)", errno);
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "local-";
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string Select(std::string_view rest) {
  std::string sql =
      "SELECT seq, delivery, source, kind, repo, number, actor, payload, received_ms, "
      "processed_ms, outcome FROM events ";
  sql += rest;
  return sql;
}

Result<Event> FromRow(const store::sql::Db& db, const store::sql::Stmt& stmt) {
  Event e;
  e.seq = stmt.Int(0);
  e.delivery = stmt.Text(1);
  e.source = stmt.Text(2);
  e.kind = stmt.Text(3);
  e.repo = stmt.Text(4);
  e.number = stmt.Int(5);
  e.actor = stmt.Text(6);
  e.payload = nlohmann::json::parse(stmt.Text(7), nullptr, /*allow_exceptions=*/false);
  if (e.payload.is_discarded()) {
    return Error(Error::Code::kCorruption, "store " + Quote(db.name()) + ": event " +
                                               std::to_string(e.seq) +
                                               ": column 'payload': not valid JSON");
  }
  e.received_ms = stmt.Int(8);
  return e;
}

}  // namespace kiln::forge::events
