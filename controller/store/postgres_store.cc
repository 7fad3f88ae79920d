// The PostgreSQL backend of the run store (docs/store.md), for several
// `kiln serve` hosts sharing one queue.
//
// One connection per Store, its use serialised by a mutex. Every
// read-modify-write is one transaction that locks the run's row first
// (SELECT ... FOR UPDATE), so two hosts never act on the same stale state.
// Claims also take a transaction-scoped advisory lock: the limits are counts
// over every host's running runs, and two claims checking them at once could
// both take the last free slot. Under that lock, the candidate row is taken
// FOR UPDATE SKIP LOCKED, so a claim never waits on a row another writer
// holds (a cancel in flight): it takes the next one.
//
// A lost connection (the server restarted, the network cut) or a
// serialization failure is retried as a whole transaction, reconnecting,
// for up to kRetryFor; only then does the caller see the error.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <type_traits>

#include "controller/store/postgres.h"
#include "controller/store/rows.h"
#include "controller/store/run_id.h"
#include "controller/store/schema.h"
#include "controller/store/store.h"

namespace kiln::store {
namespace {

using pg::P;
using pg::Param;

constexpr auto kRetryFor = std::chrono::seconds(30);

// The claims' advisory lock ("kiln" and a number; sql.cc holds another),
// held for one transaction.
constexpr int64_t kClaimLock = 0x6b696c6e01;

// A row of pg::Rows as ReadRun reads one.
struct Row {
  const pg::Rows& rows;
  int row;
  std::string Text(int column) const { return rows.Text(row, column); }
  int64_t Int(int column) const { return rows.Int(row, column); }
};

class PgStore final : public Store {
 public:
  explicit PgStore(pg::Conn conn) : conn_(std::move(conn)) {}

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
  // Runs fn (which returns a Result) under mu_, inside BEGIN ... COMMIT
  // when transaction is set, again from the start after a retryable failure.
  template <typename F>
  std::invoke_result_t<F&> Retrying(bool transaction, F fn);
  template <typename F>
  std::invoke_result_t<F&> Transact(F fn) {
    return Retrying(true, std::move(fn));
  }
  template <typename F>
  std::invoke_result_t<F&> Read(F fn) {
    return Retrying(false, std::move(fn));
  }

  Result<pg::Rows> Exec(std::string_view what, std::string_view sql,
                        const std::vector<Param>& params = {}) {
    return conn_.Exec(what, sql, params);
  }
  // The one run rows holds; kNotFound naming id when it holds none.
  Result<Run> One(const pg::Rows& rows, std::string_view id);
  Result<std::vector<Run>> All(const pg::Rows& rows);
  // The run with id, its row locked until the transaction ends.
  Result<Run> Lock(std::string_view what, std::string_view id);
  // Lock, then CheckHeld.
  Result<Run> LockHeld(std::string_view what, std::string_view id, int64_t epoch);
  Result<Run> Insert(const RunRequest& request, int64_t now_ms);
  Result<Run> MarkStarted(std::string_view id, std::string_view owner, int64_t now_ms,
                          int64_t lease_ms);
  Result<std::optional<Run>> ClaimLocked(const ClaimLimits& limits, std::string_view owner,
                                         int64_t now_ms, int64_t lease_ms);

  std::mutex mu_;
  pg::Conn conn_;  // guarded by mu_
};

template <typename F>
std::invoke_result_t<F&> PgStore::Retrying(bool transaction, F fn) {
  std::lock_guard lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + kRetryFor;
  auto pause = std::chrono::milliseconds(50);
  for (;;) {
    auto out = [&]() -> std::invoke_result_t<F&> {
      if (transaction) KILN_TRY(Exec("beginning a transaction", "BEGIN"));
      auto result = fn();
      if (result.ok() && transaction) KILN_TRY(Exec("committing", "COMMIT"));
      return result;
    }();
    if (out.ok()) return out;
    const bool retry = conn_.Retryable();
    if (transaction) (void)Exec("rolling back", "ROLLBACK");
    if (!retry || std::chrono::steady_clock::now() >= deadline) return out;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(2'000));
    (void)conn_.Reconnect();  // a failure shows in the next attempt
  }
}

Result<Run> PgStore::One(const pg::Rows& rows, std::string_view id) {
  if (rows.size() == 0) return Error::NotFound("no run " + Quote(id));
  return ReadRun(conn_.name(), Row{rows, 0});
}

Result<std::vector<Run>> PgStore::All(const pg::Rows& rows) {
  std::vector<Run> runs;
  runs.reserve(static_cast<size_t>(rows.size()));
  for (int r = 0; r < rows.size(); ++r) {
    KILN_ASSIGN_OR_RETURN(Run run, ReadRun(conn_.name(), Row{rows, r}));
    runs.push_back(std::move(run));
  }
  return runs;
}

Result<Run> PgStore::Lock(std::string_view what, std::string_view id) {
  KILN_ASSIGN_OR_RETURN(pg::Rows rows, Exec(what, SelectRuns("WHERE id = $1 FOR UPDATE"), {P(id)}));
  return One(rows, id);
}

Result<Run> PgStore::LockHeld(std::string_view what, std::string_view id, int64_t epoch) {
  KILN_ASSIGN_OR_RETURN(Run run, Lock(what, id));
  KILN_TRY(CheckHeld(what, run, epoch));
  return run;
}

Result<Run> PgStore::Insert(const RunRequest& request, int64_t now_ms) {
  KILN_TRY(CheckRequest(request));
  Run run;
  KILN_ASSIGN_OR_RETURN(run.id, NewRunId(now_ms));
  run.request = request;
  run.status = Status::kQueued;
  run.created_ms = now_ms;
  KILN_TRY(Exec("enqueueing a run",
                "INSERT INTO runs (id, role, repo, revision, task, priority, budgets, "
                "requested_by, max_attempts, status, created_ms, context) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                {P(run.id), P(request.role), P(request.repo), P(request.commit), P(request.task),
                 P(request.priority), P(DumpJson(request.budgets)), P(request.requested_by),
                 P(request.max_attempts), P(Name(Status::kQueued)), P(now_ms),
                 P(DumpJson(request.context))}));
  return run;
}

Result<Run> PgStore::MarkStarted(std::string_view id, std::string_view owner, int64_t now_ms,
                                 int64_t lease_ms) {
  KILN_ASSIGN_OR_RETURN(
      pg::Rows rows,
      Exec("starting a run",
           "UPDATE runs SET status = $2, attempt = attempt + 1, epoch = epoch + 1, "
           "started_ms = $3, owner = $4, lease_expires_ms = $5 WHERE id = $1 RETURNING " +
               std::string(kRunColumns),
           {P(id), P(Name(Status::kRunning)), P(now_ms), P(owner),
            P(lease_ms > 0 ? now_ms + lease_ms : 0)}));
  return One(rows, id);
}

Result<Run> PgStore::Enqueue(const RunRequest& request, int64_t now_ms) {
  return Transact([&] { return Insert(request, now_ms); });
}

Result<Run> PgStore::StartNew(const RunRequest& request, std::string_view owner, int64_t now_ms) {
  if (owner.empty()) return Error::Invalid("starting a new run: no owner");
  return Transact([&]() -> Result<Run> {
    KILN_ASSIGN_OR_RETURN(Run run, Insert(request, now_ms));
    return MarkStarted(run.id, owner, now_ms, 0);
  });
}

Result<std::optional<Run>> PgStore::ClaimLocked(const ClaimLimits& limits, std::string_view owner,
                                                int64_t now_ms, int64_t lease_ms) {
  KILN_TRY(Exec("claiming a run", "SELECT pg_advisory_xact_lock($1)", {P(kClaimLock)}));
  // The queue in claim order from runs_queued, whatever the statistics say:
  // after a burst of runs, before autovacuum has analysed the table, the
  // planner takes the queue for a few rows and would read and sort all of it
  // at every claim (tests/bench/queue.sh).
  KILN_TRY(Exec("claiming a run", "SET LOCAL enable_bitmapscan = off"));
  KILN_ASSIGN_OR_RETURN(pg::Rows running,
                        Exec("counting running runs", "SELECT COUNT(*) FROM runs WHERE status = $1",
                             {P(Name(Status::kRunning))}));
  if (running.Int(0, 0) >= limits.max_running) return std::optional<Run>();
  KILN_ASSIGN_OR_RETURN(
      pg::Rows next,
      Exec("picking the next run",
           // The repositories at their limit, counted once (not once per
           // queued run: a queue of thousands would pay for each).
           "SELECT q.id FROM runs AS q "
           "WHERE q.status = $1 AND q.cancel_requested = 0 AND q.not_before_ms <= $2 "
           "AND q.repo NOT IN (SELECT r.repo FROM runs AS r WHERE r.status = $3 "
           "GROUP BY r.repo HAVING COUNT(*) >= $4) "
           "ORDER BY q.priority DESC, q.seq LIMIT 1 FOR UPDATE OF q SKIP LOCKED",
           {P(Name(Status::kQueued)), P(now_ms), P(Name(Status::kRunning)),
            P(limits.max_running_per_repo)}));
  if (next.size() == 0) return std::optional<Run>();
  KILN_ASSIGN_OR_RETURN(Run run, MarkStarted(next.Text(0, 0), owner, now_ms, lease_ms));
  return std::optional<Run>(std::move(run));
}

Result<std::optional<Run>> PgStore::Claim(const ClaimLimits& limits, std::string_view owner,
                                          int64_t now_ms, int64_t lease_ms) {
  return Transact([&] { return ClaimLocked(limits, owner, now_ms, lease_ms); });
}

kiln::Status PgStore::SetProgress(std::string_view id, const Progress& progress, int64_t epoch) {
  return Transact([&]() -> kiln::Status {
    KILN_TRY(LockHeld("recording progress", id, epoch));
    // NULLIF($n, ''): an empty field leaves the column as it is.
    KILN_TRY(Exec("recording progress",
                  "UPDATE runs SET commit_sha = COALESCE(NULLIF($2, ''), commit_sha), "
                  "image_digest = COALESCE(NULLIF($3, ''), image_digest), "
                  "sandbox_id = COALESCE(NULLIF($4, ''), sandbox_id), "
                  "log_path = COALESCE(NULLIF($5, ''), log_path), "
                  "log_head = COALESCE(NULLIF($6, ''), log_head), "
                  "live = COALESCE(NULLIF($7, ''), live) WHERE id = $1",
                  {P(id), P(progress.commit_sha), P(progress.image_digest), P(progress.sandbox_id),
                   P(progress.log_path), P(progress.log_head),
                   P(progress.live.is_null() ? std::string() : DumpJson(progress.live))}));
    return Ok();
  });
}

kiln::Status PgStore::Complete(std::string_view id, const Finish& finish, int64_t now_ms,
                               int64_t epoch) {
  if (!IsTerminal(finish.status)) {
    return Error::Invalid("completing run " + Quote(id) + ": status " +
                          Quote(ToString(finish.status)) + " is not terminal");
  }
  return Transact([&]() -> kiln::Status {
    KILN_TRY(LockHeld("completing a run", id, epoch));
    KILN_TRY(Exec("completing a run",
                  "UPDATE runs SET status = $2, finished_ms = $3, outcome = $4, result = $5, "
                  "error = $6, log_head = COALESCE(NULLIF($7, ''), log_head), "
                  "lease_expires_ms = 0, live = '' WHERE id = $1",
                  {P(id), P(Name(finish.status)), P(now_ms), P(finish.outcome),
                   P(DumpJson(finish.result)), P(finish.error), P(finish.log_head)}));
    return Ok();
  });
}

Result<bool> PgStore::FailInfrastructure(std::string_view id, std::string_view error,
                                         const RetryPolicy& policy, int64_t now_ms, int64_t epoch) {
  return Transact([&]() -> Result<bool> {
    KILN_ASSIGN_OR_RETURN(Run run, LockHeld("failing a run", id, epoch));
    const bool retry = run.attempt < run.request.max_attempts && !run.cancel_requested;
    if (retry) {
      KILN_TRY(Exec(
          "requeueing a run",
          "UPDATE runs SET status = $2, owner = '', not_before_ms = $3, error = $4, "
          "lease_expires_ms = 0, live = '' WHERE id = $1",
          {P(id), P(Name(Status::kQueued)), P(now_ms + Backoff(policy, run.attempt)), P(error)}));
    } else {
      KILN_TRY(Exec("failing a run",
                    "UPDATE runs SET status = $2, finished_ms = $3, error = $4, "
                    "lease_expires_ms = 0, live = '' WHERE id = $1",
                    {P(id), P(Name(Status::kError)), P(now_ms), P(error)}));
    }
    return retry;
  });
}

Result<Run> PgStore::RequestCancel(std::string_view id, int64_t now_ms) {
  return Transact([&]() -> Result<Run> {
    KILN_ASSIGN_OR_RETURN(Run run, Lock("cancelling a run", id));
    if (IsTerminal(run.status)) {
      return Error::Invalid("cannot cancel run " + Quote(id) + ": it has already ended as " +
                            Name(run.status));
    }
    // A queued run ends here; a running one is flagged for its owner to stop.
    const bool queued = run.status == Status::kQueued;
    KILN_ASSIGN_OR_RETURN(
        pg::Rows rows,
        Exec("cancelling a run",
             "UPDATE runs SET cancel_requested = 1, status = $2, finished_ms = $3 WHERE id = $1 "
             "RETURNING " +
                 std::string(kRunColumns),
             {P(id), P(Name(queued ? Status::kCancelled : run.status)),
              P(queued ? now_ms : run.finished_ms)}));
    return One(rows, id);
  });
}

Result<Run> PgStore::Start(std::string_view id, std::string_view owner, int64_t now_ms) {
  return Transact([&]() -> Result<Run> {
    KILN_ASSIGN_OR_RETURN(Run run, Lock("starting a run", id));
    if (run.status != Status::kQueued || run.cancel_requested) {
      return Error::Invalid("cannot start run " + Quote(id) + ": it is " + Name(run.status) +
                            (run.cancel_requested ? " (cancel requested)" : ""));
    }
    return MarkStarted(id, owner, now_ms, 0);
  });
}

kiln::Status PgStore::Holds(std::string_view id, int64_t epoch) {
  return Read([&]() -> kiln::Status {
    KILN_ASSIGN_OR_RETURN(pg::Rows rows,
                          Exec("checking the claim", SelectRuns("WHERE id = $1"), {P(id)}));
    KILN_ASSIGN_OR_RETURN(Run run, One(rows, id));
    return CheckHeld("checking the claim", run, epoch);
  });
}

Result<std::vector<std::string>> PgStore::Renew(std::string_view owner, int64_t lease_ms,
                                                int64_t now_ms) {
  return Transact([&]() -> Result<std::vector<std::string>> {
    KILN_ASSIGN_OR_RETURN(
        pg::Rows rows,
        Exec("renewing leases",
             "UPDATE runs SET lease_expires_ms = $3 WHERE owner = $1 AND status = $2 "
             "AND lease_expires_ms > 0 RETURNING id",
             {P(owner), P(Name(Status::kRunning)), P(now_ms + lease_ms)}));
    std::vector<std::string> ids;
    for (int r = 0; r < rows.size(); ++r) ids.push_back(rows.Text(r, 0));
    std::sort(ids.begin(), ids.end());
    return ids;
  });
}

Result<std::vector<Rescue>> PgStore::RescueExpired(std::string_view rescuer, bool requeue,
                                                   int64_t now_ms) {
  return Transact([&]() -> Result<std::vector<Rescue>> {
    // SKIP LOCKED: a run another host is rescuing (or its owner writing) is
    // left to it.
    KILN_ASSIGN_OR_RETURN(
        pg::Rows rows,
        Exec("rescuing runs",
             SelectRuns("WHERE status = $1 AND lease_expires_ms > 0 AND lease_expires_ms < $2 "
                        "ORDER BY seq FOR UPDATE SKIP LOCKED"),
             {P(Name(Status::kRunning)), P(now_ms)}));
    KILN_ASSIGN_OR_RETURN(std::vector<Run> expired, All(rows));
    std::vector<Rescue> rescued;
    for (const Run& run : expired) {
      const Status now_status = RescuedStatus(run, requeue);
      KILN_TRY(Exec("rescuing a run",
                    "UPDATE runs SET status = $2, epoch = epoch + 1, owner = '', "
                    "lease_expires_ms = 0, not_before_ms = $3, finished_ms = $4, error = $5 "
                    "WHERE id = $1",
                    {P(run.id), P(Name(now_status)), P(now_ms),
                     P(IsTerminal(now_status) ? now_ms : 0), P(RescueError(rescuer, run))}));
      rescued.push_back({run.id, run.owner, now_status});
    }
    return rescued;
  });
}

kiln::Status PgStore::Beat(const Host& host, int64_t now_ms) {
  if (host.name.empty()) return Error::Invalid("recording a host: no name");
  return Transact([&]() -> kiln::Status {
    KILN_TRY(
        Exec("recording a host",
             "INSERT INTO hosts (name, capacity, version, started_ms, heartbeat_ms, url, log_key) "
             "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO UPDATE SET "
             "capacity = excluded.capacity, version = excluded.version, "
             "started_ms = excluded.started_ms, heartbeat_ms = excluded.heartbeat_ms, "
             "url = excluded.url, log_key = excluded.log_key",
             {P(host.name), P(host.capacity), P(host.version), P(host.started_ms), P(now_ms),
              P(host.url), P(host.log_key)}));
    return Ok();
  });
}

Result<std::vector<Host>> PgStore::Hosts() {
  return Read([&]() -> Result<std::vector<Host>> {
    KILN_ASSIGN_OR_RETURN(
        pg::Rows rows,
        Exec("listing hosts",
             "SELECT name, capacity, version, started_ms, heartbeat_ms, url, log_key FROM hosts "
             "ORDER BY name"));
    std::vector<Host> hosts;
    for (int r = 0; r < rows.size(); ++r) {
      hosts.push_back({rows.Text(r, 0), static_cast<int>(rows.Int(r, 1)), rows.Text(r, 2),
                       rows.Int(r, 3), rows.Int(r, 4), rows.Text(r, 5), rows.Text(r, 6)});
    }
    return hosts;
  });
}

kiln::Status PgStore::AddSteering(std::string_view id, std::string_view from,
                                  std::string_view message, int64_t now_ms) {
  return Transact([&]() -> kiln::Status {
    KILN_ASSIGN_OR_RETURN(Run run, Lock("steering a run", id));
    if (IsTerminal(run.status)) {
      return Error::Invalid("cannot steer run " + Quote(id) + ": it has already ended as " +
                            Name(run.status));
    }
    KILN_TRY(Exec("steering a run",
                  "INSERT INTO steering (run_id, sender, message, created_ms) "
                  "VALUES ($1, $2, $3, $4)",
                  {P(id), P(from), P(message), P(now_ms)}));
    return Ok();
  });
}

Result<std::vector<Steering>> PgStore::TakeSteering(std::string_view id) {
  return Transact([&]() -> Result<std::vector<Steering>> {
    // One statement marks and returns them: two takers never get the same.
    KILN_ASSIGN_OR_RETURN(pg::Rows rows,
                          Exec("taking steering messages",
                               "UPDATE steering SET taken = 1 WHERE run_id = $1 AND taken = 0 "
                               "RETURNING seq, sender, message, created_ms",
                               {P(id)}));
    std::vector<std::pair<int64_t, Steering>> taken;
    for (int r = 0; r < rows.size(); ++r) {
      taken.push_back({rows.Int(r, 0), {rows.Text(r, 1), rows.Text(r, 2), rows.Int(r, 3)}});
    }
    std::sort(taken.begin(), taken.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<Steering> out;
    for (auto& [seq, s] : taken) out.push_back(std::move(s));
    return out;
  });
}

Result<Run> PgStore::Get(std::string_view id) {
  return Read([&]() -> Result<Run> {
    KILN_ASSIGN_OR_RETURN(pg::Rows rows,
                          Exec("reading a run", SelectRuns("WHERE id = $1"), {P(id)}));
    return One(rows, id);
  });
}

Result<std::vector<Run>> PgStore::List(const ListFilter& filter) {
  return Read([&]() -> Result<std::vector<Run>> {
    Param status = filter.status ? P(Name(*filter.status)) : Param();
    Param limit;  // NULL: no limit
    if (filter.limit > 0) {
      limit = P(static_cast<int64_t>(std::min<uint64_t>(filter.limit, INT64_MAX)));
    }
    KILN_ASSIGN_OR_RETURN(
        pg::Rows rows,
        Exec(
            "listing runs",
            SelectRuns("WHERE ($1::text IS NULL OR status = $1::text) "
                       "AND ($2::text = '' OR role = $2::text) "
                       "AND ($3::text = '' OR repo = $3::text) ORDER BY seq DESC LIMIT $4::bigint"),
            {status, P(filter.role), P(filter.repo), limit}));
    return All(rows);
  });
}

Result<std::vector<Run>> PgStore::Running() {
  return Read([&]() -> Result<std::vector<Run>> {
    KILN_ASSIGN_OR_RETURN(pg::Rows rows,
                          Exec("listing running runs", SelectRuns("WHERE status = $1 ORDER BY seq"),
                               {P(Name(Status::kRunning))}));
    return All(rows);
  });
}

Result<std::map<Status, uint64_t>> PgStore::CountByStatus() {
  return Read([&]() -> Result<std::map<Status, uint64_t>> {
    std::map<Status, uint64_t> counts = NoCounts();
    KILN_ASSIGN_OR_RETURN(
        pg::Rows rows, Exec("counting runs", "SELECT status, COUNT(*) FROM runs GROUP BY status"));
    for (int r = 0; r < rows.size(); ++r) {
      KILN_TRY(CountRow(conn_.name(), rows.Text(r, 0), rows.Int(r, 1), &counts));
    }
    return counts;
  });
}

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgres(const std::string& url) {
  if (!pg::IsUrl(url)) {
    return Error::Invalid("store " + Quote(pg::Redact(url)) +
                          ": not a PostgreSQL URL (postgres://user:password@host:port/database)");
  }
  // Migrated as every owner of tables opens the store; the connection is
  // then the store's own.
  KILN_ASSIGN_OR_RETURN(sql::Db db, schema::Open(url, 0));
  return std::unique_ptr<Store>(std::make_unique<PgStore>(std::move(*db.postgres())));
}

Result<std::unique_ptr<Store>> Open(const std::string& location) {
  if (pg::IsUrl(location)) return OpenPostgres(location);
  return OpenSqlite(location);
}

}  // namespace kiln::store
