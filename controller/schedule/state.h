// The scheduler's rows in the kiln store (its own schema track, "schedule";
// docs/store.md): per schedule the last tick handled, and every fire — a
// tick or a manual `kiln schedules run` — with its outcome: the run it
// started, or why it was skipped.
//
// The claim of a tick is a compare-and-set on the schedule's last tick inside
// one write transaction, so that several `kiln serve` on one store fire each
// tick once; the same transaction applies the single-flight rule (no new run
// while the schedule's last one is queued or running).
//
// Thread-safe (one mutex around one connection); several processes may share
// the file.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "controller/store/sql.h"

namespace kiln::schedule {

struct Fire {
  int64_t seq = 0;
  std::string name;
  std::string kind;     // "tick" or "manual"
  int64_t tick_ms = 0;  // the tick it is for; a manual fire's: when it was asked
  std::string outcome;  // "claimed" (its run not yet queued), "fired" or "skipped"
  std::string host;     // the owner that claimed it
  int64_t claimed_ms = 0;
  std::string run_id;  // fired: the run
  std::string reason;  // skipped: why
};

struct Totals {
  uint64_t fires = 0;  // fired, ticks and manual
  uint64_t skips = 0;
  // The last fired tick's lateness: from the tick to its claim (jitter
  // included); -1 before the first.
  int64_t last_lateness_ms = -1;
};

class State {
 public:
  static Result<std::unique_ptr<State>> Open(const std::string& store_path);

  // The last tick handled of a schedule; a schedule the store has never seen
  // is recorded with now_ms, so that it counts its ticks from its first sight.
  Result<int64_t> LastTick(std::string_view name, int64_t now_ms);

  // Claims tick for host, when the schedule's last tick is still `from`
  // (nullopt: another claimed it first). The fire is "claimed", or "skipped"
  // with the reason when the schedule's previous run is still active.
  Result<std::optional<Fire>> ClaimTick(std::string_view name, int64_t from, int64_t tick,
                                        std::string_view host, int64_t now_ms);
  // A manual fire: the same single-flight rule, the last tick unchanged.
  Result<Fire> ClaimManual(std::string_view name, std::string_view host, int64_t now_ms);

  // A claimed fire's end: "fired" with its run, or "skipped" with the reason.
  Status SetOutcome(int64_t seq, std::string_view outcome, std::string_view run_id,
                    std::string_view reason);

  // Fires claimed before older_than_ms whose run was never queued (their
  // host died between the claim and the queue), taken over for host; each is
  // returned to one caller only.
  Result<std::vector<Fire>> TakeOverOrphans(std::string_view host, int64_t older_than_ms,
                                            int64_t now_ms);

  // The last tick handled; nullopt for a schedule the store has not seen.
  Result<std::optional<int64_t>> PeekLastTick(std::string_view name);
  // The latest fire of a schedule; nullopt before the first.
  Result<std::optional<Fire>> Last(std::string_view name);
  Result<Totals> TotalsOf(std::string_view name);

 private:
  explicit State(store::sql::Db db) : db_(std::move(db)) {}
  // Why a new fire of name must be skipped now; empty when it may run. Inside
  // the caller's transaction.
  Result<std::string> Active(std::string_view name);
  Result<Fire> Insert(std::string_view name, std::string_view kind, int64_t tick,
                      std::string_view host, int64_t now_ms);

  std::mutex mu_;
  store::sql::Db db_;  // guarded by mu_
};

}  // namespace kiln::schedule
