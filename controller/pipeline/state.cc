#include "controller/pipeline/state.h"

#include <array>

#include "base/strings.h"
#include "controller/store/schema.h"

namespace kiln::pipeline {

namespace sql = store::sql;

namespace {

// The pipeline's migrations (docs/store.md); the store's version 3 made the
// first before each owner had a track of its own.
//
// Version 1: pipeline_runs follows each pipeline run from its event to the
// forge writes made from its result: the progress comment it updates in
// place, the state that comment shows, and when (and how) its result was
// applied.
constexpr std::string_view kV1 = R"sql(
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

// Version 2: pipeline_lead, the lead of the pipeline among the hosts that
// share the store (docs/fleet.md): one row, its holder, the epoch that
// fences the holder's writes, and when its lease ends.
constexpr std::string_view kV2 = R"sql(
CREATE TABLE pipeline_lead (
  name TEXT PRIMARY KEY NOT NULL,
  holder TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL
);
)sql";

constexpr std::array<std::string_view, 2> kSteps = {kV1, kV2};

// The same steps in PostgreSQL's dialect (docs/store.md).
constexpr std::string_view kPgV1 = R"sql(
CREATE TABLE pipeline_runs (
  run_id TEXT PRIMARY KEY NOT NULL REFERENCES runs (id),
  repo TEXT NOT NULL,
  number BIGINT NOT NULL,
  role TEXT NOT NULL,
  event_seq BIGINT NOT NULL,
  comment_id BIGINT NOT NULL DEFAULT 0,
  shown_state TEXT NOT NULL DEFAULT '',
  applied_ms BIGINT NOT NULL DEFAULT 0,
  outcome TEXT NOT NULL DEFAULT '',
  seq BIGSERIAL NOT NULL UNIQUE
);
CREATE INDEX pipeline_runs_by_issue ON pipeline_runs (repo, number, role);
CREATE INDEX pipeline_runs_to_apply ON pipeline_runs (applied_ms);
)sql";

constexpr std::string_view kPgV2 = R"sql(
CREATE TABLE pipeline_lead (
  name TEXT PRIMARY KEY NOT NULL,
  holder TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL
);
)sql";

constexpr std::array<std::string_view, 2> kPgSteps = {kPgV1, kPgV2};

}  // namespace

Result<std::unique_ptr<State>> State::Open(const std::string& store_path) {
  static constexpr store::schema::Track kTrack{"pipeline", kSteps, kPgSteps};
  KILN_ASSIGN_OR_RETURN(sql::Db db, store::schema::Open(store_path, 5'000, &kTrack));
  return std::unique_ptr<State>(new State(std::move(db)));
}

Status State::Track(const Tracked& t) {
  std::lock_guard lock(mu_);
  const std::string what = "tracking a pipeline run";
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, what));
  KILN_TRY(CheckFence(what));
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_.Prepare(what,
                  "INSERT INTO pipeline_runs (run_id, repo, number, role, event_seq, comment_id, "
                  "shown_state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  KILN_TRY(stmt.Bind(1, t.run_id)
               .Bind(2, t.repo)
               .Bind(3, t.number)
               .Bind(4, t.role)
               .Bind(5, t.event_seq)
               .Bind(6, t.comment_id)
               .Bind(7, t.shown_state)
               .Run());
  return txn.Commit();
}

Status State::SetComment(const std::string& run_id, int64_t comment_id) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt,
                        db_.Prepare("recording a progress comment",
                                    "UPDATE pipeline_runs SET comment_id = ?2 WHERE run_id = ?1"));
  return stmt.Bind(1, run_id).Bind(2, comment_id).Run();
}

Status State::SetShown(const std::string& run_id, const std::string& state) {
  return SetText("recording a progress comment's state",
                 "UPDATE pipeline_runs SET shown_state = ?2 WHERE run_id = ?1", run_id, state);
}

Status State::MarkApplied(const std::string& run_id, const std::string& outcome, int64_t now_ms) {
  std::lock_guard lock(mu_);
  const std::string what = "recording an applied result";
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, what));
  KILN_TRY(CheckFence(what));
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_.Prepare(what,
                  "UPDATE pipeline_runs SET outcome = ?2, applied_ms = ?3 WHERE run_id = ?1"));
  KILN_TRY(stmt.Bind(1, run_id).Bind(2, outcome).Bind(3, now_ms).Run());
  return txn.Commit();
}

Status State::SetOutcome(const std::string& run_id, const std::string& outcome) {
  std::lock_guard lock(mu_);
  const std::string what = "recording a result being applied";
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, what));
  KILN_TRY(CheckFence(what));
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt, db_.Prepare(what, "UPDATE pipeline_runs SET outcome = ?2 WHERE run_id = ?1"));
  KILN_TRY(stmt.Bind(1, run_id).Bind(2, outcome).Run());
  return txn.Commit();
}

namespace {

Result<Lead> ReadLeadOn(sql::Db& db) {
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt,
                        db.Prepare("reading the pipeline's lead",
                                   "SELECT holder, epoch, expires_ms FROM pipeline_lead "
                                   "WHERE name = 'pipeline'"));
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Lead{};
  return Lead{stmt.Text(0), stmt.Int(1), stmt.Int(2)};
}

// Ok when the lead is still fence's; otherwise the refusal for doing.
Status Held(const Lead& now, const Lead& fence, const std::string& doing) {
  if (now.holder == fence.holder && now.epoch == fence.epoch) return Ok();
  return Error(Error::Code::kPermission, doing + ": the pipeline's lead passed to " +
                                             Quote(now.holder) + " (epoch " +
                                             std::to_string(now.epoch) + ", ours " +
                                             std::to_string(fence.epoch) + "): nothing written");
}

}  // namespace

Result<Lead> State::ReadLead() { return ReadLeadOn(db_); }

Result<Lead> State::TakeLead(const std::string& host, int64_t now_ms, int64_t lease_ms) {
  std::lock_guard lock(mu_);
  const std::string what = "taking the pipeline's lead";
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, what));
  KILN_ASSIGN_OR_RETURN(Lead lead, ReadLead());
  if (lead.holder != host && lead.expires_ms >= now_ms) return lead;  // another host's, still
  if (lead.holder != host) ++lead.epoch;  // taken over (or first taken): a new epoch
  lead.holder = host;
  lead.expires_ms = now_ms + lease_ms;
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_.Prepare(what,
                  "INSERT INTO pipeline_lead (name, holder, epoch, expires_ms) "
                  "VALUES ('pipeline', ?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET "
                  "holder = excluded.holder, epoch = excluded.epoch, "
                  "expires_ms = excluded.expires_ms"));
  KILN_TRY(stmt.Bind(1, host).Bind(2, lead.epoch).Bind(3, lead.expires_ms).Run());
  KILN_TRY(txn.Commit());
  return lead;
}

Status State::ReleaseLead(const std::string& host) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt,
                        db_.Prepare("giving the pipeline's lead up",
                                    "UPDATE pipeline_lead SET expires_ms = 0 WHERE holder = ?1"));
  return stmt.Bind(1, host).Run();
}

void State::Fence(const std::string& host, int64_t epoch) {
  std::lock_guard lock(mu_);
  fence_ = Lead{host, epoch, 0};
}

Status State::Leads(const std::string& doing) {
  std::lock_guard lock(mu_);
  return CheckFence(doing);
}

Status State::CheckFence(const std::string& doing) {
  if (!fence_) return Ok();
  KILN_ASSIGN_OR_RETURN(Lead now, ReadLead());
  return Held(now, *fence_, doing);
}

Status State::LeadsOn(sql::Db& db, const std::string& doing) {
  std::optional<Lead> fence;
  {
    std::lock_guard lock(mu_);
    fence = fence_;
  }
  if (!fence) return Ok();
  KILN_ASSIGN_OR_RETURN(Lead now, ReadLeadOn(db));
  return Held(now, *fence, doing);
}

Status State::SetText(const std::string& what, const std::string& sql, const std::string& run_id,
                      const std::string& value) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt, db_.Prepare(what, sql));
  return stmt.Bind(1, run_id).Bind(2, value).Run();
}

Result<std::vector<Tracked>> State::Select(const std::string& where,
                                           const std::vector<std::string>& args) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_.Prepare(
          "reading pipeline runs",
          "SELECT run_id, repo, number, role, event_seq, comment_id, shown_state, "
          "applied_ms, outcome FROM pipeline_runs " +
              where +
              // In the order tracked: PostgreSQL's table numbers its rows.
              (db_.dialect() == sql::Dialect::kSqlite ? " ORDER BY rowid" : " ORDER BY seq")));
  for (size_t i = 0; i < args.size(); ++i) stmt.Bind(static_cast<int>(i + 1), args[i]);
  std::vector<Tracked> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    Tracked t;
    t.run_id = stmt.Text(0);
    t.repo = stmt.Text(1);
    t.number = stmt.Int(2);
    t.role = stmt.Text(3);
    t.event_seq = stmt.Int(4);
    t.comment_id = stmt.Int(5);
    t.shown_state = stmt.Text(6);
    t.applied_ms = stmt.Int(7);
    t.outcome = stmt.Text(8);
    out.push_back(std::move(t));
  }
}

Result<std::vector<Tracked>> State::Unapplied() { return Select("WHERE applied_ms = 0", {}); }

Result<std::vector<Tracked>> State::ForRepo(const std::string& repo) {
  return Select("WHERE repo = ?1", {repo});
}

Result<std::vector<Tracked>> State::ForIssue(const std::string& repo, int64_t number,
                                             const std::string& role) {
  return Select("WHERE repo = ?1 AND number = CAST(?2 AS BIGINT) AND (?3 = '' OR role = ?3)",
                {repo, std::to_string(number), role});
}

}  // namespace kiln::pipeline
