// The embedded SQLite backend of the run store (docs/store.md).
//
// One connection per Store, its use serialised by a mutex. Every
// read-modify-write runs inside BEGIN IMMEDIATE, which takes the database's
// write lock before the first read, so two connections (threads with their own
// Store, or `kiln runs` next to `kiln serve`) never act on the same stale
// state: two claims cannot pick the same run, nor both take the last free slot.
// Single SELECTs need no transaction: in WAL mode each reads one consistent
// snapshot without blocking writers.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

#include "controller/store/postgres.h"
#include "controller/store/rows.h"
#include "controller/store/run_id.h"
#include "controller/store/schema.h"
#include "controller/store/sql.h"
#include "controller/store/store.h"

namespace kiln::store {
namespace {

// How long a writer waits for another connection's write lock.
constexpr int kBusyTimeoutMs = 5'000;

// Steps stmt (a SELECT of kRunColumns) to the end.
Result<std::vector<Run>> AllRuns(const sql::Db& db, sql::Stmt& stmt) {
  std::vector<Run> runs;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return runs;
    KILN_ASSIGN_OR_RETURN(Run run, ReadRun(db.name(), stmt));
    runs.push_back(std::move(run));
  }
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sql::Db db) : db_(std::move(db)) {}

  Result<Run> Enqueue(const RunRequest& request, int64_t now_ms) override;
  Result<Run> StartNew(const RunRequest& request, std::string_view owner, int64_t now_ms) override;
  Result<std::optional<Run>> Claim(const ClaimLimits& limits, std::string_view owner,
                                   int64_t now_ms, int64_t lease_ms) override;
  kiln::Status SetProgress(std::string_view id, const Progress& progress, int64_t epoch) override;
  kiln::Status Complete(std::string_view id, const Finish& finish, int64_t now_ms,
                        int64_t epoch) override;
  Result<bool> FailInfrastructure(std::string_view id, std::string_view error,
                                  const RetryPolicy& policy, int64_t now_ms,
                                  int64_t epoch) override;
  kiln::Status Holds(std::string_view id, int64_t epoch) override;
  Result<std::vector<std::string>> Renew(std::string_view owner, int64_t lease_ms,
                                         int64_t now_ms) override;
  Result<std::vector<Rescue>> RescueExpired(std::string_view rescuer, bool requeue,
                                            int64_t now_ms) override;
  kiln::Status Beat(const Host& host, int64_t now_ms) override;
  Result<std::vector<Host>> Hosts() override;
  Result<Run> RequestCancel(std::string_view id, int64_t now_ms) override;
  Result<Run> Start(std::string_view id, std::string_view owner, int64_t now_ms) override;
  kiln::Status AddSteering(std::string_view id, std::string_view from, std::string_view message,
                           int64_t now_ms) override;
  Result<std::vector<Steering>> TakeSteering(std::string_view id) override;
  Result<Run> Get(std::string_view id) override;
  Result<std::vector<Run>> List(const ListFilter& filter) override;
  Result<std::vector<Run>> Running() override;
  Result<std::map<Status, uint64_t>> CountByStatus() override;

 private:
  // The run with id; kNotFound "no run 'ID'" when there is none. mu_ held.
  Result<Run> Load(std::string_view id);
  // Adds the request as a queued run. mu_ held.
  Result<Run> Insert(const RunRequest& request, int64_t now_ms);
  // Marks run id running for owner: attempt + 1, epoch + 1, started_ms, a
  // lease of lease_ms (none for 0). mu_ held.
  Result<Run> MarkStarted(std::string_view id, std::string_view owner, int64_t now_ms,
                          int64_t lease_ms);
  // Load, then CheckHeld. mu_ held.
  Result<Run> LoadHeld(std::string_view id, std::string_view what, int64_t epoch);
  // Runs in state running, whoever owns them. mu_ held.
  Result<int64_t> CountRunning();
  // The id of the first queued run in queue order (priority, then enqueue)
  // that is due, not cancelled, and whose repository is below its limit.
  Result<std::optional<std::string>> NextClaimable(const ClaimLimits& limits, int64_t now_ms);

  std::mutex mu_;
  sql::Db db_;  // guarded by mu_
};

Result<Run> SqliteStore::Load(std::string_view id) {
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt, db_.Prepare("reading a run", SelectRuns("WHERE id = ?1")));
  stmt.Bind(1, id);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Error::NotFound("no run " + Quote(id));
  return ReadRun(db_.name(), stmt);
}

Result<int64_t> SqliteStore::CountRunning() {
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt, db_.Prepare("counting running runs",
                                                    "SELECT COUNT(*) FROM runs WHERE status = ?1"));
  stmt.Bind(1, Name(Status::kRunning));
  KILN_TRY(stmt.Step());
  return stmt.Int(0);
}

Result<std::optional<std::string>> SqliteStore::NextClaimable(const ClaimLimits& limits,
                                                              int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_.Prepare("picking the next run",
                  "SELECT q.id FROM runs AS q "
                  "WHERE q.status = ?1 AND q.cancel_requested = 0 AND q.not_before_ms <= ?2 "
                  "AND (SELECT COUNT(*) FROM runs AS r WHERE r.status = ?3 AND r.repo = q.repo)"
                  " < ?4 "
                  "ORDER BY q.priority DESC, q.seq LIMIT 1"));
  stmt.Bind(1, Name(Status::kQueued))
      .Bind(2, now_ms)
      .Bind(3, Name(Status::kRunning))
      .Bind(4, limits.max_running_per_repo);
  KILN_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return std::optional<std::string>();
  return std::optional<std::string>(stmt.Text(0));
}

Result<Run> SqliteStore::LoadHeld(std::string_view id, std::string_view what, int64_t epoch) {
  KILN_ASSIGN_OR_RETURN(Run run, Load(id));
  KILN_TRY(CheckHeld(what, run, epoch));
  return run;
}

Result<Run> SqliteStore::Enqueue(const RunRequest& request, int64_t now_ms) {
  std::lock_guard lock(mu_);
  return Insert(request, now_ms);
}

Result<Run> SqliteStore::StartNew(const RunRequest& request, std::string_view owner,
                                  int64_t now_ms) {
  if (owner.empty()) return Error::Invalid("starting a new run: no owner");
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "starting a new run"));
  KILN_ASSIGN_OR_RETURN(Run run, Insert(request, now_ms));
  KILN_ASSIGN_OR_RETURN(run, MarkStarted(run.id, owner, now_ms, 0));
  KILN_TRY(txn.Commit());
  return run;
}

Result<Run> SqliteStore::Insert(const RunRequest& request, int64_t now_ms) {
  KILN_TRY(CheckRequest(request));
  Run run;
  KILN_ASSIGN_OR_RETURN(run.id, NewRunId(now_ms));
  run.request = request;
  run.status = Status::kQueued;
  run.created_ms = now_ms;
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_.Prepare("enqueueing a run",
                  "INSERT INTO runs (id, role, repo, revision, task, priority, budgets, "
                  "requested_by, max_attempts, status, created_ms, context) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"));
  stmt.Bind(1, run.id)
      .Bind(2, request.role)
      .Bind(3, request.repo)
      .Bind(4, request.commit)
      .Bind(5, request.task)
      .Bind(6, request.priority)
      .Bind(7, DumpJson(request.budgets))
      .Bind(8, request.requested_by)
      .Bind(9, request.max_attempts)
      .Bind(10, Name(Status::kQueued))
      .Bind(11, now_ms)
      .Bind(12, DumpJson(request.context));
  KILN_TRY(stmt.Run());
  return run;
}

Result<std::optional<Run>> SqliteStore::Claim(const ClaimLimits& limits, std::string_view owner,
                                              int64_t now_ms, int64_t lease_ms) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "claiming a run"));
  KILN_ASSIGN_OR_RETURN(int64_t running, CountRunning());
  if (running >= limits.max_running) return std::optional<Run>();
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> next, NextClaimable(limits, now_ms));
  if (!next) return std::optional<Run>();
  KILN_ASSIGN_OR_RETURN(Run run, MarkStarted(*next, owner, now_ms, lease_ms));
  KILN_TRY(txn.Commit());
  return std::optional<Run>(std::move(run));
}

kiln::Status SqliteStore::SetProgress(std::string_view id, const Progress& progress,
                                      int64_t epoch) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "recording progress"));
  KILN_TRY(LoadHeld(id, "recording progress", epoch));
  // NULLIF(?, ''): an empty field leaves the column as it is.
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt update,
      db_.Prepare("recording progress",
                  "UPDATE runs SET commit_sha = COALESCE(NULLIF(?2, ''), commit_sha), "
                  "image_digest = COALESCE(NULLIF(?3, ''), image_digest), "
                  "sandbox_id = COALESCE(NULLIF(?4, ''), sandbox_id), "
                  "log_path = COALESCE(NULLIF(?5, ''), log_path), "
                  "log_head = COALESCE(NULLIF(?6, ''), log_head), "
                  "live = COALESCE(NULLIF(?7, ''), live) WHERE id = ?1"));
  update.Bind(1, id)
      .Bind(2, progress.commit_sha)
      .Bind(3, progress.image_digest)
      .Bind(4, progress.sandbox_id)
      .Bind(5, progress.log_path)
      .Bind(6, progress.log_head)
      .Bind(7, progress.live.is_null() ? "" : DumpJson(progress.live));
  KILN_TRY(update.Run());
  return txn.Commit();
}

kiln::Status SqliteStore::Complete(std::string_view id, const Finish& finish, int64_t now_ms,
                                   int64_t epoch) {
  if (!IsTerminal(finish.status)) {
    return Error::Invalid("completing run " + Quote(id) + ": status " +
                          Quote(ToString(finish.status)) + " is not terminal");
  }
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "completing a run"));
  KILN_TRY(LoadHeld(id, "completing a run", epoch));
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt update,
      db_.Prepare("completing a run",
                  "UPDATE runs SET status = ?2, finished_ms = ?3, outcome = ?4, result = ?5, "
                  "error = ?6, log_head = COALESCE(NULLIF(?7, ''), log_head), "
                  "lease_expires_ms = 0, live = '' WHERE id = ?1"));
  update.Bind(1, id)
      .Bind(2, Name(finish.status))
      .Bind(3, now_ms)
      .Bind(4, finish.outcome)
      .Bind(5, DumpJson(finish.result))
      .Bind(6, finish.error)
      .Bind(7, finish.log_head);
  KILN_TRY(update.Run());
  return txn.Commit();
}

Result<bool> SqliteStore::FailInfrastructure(std::string_view id, std::string_view error,
                                             const RetryPolicy& policy, int64_t now_ms,
                                             int64_t epoch) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "failing a run"));
  KILN_ASSIGN_OR_RETURN(Run run, LoadHeld(id, "failing a run", epoch));
  const bool retry = run.attempt < run.request.max_attempts && !run.cancel_requested;
  if (retry) {
    KILN_ASSIGN_OR_RETURN(
        sql::Stmt update,
        db_.Prepare("requeueing a run",
                    "UPDATE runs SET status = ?2, owner = '', not_before_ms = ?3, error = ?4, "
                    "lease_expires_ms = 0, live = '' WHERE id = ?1"));
    update.Bind(1, id)
        .Bind(2, Name(Status::kQueued))
        .Bind(3, now_ms + Backoff(policy, run.attempt))
        .Bind(4, error);
    KILN_TRY(update.Run());
  } else {
    KILN_ASSIGN_OR_RETURN(sql::Stmt update,
                          db_.Prepare("failing a run",
                                      "UPDATE runs SET status = ?2, finished_ms = ?3, error = ?4, "
                                      "lease_expires_ms = 0, live = '' WHERE id = ?1"));
    update.Bind(1, id).Bind(2, Name(Status::kError)).Bind(3, now_ms).Bind(4, error);
    KILN_TRY(update.Run());
  }
  KILN_TRY(txn.Commit());
  return retry;
}

Result<Run> SqliteStore::RequestCancel(std::string_view id, int64_t now_ms) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "cancelling a run"));
  KILN_ASSIGN_OR_RETURN(Run run, Load(id));
  if (IsTerminal(run.status)) {
    return Error::Invalid("cannot cancel run " + Quote(id) + ": it has already ended as " +
                          Name(run.status));
  }
  // A queued run ends here; a running one is flagged for its owner to stop.
  const bool queued = run.status == Status::kQueued;
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt update,
      db_.Prepare("cancelling a run",
                  "UPDATE runs SET cancel_requested = 1, status = ?2, finished_ms = ?3 "
                  "WHERE id = ?1"));
  update.Bind(1, id)
      .Bind(2, Name(queued ? Status::kCancelled : run.status))
      .Bind(3, queued ? now_ms : run.finished_ms);
  KILN_TRY(update.Run());
  KILN_ASSIGN_OR_RETURN(run, Load(id));
  KILN_TRY(txn.Commit());
  return run;
}

Result<Run> SqliteStore::Start(std::string_view id, std::string_view owner, int64_t now_ms) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "starting a run"));
  KILN_ASSIGN_OR_RETURN(Run run, Load(id));
  if (run.status != Status::kQueued || run.cancel_requested) {
    return Error::Invalid("cannot start run " + Quote(id) + ": it is " + Name(run.status) +
                          (run.cancel_requested ? " (cancel requested)" : ""));
  }
  KILN_ASSIGN_OR_RETURN(run, MarkStarted(id, owner, now_ms, 0));
  KILN_TRY(txn.Commit());
  return run;
}

Result<Run> SqliteStore::MarkStarted(std::string_view id, std::string_view owner, int64_t now_ms,
                                     int64_t lease_ms) {
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt update,
      db_.Prepare("starting a run",
                  "UPDATE runs SET status = ?2, attempt = attempt + 1, epoch = epoch + 1, "
                  "started_ms = ?3, owner = ?4, lease_expires_ms = ?5 WHERE id = ?1"));
  update.Bind(1, id)
      .Bind(2, Name(Status::kRunning))
      .Bind(3, now_ms)
      .Bind(4, owner)
      .Bind(5, lease_ms > 0 ? now_ms + lease_ms : 0);
  KILN_TRY(update.Run());
  return Load(id);
}

kiln::Status SqliteStore::Holds(std::string_view id, int64_t epoch) {
  std::lock_guard lock(mu_);
  KILN_TRY(LoadHeld(id, "checking the claim", epoch));
  return Ok();
}

Result<std::vector<std::string>> SqliteStore::Renew(std::string_view owner, int64_t lease_ms,
                                                    int64_t now_ms) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt update,
      db_.Prepare("renewing leases",
                  "UPDATE runs SET lease_expires_ms = ?3 WHERE owner = ?1 AND status = ?2 "
                  "AND lease_expires_ms > 0 RETURNING id"));
  update.Bind(1, owner).Bind(2, Name(Status::kRunning)).Bind(3, now_ms + lease_ms);
  std::vector<std::string> ids;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, update.Step());
    if (!row) break;
    ids.push_back(update.Text(0));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<std::vector<Rescue>> SqliteStore::RescueExpired(std::string_view rescuer, bool requeue,
                                                       int64_t now_ms) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "rescuing runs"));
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt select,
      db_.Prepare("rescuing runs", SelectRuns("WHERE status = ?1 AND lease_expires_ms > 0 "
                                              "AND lease_expires_ms < ?2 ORDER BY seq")));
  select.Bind(1, Name(Status::kRunning)).Bind(2, now_ms);
  KILN_ASSIGN_OR_RETURN(std::vector<Run> expired, AllRuns(db_, select));
  std::vector<Rescue> rescued;
  for (const Run& run : expired) {
    const Status now_status = RescuedStatus(run, requeue);
    KILN_ASSIGN_OR_RETURN(
        sql::Stmt update,
        db_.Prepare("rescuing a run",
                    "UPDATE runs SET status = ?2, epoch = epoch + 1, owner = '', "
                    "lease_expires_ms = 0, not_before_ms = ?3, finished_ms = ?4, error = ?5 "
                    "WHERE id = ?1"));
    update.Bind(1, run.id)
        .Bind(2, Name(now_status))
        .Bind(3, now_ms)
        .Bind(4, IsTerminal(now_status) ? now_ms : 0)
        .Bind(5, RescueError(rescuer, run));
    KILN_TRY(update.Run());
    rescued.push_back({run.id, run.owner, now_status});
  }
  KILN_TRY(txn.Commit());
  return rescued;
}

kiln::Status SqliteStore::Beat(const Host& host, int64_t now_ms) {
  if (host.name.empty()) return Error::Invalid("recording a host: no name");
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt upsert,
      db_.Prepare("recording a host",
                  "INSERT INTO hosts (name, capacity, version, started_ms, heartbeat_ms, url, "
                  "log_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO UPDATE SET "
                  "capacity = excluded.capacity, version = excluded.version, "
                  "started_ms = excluded.started_ms, heartbeat_ms = excluded.heartbeat_ms, "
                  "url = excluded.url, log_key = excluded.log_key"));
  upsert.Bind(1, host.name)
      .Bind(2, host.capacity)
      .Bind(3, host.version)
      .Bind(4, host.started_ms)
      .Bind(5, now_ms)
      .Bind(6, host.url)
      .Bind(7, host.log_key);
  return upsert.Run();
}

Result<std::vector<Host>> SqliteStore::Hosts() {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt select,
      db_.Prepare("listing hosts",
                  "SELECT name, capacity, version, started_ms, heartbeat_ms, url, log_key "
                  "FROM hosts ORDER BY name"));
  std::vector<Host> hosts;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) return hosts;
    hosts.push_back({select.Text(0), static_cast<int>(select.Int(1)), select.Text(2), select.Int(3),
                     select.Int(4), select.Text(5), select.Text(6)});
  }
}

kiln::Status SqliteStore::AddSteering(std::string_view id, std::string_view from,
                                      std::string_view message, int64_t now_ms) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "steering a run"));
  KILN_ASSIGN_OR_RETURN(Run run, Load(id));
  if (IsTerminal(run.status)) {
    return Error::Invalid("cannot steer run " + Quote(id) + ": it has already ended as " +
                          Name(run.status));
  }
  KILN_ASSIGN_OR_RETURN(sql::Stmt insert,
                        db_.Prepare("steering a run",
                                    "INSERT INTO steering (run_id, sender, message, created_ms) "
                                    "VALUES (?1, ?2, ?3, ?4)"));
  insert.Bind(1, id).Bind(2, from).Bind(3, message).Bind(4, now_ms);
  KILN_TRY(insert.Run());
  return txn.Commit();
}

Result<std::vector<Steering>> SqliteStore::TakeSteering(std::string_view id) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::Begin(db_, "taking steering messages"));
  KILN_ASSIGN_OR_RETURN(sql::Stmt select,
                        db_.Prepare("taking steering messages",
                                    "SELECT sender, message, created_ms FROM steering "
                                    "WHERE run_id = ?1 AND taken = 0 ORDER BY seq"));
  select.Bind(1, id);
  std::vector<Steering> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    out.push_back({select.Text(0), select.Text(1), select.Int(2)});
  }
  if (out.empty()) return out;
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt update,
      db_.Prepare("taking steering messages",
                  "UPDATE steering SET taken = 1 WHERE run_id = ?1 AND taken = 0"));
  update.Bind(1, id);
  KILN_TRY(update.Run());
  KILN_TRY(txn.Commit());
  return out;
}

Result<Run> SqliteStore::Get(std::string_view id) {
  std::lock_guard lock(mu_);
  return Load(id);
}

Result<std::vector<Run>> SqliteStore::List(const ListFilter& filter) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_.Prepare("listing runs",
                  SelectRuns("WHERE (?1 IS NULL OR status = ?1) AND (?2 = '' OR role = ?2) "
                             "AND (?3 = '' OR repo = ?3) ORDER BY seq DESC LIMIT ?4")));
  if (filter.status) {
    stmt.Bind(1, Name(*filter.status));
  } else {
    stmt.BindNull(1);
  }
  int64_t limit = -1;  // SQLite's "no limit", for filter.limit 0
  if (filter.limit > 0) {
    limit = static_cast<int64_t>(std::min<uint64_t>(filter.limit, INT64_MAX));
  }
  stmt.Bind(2, filter.role).Bind(3, filter.repo).Bind(4, limit);
  return AllRuns(db_, stmt);
}

Result<std::vector<Run>> SqliteStore::Running() {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(sql::Stmt stmt, db_.Prepare("listing running runs",
                                                    SelectRuns("WHERE status = ?1 ORDER BY seq")));
  stmt.Bind(1, Name(Status::kRunning));
  return AllRuns(db_, stmt);
}

Result<std::map<Status, uint64_t>> SqliteStore::CountByStatus() {
  std::map<Status, uint64_t> counts = NoCounts();
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      sql::Stmt stmt,
      db_.Prepare("counting runs", "SELECT status, COUNT(*) FROM runs GROUP BY status"));
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return counts;
    KILN_TRY(CountRow(db_.name(), stmt.Text(0), stmt.Int(1), &counts));
  }
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqlite(const std::string& path) {
  if (pg::IsUrl(path)) {
    return Error::Invalid("store " + Quote(pg::Redact(path)) + ": a PostgreSQL URL, not a file");
  }
  KILN_ASSIGN_OR_RETURN(sql::Db db, schema::Open(path, kBusyTimeoutMs));
  return std::unique_ptr<Store>(std::make_unique<SqliteStore>(std::move(db)));
}

}  // namespace kiln::store
