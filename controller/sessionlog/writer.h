// The session log writer: appends hash-chained records to one file per run,
// signs checkpoints, moves large payloads to blobs and redacts secrets.
//
// Usage: Create() (or Recover() after a crash), AddSecret() for every scoped
// secret, Append("run.start", ...) first, then the run's records, then
// Close(run_end_payload). Records are never rewritten: each is one write() on
// an O_APPEND descriptor; a crash mid-write leaves a torn last line that the
// verifier reports as truncation and Recover() acknowledges.
//
// A Writer destroyed without Close() leaves the log without run.end, exactly
// as a crash would; Recover() continues it.
//
// Thread-safe: appends from several threads are serialised.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/digest.h"
#include "base/fd.h"
#include "base/result.h"
#include "controller/sessionlog/record.h"
#include "controller/sessionlog/request_body.h"
#include "controller/sessionlog/secrets.h"
#include "controller/sessionlog/signer.h"

namespace kiln::sessionlog {

enum class Durability {
  kNone,         // never fsync (tests, benchmarks)
  kCheckpoint,   // fsync at each checkpoint, at close and after each blob
  kEveryRecord,  // fsync after every record
};

struct WriterOptions {
  // Write a checkpoint after this many records since the last one; 0: never
  // by count.
  uint64_t checkpoint_every = 1000;
  // ... or on the first append this long after the last checkpoint; 0: never
  // by time. Call Writer::Checkpoint() from a timer to bound it when idle.
  uint64_t checkpoint_interval_ms = 30'000;
  // Payloads whose canonical form is longer go to a blob file.
  size_t blob_threshold = 64 * 1024;
  // Where blobs are written; empty: the "blobs" directory beside the log.
  std::string blob_dir;
  Durability durability = Durability::kCheckpoint;
  // Nanoseconds since the Unix epoch for `ts`; empty: CLOCK_REALTIME.
  std::function<int64_t()> clock;
  // Called once, with the reason, when the log stops accepting records: a
  // write or blob failed (a full disk), or the file was deleted, truncated or
  // written by someone else. Called under the writer's lock, from whichever
  // thread appended: it must only take note (the controller wakes the run's
  // thread, which stops the sandbox).
  std::function<void(const std::string& reason)> on_failure;
};

struct Appended {
  uint64_t seq = 0;
  Digest hash{};  // SHA-256 of the record line: the next record's prev
};

class Writer {
 public:
  // Creates a new log at path (it must not exist) for run_id
  // ([A-Za-z0-9._:-]{1,128}), signing with signer.
  static Result<std::unique_ptr<Writer>> Create(const std::string& path, std::string_view run_id,
                                                std::shared_ptr<const Signer> signer,
                                                WriterOptions options = {});

  // Reopens a log whose writer stopped without run.end: checks it (any
  // finding other than truncation is refused), terminates a torn last line
  // and appends a signed `recovery` record naming the last intact seq, the
  // torn bytes and `reason`. The returned writer continues the chain; Close()
  // ends it. Fails (kPermission) while another writer holds the log.
  static Result<std::unique_ptr<Writer>> Recover(
      const std::string& path, std::shared_ptr<const Signer> signer, WriterOptions options = {},
      std::string_view reason = "the writer stopped without writing run.end");

  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Registers a secret (see Redactor::Add) for every later record.
  Status AddSecret(std::string_view name, std::string_view value);

  // Appends one record; payload must be a JSON object. The first record must
  // be "run.start" (the writer adds a "log" member with the format, run id,
  // key id and kiln version); "checkpoint", "run.end" and "recovery" are
  // written by the writer itself. Fails if the log is closed or has failed.
  //
  // A failure to write (a record or its blob), or a file that is no longer
  // what this writer wrote (deleted, truncated, appended to by another), is
  // final: every later Append and Close fails with the same reason, so that
  // no record can follow a gap, and only Recover() continues the file.
  Result<Appended> Append(std::string_view type, const nlohmann::json& payload);

  // Checks that the file is still the one this writer wrote (linked, of the
  // size it wrote); a writer that finds otherwise fails as above. Append()
  // checks too; a run's controller calls this while the agent is quiet.
  Status CheckFile();

  // Why the log stopped accepting records; empty while it works.
  std::string failure() const;
  // Whether it did; without the lock, so that it is cheap to ask often.
  bool failed() const { return failed_.load(std::memory_order_acquire); }

  // Writes a signed checkpoint now if records were appended since the last.
  Status Checkpoint();

  // Appends the signed `run.end` record (the writer adds "log": {"blobs",
  // "records"}), fsyncs unless durability is kNone, and closes the file.
  Result<Appended> Close(const nlohmann::json& run_end_payload);

  uint64_t next_seq() const;
  const std::string& path() const { return path_; }
  // Milliseconds spent in fsync and fdatasync so far (records and blobs).
  double sync_ms() const { return static_cast<double>(sync_ns_.load()) / 1e6; }

 private:
  Writer(std::string path, std::string run_id, std::shared_ptr<const Signer> signer,
         WriterOptions options);

  Result<Appended> AppendLocked(std::string_view type, const nlohmann::json& payload);
  Result<std::optional<std::string>> AppendRequest(const nlohmann::json& payload,
                                                   const Redactor* redactor);
  Result<Appended> WriteRecord(std::string_view type, std::string_view payload_or_empty,
                               const BlobRef* blob, bool sign, std::string_view prefix = {});
  Status WriteCheckpointLocked(std::string_view reason);
  Result<BlobRef> WriteBlob(std::string_view canonical_payload);
  Status Sync();
  // Makes the writer fail for good with error's message (the first reason
  // stands); returns the error.
  Error Fail(const Error& error);
  Status CheckFileLocked();
  int64_t Now() const;
  const std::string& Timestamp(int64_t ns);

  // Times fsync(fd) (data_only: fdatasync) into sync_ns_.
  int TimedSync(int fd, bool data_only);
  Status FsyncDir(const std::string& dir);

  std::atomic<uint64_t> sync_ns_{0};
  bool dir_synced_ = true;  // the log's directory entry is durable (Create: not yet)
  mutable std::mutex mu_;
  const std::string path_;
  const std::string run_id_;
  const std::shared_ptr<const Signer> signer_;
  const WriterOptions options_;
  std::string blob_dir_;
  UniqueFd fd_;
  Redactor redactor_;
  RequestBody request_;  // the last model.request's body, the next one's base
  Digest head_{};
  uint64_t seq_ = 0;  // the next record's seq
  uint64_t since_checkpoint_ = 0;
  int64_t last_checkpoint_ns_ = 0;
  uint64_t blobs_ = 0;
  uint64_t offset_ = 0;  // the file's size as this writer made it
  bool closed_ = false;
  std::string failure_;  // why the writer failed for good; empty while it works
  std::atomic<bool> failed_{false};
  bool blob_dir_ready_ = false;
  // Scratch buffers reused across records.
  std::string payload_buf_;
  std::string line_buf_;
  Sha256 sha_;
  int64_t ts_second_ = -1;
  std::string ts_buf_;
};

}  // namespace kiln::sessionlog
