// Logs left without run.end by a writer that stopped — a full disk, a log
// file that could not be written, a controller killed (on a fleet, its run is
// rescued by another host, which writes a log of its own) — are continued and
// closed as soon as their disk allows: a signed `recovery` record saying why, then `run.end` with
// status `error`. The run's own attempt tries at once; what it could not do
// (the disk still full) the sweeper does later: `kiln serve` sweeps at start
// and every minute, `kiln run` before it runs.
//
// A log some writer still holds (a run in flight, here or in another kiln
// process) is locked (flock) and left alone. Not thread-safe: one sweeper per
// loop.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/sessionlog/signer.h"

namespace kiln::log_recovery {

class Sweeper {
 public:
  // settle_seconds: a log modified more recently is left for the next sweep
  // (its writer takes the lock a moment after creating it).
  Sweeper(std::string log_dir, std::shared_ptr<const sessionlog::Signer> signer,
          int settle_seconds = 5)
      : log_dir_(std::move(log_dir)), signer_(std::move(signer)), settle_(settle_seconds) {}

  // Closes every unfinished, unheld log in the directory; returns how many.
  // A log found complete, or one that cannot be recovered (damaged, not
  // just cut short), is not read again while its size and modification time
  // stay the same. Those are kept in <log_dir>/.settled as well, so that a
  // new process (each `kiln run` is one) reads only what changed, not every
  // log the host ever wrote.
  size_t Sweep();

 private:
  struct Seen {
    int64_t size = -1, mtime_ns = -1;
    bool settled = false;  // complete, or beyond recovery: not read again unless it changes
    friend bool operator==(const Seen&, const Seen&) = default;
  };
  void LoadSettled();
  void SaveSettled() const;

  std::string log_dir_;
  std::shared_ptr<const sessionlog::Signer> signer_;
  int settle_;
  std::map<std::string, Seen> seen_;
  bool loaded_ = false;
};

// Continues a log whose writer stopped without run.end (a crash, a full
// disk) with a signed `recovery` record giving reason, and closes it with
// run_end. Returns the log's head, also when it was closed already. Fails
// (kPermission) while another writer holds it.
Result<std::string> CloseStoppedLog(const std::string& path,
                                    std::shared_ptr<const sessionlog::Signer> signer,
                                    std::string_view reason, const nlohmann::json& run_end);

// Whether the file's last line is a whole `run.end` record.
bool EndsWithRunEnd(const std::string& path);

}  // namespace kiln::log_recovery
