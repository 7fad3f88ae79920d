#include "controller/schedule/state.h"

#include <array>

#include "controller/store/schema.h"

namespace kiln::schedule {

namespace sql = store::sql;

namespace {

// Version 1: schedules keeps each schedule's last tick handled (fired or
// skipped): the ticks after it are due. schedule_fires is the history, one
// row per fire with its outcome; a claimed row's run is being queued.
constexpr std::string_view kV1 = R"sql(
CREATE TABLE schedules (
  name TEXT PRIMARY KEY NOT NULL,
  last_tick_ms INTEGER NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE TABLE schedule_fires (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  tick_ms INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  host TEXT NOT NULL,
  claimed_ms INTEGER NOT NULL,
  run_id TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX schedule_fires_by_name ON schedule_fires (name, seq);
CREATE INDEX schedule_fires_claimed ON schedule_fires (outcome, claimed_ms);
)sql";

constexpr std::array<std::string_view, 1> kSteps = {kV1};

// The same steps in PostgreSQL's dialect (docs/store.md).
constexpr std::string_view kPgV1 = R"sql(
CREATE TABLE schedules (
  name TEXT PRIMARY KEY NOT NULL,
  last_tick_ms BIGINT NOT NULL,
  created_ms BIGINT NOT NULL
);
CREATE TABLE schedule_fires (
  seq BIGSERIAL PRIMARY KEY,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  tick_ms BIGINT NOT NULL,
  outcome TEXT NOT NULL,
  host TEXT NOT NULL,
  claimed_ms BIGINT NOT NULL,
  run_id TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX schedule_fires_by_name ON schedule_fires (name, seq);
CREATE INDEX schedule_fires_claimed ON schedule_fires (outcome, claimed_ms);
)sql";

constexpr std::array<std::string_view, 1> kPgSteps = {kPgV1};

constexpr std::string_view kColumns =
    "seq, name, kind, tick_ms, outcome, host, claimed_ms, run_id, reason";

Fire Read(const sql::Stmt& s) {
  return Fire{s.Int(0),  s.Text(1), s.Text(2), s.Int(3), s.Text(4),
              s.Text(5), s.Int(6),  s.Text(7), s.Text(8)};
}

// The row of a statement that returns at most one (INSERT or UPDATE ...
// RETURNING), read with read; the statement is then stepped to its end, so
// that it is finished before its transaction commits.
template <typename F>
auto One(sql::Stmt& stmt, F read) -> Result<std::optional<decltype(read(stmt))>> {
  using T = decltype(read(stmt));
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<T>();
  T value = read(stmt);
  KILN_ASSIGN_OR_RETURN(bool more, stmt.Step());
  if (more) return Error::Internal("a statement returned more than one row");
  return std::optional<T>(std::move(value));
}

int64_t FirstInt(const sql::Stmt& s) { return s.Int(0); }

}  // namespace

Result<std::unique_ptr<State>> State::Open(const std::string& store_path) {
  static constexpr store::schema::Track kTrack{"schedule", kSteps, kPgSteps};
  KILN_ASSIGN_OR_RETURN(sql::Db db, store::schema::Open(store_path, 5'000, &kTrack));
  return std::unique_ptr<State>(new State(std::move(db)));
}

Result<int64_t> State::LastTick(std::string_view name, int64_t now_ms) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_.Prepare("reading a schedule",
                  "INSERT INTO schedules (name, last_tick_ms, created_ms) VALUES (?1, ?2, ?2) "
                  "ON CONFLICT (name) DO UPDATE SET name = schedules.name RETURNING last_tick_ms"));
  stmt.Bind(1, name).Bind(2, now_ms);
  KILN_ASSIGN_OR_RETURN(auto last, One(stmt, FirstInt));
  if (!last) return Error::Internal("reading schedule " + Quote(std::string(name)) + ": no row");
  return *last;
}

Result<std::string> State::Active(std::string_view name) {
  KILN_ASSIGN_OR_RETURN(sql::Stmt last,
                        db_.Prepare("reading a schedule's last fire",
                                    "SELECT f.outcome, f.run_id, f.host, COALESCE(r.status, '') "
                                    "FROM schedule_fires f LEFT JOIN runs r ON r.id = f.run_id "
                                    "WHERE f.name = ?1 AND f.outcome IN ('claimed', 'fired') "
                                    "ORDER BY f.seq DESC LIMIT 1"));
  last.Bind(1, name);
  KILN_ASSIGN_OR_RETURN(bool row, last.Step());
  if (!row) return std::string();
  std::string outcome = last.Text(0);
  if (outcome == "claimed") return "its previous fire is being started by " + last.Text(2);
  std::string status = last.Text(3);
  if (status == "queued" || status == "running") {
    return "its previous run " + last.Text(1) + " is still " + status;
  }
  return std::string();
}

Result<Fire> State::Insert(std::string_view name, std::string_view kind, int64_t tick,
                           std::string_view host, int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(std::string busy, Active(name));
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt insert,
      db_.Prepare("recording a fire",
                  "INSERT INTO schedule_fires (name, kind, tick_ms, outcome, host, claimed_ms, "
                  "reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING " +
                      std::string(kColumns)));
  insert.Bind(1, name)
      .Bind(2, kind)
      .Bind(3, tick)
      .Bind(4, busy.empty() ? "claimed" : "skipped")
      .Bind(5, host)
      .Bind(6, now_ms)
      .Bind(7, busy);
  KILN_ASSIGN_OR_RETURN(auto fire, One(insert, Read));
  if (!fire) return Error::Internal("recording a fire returned no row");
  return std::move(*fire);
}

Result<std::optional<Fire>> State::ClaimTick(std::string_view name, int64_t from, int64_t tick,
                                             std::string_view host, int64_t now_ms) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "claiming a tick"));
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt cas, db_.Prepare("claiming a tick",
                                 "UPDATE schedules SET last_tick_ms = ?3 "
                                 "WHERE name = ?1 AND last_tick_ms = ?2 RETURNING last_tick_ms"));
  cas.Bind(1, name).Bind(2, from).Bind(3, tick);
  KILN_ASSIGN_OR_RETURN(auto won, One(cas, FirstInt));
  if (!won) return std::optional<Fire>();
  KILN_ASSIGN_OR_RETURN(Fire fire, Insert(name, "tick", tick, host, now_ms));
  KILN_TRY(txn.Commit());
  return std::optional<Fire>(std::move(fire));
}

Result<Fire> State::ClaimManual(std::string_view name, std::string_view host, int64_t now_ms) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "claiming a manual fire"));
  KILN_ASSIGN_OR_RETURN(Fire fire, Insert(name, "manual", now_ms, host, now_ms));
  KILN_TRY(txn.Commit());
  return fire;
}

Status State::SetOutcome(int64_t seq, std::string_view outcome, std::string_view run_id,
                         std::string_view reason) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt,
                        db_.Prepare("recording a fire's outcome",
                                    "UPDATE schedule_fires SET outcome = ?2, run_id = ?3, "
                                    "reason = ?4 WHERE seq = ?1"));
  return stmt.Bind(1, seq).Bind(2, outcome).Bind(3, run_id).Bind(4, reason).Run();
}

Result<std::optional<int64_t>> State::PeekLastTick(std::string_view name) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_.Prepare("reading a schedule", "SELECT last_tick_ms FROM schedules WHERE name = ?1"));
  stmt.Bind(1, name);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<int64_t>();
  return std::optional<int64_t>(stmt.Int(0));
}

Result<std::vector<Fire>> State::TakeOverOrphans(std::string_view host, int64_t older_than_ms,
                                                 int64_t now_ms) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt,
                        db_.Prepare("taking over a fire whose run was never queued",
                                    "UPDATE schedule_fires SET host = ?1, claimed_ms = ?3 "
                                    "WHERE outcome = 'claimed' AND claimed_ms < ?2 RETURNING " +
                                        std::string(kColumns)));
  stmt.Bind(1, host).Bind(2, older_than_ms).Bind(3, now_ms);
  std::vector<Fire> taken;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    taken.push_back(Read(stmt));
  }
  return taken;
}

Result<std::optional<Fire>> State::Last(std::string_view name) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt, db_.Prepare("reading a schedule's last fire",
                                                    "SELECT " + std::string(kColumns) +
                                                        " FROM schedule_fires WHERE name = ?1 "
                                                        "ORDER BY seq DESC LIMIT 1"));
  stmt.Bind(1, name);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<Fire>();
  return std::optional<Fire>(Read(stmt));
}

Result<Totals> State::TotalsOf(std::string_view name) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_.Prepare("counting a schedule's fires",
                  "SELECT COUNT(*) FILTER (WHERE outcome = 'fired'), "
                  "COUNT(*) FILTER (WHERE outcome = 'skipped'), "
                  "COALESCE((SELECT claimed_ms - tick_ms FROM schedule_fires WHERE name = ?1 AND "
                  "kind = 'tick' AND outcome = 'fired' ORDER BY seq DESC LIMIT 1), -1) "
                  "FROM schedule_fires WHERE name = ?1"));
  stmt.Bind(1, name);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  Totals t;
  if (!row) return t;
  t.fires = static_cast<uint64_t>(stmt.Int(0));
  t.skips = static_cast<uint64_t>(stmt.Int(1));
  t.last_lateness_ms = stmt.Int(2);
  return t;
}

}  // namespace kiln::schedule
