#include "controller/sessionlog/writer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>

#include "controller/sessionlog/canonical.h"
#include "controller/sessionlog/verify.h"

#ifndef KILN_VERSION
#define KILN_VERSION "unknown"
#endif

namespace kiln::sessionlog {
namespace {

int64_t RealtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// One writer per log, across processes: a second Create/Recover fails
// instead of interleaving records.
Status LockLog(int fd, const std::string& path) {
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Error(Error::Code::kPermission,
                   "session log " + Quote(path) + " is open in another writer (flock)");
    }
    return Error::Sys("flock(" + Quote(path) + ")", errno);
  }
  return Ok();
}

// Caller payloads may not set the members the writer owns.
Status CheckObject(const nlohmann::json& payload, std::string_view type, bool writer_owns_log) {
  if (!payload.is_object()) {
    return Error::Invalid(std::string(type) + " payload must be a JSON object, not " +
                          payload.type_name());
  }
  if (writer_owns_log && payload.contains("log")) {
    return Error::Invalid(std::string(type) + " payload must not set \"log\": the writer adds it");
  }
  return Ok();
}

}  // namespace

Writer::Writer(std::string path, std::string run_id, std::shared_ptr<const Signer> signer,
               WriterOptions options)
    : path_(std::move(path)),
      run_id_(std::move(run_id)),
      signer_(std::move(signer)),
      options_(std::move(options)),
      blob_dir_(BlobDirFor(path_, options_.blob_dir)) {
  last_checkpoint_ns_ = Now();
}

Writer::~Writer() = default;

Result<std::unique_ptr<Writer>> Writer::Create(const std::string& path, std::string_view run_id,
                                               std::shared_ptr<const Signer> signer,
                                               WriterOptions options) {
  if (!ValidRunId(run_id)) {
    return Error::Invalid("run id " + Quote(run_id) + " is not [A-Za-z0-9._:-]{1,128}");
  }
  if (!signer) return Error::Invalid("a session log needs a signer");
  std::unique_ptr<Writer> w(
      new Writer(path, std::string(run_id), std::move(signer), std::move(options)));
  w->fd_ = UniqueFd(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640));
  if (!w->fd_.valid()) return Error::Sys("open(" + Quote(path) + ", O_CREAT|O_EXCL)", errno);
  KILN_TRY(LockLog(w->fd_.get(), path));
  // The directory's entry is synced with the file's first sync: until then
  // nothing of the file is durable anyway, and a run does not wait for it.
  w->dir_synced_ = false;
  w->head_ = GenesisHash(w->run_id_, w->signer_->key_id());
  return w;
}

Result<std::unique_ptr<Writer>> Writer::Recover(const std::string& path,
                                                std::shared_ptr<const Signer> signer,
                                                WriterOptions options, std::string_view reason) {
  if (!signer) return Error::Invalid("a session log needs a signer");
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  KILN_TRY(LockLog(fd.get(), path));

  VerifyOptions vo;
  vo.trusted_keys.push_back(signer->public_key());
  vo.blob_dir = options.blob_dir;
  KILN_ASSIGN_OR_RETURN(VerifyReport report, Verify(path, vo));
  const std::string where = "recovering " + Quote(path);
  if (report.complete) return Error::Invalid(where + ": the log already ends with run.end");
  if (!report.last_seq) return Error::Invalid(where + ": no intact run.start to continue from");
  if (report.key_id != signer->key_id()) {
    return Error::Invalid(where + ": the log was started with key " + report.key_id +
                          ", not with this key " + signer->key_id());
  }
  for (const Finding& f : report.findings) {
    if (f.kind != FindingKind::kTruncated) {
      return Error(Error::Code::kCorruption,
                   where + ": the log is damaged, not just cut short: " + FormatFinding(f));
    }
  }

  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::Sys("fstat(" + Quote(path) + ")", errno);
  std::unique_ptr<Writer> w(new Writer(path, report.run_id, std::move(signer), std::move(options)));
  w->fd_ = std::move(fd);
  w->offset_ = static_cast<uint64_t>(st.st_size);
  w->head_ = report.head;
  w->seq_ = *report.last_seq + 1;
  w->blobs_ = report.blobs;

  nlohmann::json payload = {{"after_seq", *report.last_seq}, {"reason", reason}};
  std::string prefix;
  if (report.torn) {
    payload["torn"] = {{"bytes", report.torn->bytes},
                       {"offset", report.torn->offset},
                       {"sha256", Hex(report.torn->line_hash)}};
    prefix = "\n";  // ends the torn line, in the same write as the record
  }
  std::lock_guard lock(w->mu_);
  w->payload_buf_.clear();
  KILN_TRY(AppendCanonical(payload, &w->payload_buf_, nullptr, "payload", 1));
  std::string canon = w->payload_buf_;
  KILN_TRY(w->WriteRecord(kRecovery, canon, nullptr, /*sign=*/true, prefix));
  KILN_TRY(w->Sync());
  return w;
}

Status Writer::AddSecret(std::string_view name, std::string_view value) {
  std::lock_guard lock(mu_);
  return redactor_.Add(name, value);
}

uint64_t Writer::next_seq() const {
  std::lock_guard lock(mu_);
  return seq_;
}

int64_t Writer::Now() const { return options_.clock ? options_.clock() : RealtimeNs(); }

const std::string& Writer::Timestamp(int64_t ns) {
  // Formatting the date part once per second keeps ts off the profile.
  int64_t second = ns / 1000000000;
  if (second != ts_second_ || ts_buf_.size() != 30) {
    ts_buf_ = FormatTimestamp(ns);
    ts_second_ = second;
    return ts_buf_;
  }
  auto nanos = static_cast<uint32_t>(ns % 1000000000);
  for (int i = 28; i >= 20; --i) {
    ts_buf_[static_cast<size_t>(i)] = static_cast<char>('0' + nanos % 10);
    nanos /= 10;
  }
  return ts_buf_;
}

Status Writer::Sync() {
  if (options_.durability == Durability::kNone) return Ok();
  if (TimedSync(fd_.get(), true) != 0) {
    int err = errno;
    return Fail(Error::Sys("fdatasync(" + Quote(path_) + ")", err));
  }
  if (!dir_synced_) {
    if (Status dir = FsyncDir(DirName(path_)); !dir.ok()) return Fail(dir.error());
    dir_synced_ = true;
  }
  return Ok();
}

Status Writer::FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Error::Sys("open(" + Quote(dir) + ")", errno);
  if (TimedSync(fd.get(), false) != 0) return Error::Sys("fsync(" + Quote(dir) + ")", errno);
  return Ok();
}

int Writer::TimedSync(int fd, bool data_only) {
  auto start = std::chrono::steady_clock::now();
  int rc = data_only ? ::fdatasync(fd) : ::fsync(fd);
  int err = errno;
  sync_ns_ += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count());
  errno = err;
  return rc;
}

Error Writer::Fail(const Error& error) {
  if (failure_.empty()) {
    failure_ = error.message();
    failed_.store(true, std::memory_order_release);
    if (options_.on_failure) options_.on_failure(failure_);
  }
  return Error(Error::Code::kIO, "session log " + Quote(path_) + " stopped: " + failure_);
}

Status Writer::CheckFileLocked() {
  if (closed_ || !failure_.empty()) return Ok();
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) {
    int err = errno;
    return Fail(Error::Sys("fstat(" + Quote(path_) + ")", err));
  }
  if (st.st_nlink == 0) return Fail(Error(Error::Code::kIO, "the log file was deleted"));
  if (static_cast<uint64_t>(st.st_size) != offset_) {
    return Fail(Error(Error::Code::kIO, "the log file is " + std::to_string(st.st_size) +
                                            " bytes, not the " + std::to_string(offset_) +
                                            " this writer wrote: truncated or written by another"));
  }
  return Ok();
}

Status Writer::CheckFile() {
  std::lock_guard lock(mu_);
  KILN_TRY(CheckFileLocked());
  if (!failure_.empty()) return Fail(Error::Internal(failure_));
  return Ok();
}

std::string Writer::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

Result<Appended> Writer::Append(std::string_view type, const nlohmann::json& payload) {
  std::lock_guard lock(mu_);
  return AppendLocked(type, payload);
}

Result<Appended> Writer::AppendLocked(std::string_view type, const nlohmann::json& payload) {
  if (closed_) return Error::Invalid("session log " + Quote(path_) + " is closed");
  if (!failure_.empty()) return Fail(Error::Internal(failure_));
  if (!IsKnownType(type)) return Error::Invalid("unknown record type " + Quote(type));
  if (type == kCheckpoint || type == kRunEnd || type == kRecovery) {
    return Error::Invalid("record type " + Quote(type) + " is written by the writer itself");
  }
  if (seq_ == 0 && type != kRunStart) {
    return Error::Invalid("the first record of a session log must be run.start, not " +
                          Quote(type));
  }
  if (seq_ != 0 && type == kRunStart) {
    return Error::Invalid("run.start may only be the first record");
  }
  const Redactor* redactor = redactor_.empty() ? nullptr : &redactor_;
  payload_buf_.clear();
  std::optional<std::string> next_base;  // a model.request's body, as recorded
  if (type == kRunStart) {
    KILN_TRY(CheckObject(payload, type, true));
    nlohmann::json p = payload;
    p["log"] = {{"format", kFormat},
                {"key_id", signer_->key_id()},
                {"kiln_version", KILN_VERSION},
                {"run_id", run_id_}};
    KILN_TRY(AppendCanonical(p, &payload_buf_, redactor, "payload", 1));
  } else if (type == kModelRequest) {
    KILN_TRY(CheckObject(payload, type, false));
    KILN_ASSIGN_OR_RETURN(next_base, AppendRequest(payload, redactor));
  } else {
    KILN_TRY(CheckObject(payload, type, false));
    KILN_TRY(AppendCanonical(payload, &payload_buf_, redactor, "payload", 1));
  }

  KILN_TRY(CheckFileLocked());
  Result<Appended> r = Error::Internal("unset");
  if (payload_buf_.size() > options_.blob_threshold && type != kRunStart) {
    auto blob = WriteBlob(payload_buf_);
    if (!blob) return Fail(blob.error());
    r = WriteRecord(type, {}, &*blob, false);
  } else {
    r = WriteRecord(type, payload_buf_, nullptr, false);
  }
  if (!r.ok()) return r;
  if (type == kModelRequest) {
    request_ = next_base ? RequestBody{r->seq, std::move(*next_base)} : RequestBody{};
  }

  ++since_checkpoint_;
  bool by_count = options_.checkpoint_every != 0 && since_checkpoint_ >= options_.checkpoint_every;
  bool by_time = options_.checkpoint_interval_ms != 0 &&
                 Now() - last_checkpoint_ns_ >=
                     static_cast<int64_t>(options_.checkpoint_interval_ms) * 1000000;
  if (by_count || by_time) KILN_TRY(WriteCheckpointLocked(by_count ? "count" : "time"));
  return r;
}

// A model.request's canonical payload, its body as a delta on the previous
// model.request's when that keeps enough of it (request_body.h), computed on
// the body as it is recorded (redacted), so that a reader builds exactly that
// back. Returns that body, to be the next one's base; nullopt when it cannot
// be one (no string body, or not valid UTF-8, which the canonical form
// would change).
Result<std::optional<std::string>> Writer::AppendRequest(const nlohmann::json& payload,
                                                         const Redactor* redactor) {
  if (payload.contains("body_delta")) {
    return Error::Invalid("a model.request's body_delta is written by the session log's writer");
  }
  std::optional<std::string> recorded;
  if (auto body = payload.find("body"); body != payload.end() && body->is_string()) {
    std::string text = body->get<std::string>();
    if (std::string redacted; redactor && redactor->Redact(text, &redacted)) {
      text = std::move(redacted);
    }
    if (ValidUtf8(text)) recorded = std::move(text);
  }
  nlohmann::json delta = recorded ? BodyDelta(request_, *recorded) : nullptr;
  // The delta's text is a piece of text already redacted: redacting it again
  // must change nothing, or the body would not come back as recorded.
  std::string again;
  if (!delta.is_null() && redactor && redactor->Redact(delta["text"].get<std::string>(), &again)) {
    delta = nullptr;
  }
  if (delta.is_null()) {
    KILN_TRY(AppendCanonical(payload, &payload_buf_, redactor, "payload", 1));
    return recorded;
  }
  nlohmann::json p = nlohmann::json::object();
  for (const auto& [key, value] : payload.items()) {
    if (key != "body") p[key] = value;
  }
  p["body_delta"] = std::move(delta);
  KILN_TRY(AppendCanonical(p, &payload_buf_, redactor, "payload", 1));
  return recorded;
}

Status Writer::Checkpoint() {
  std::lock_guard lock(mu_);
  if (closed_ || !failure_.empty() || since_checkpoint_ == 0) return Ok();
  return WriteCheckpointLocked("request");
}

Status Writer::WriteCheckpointLocked(std::string_view reason) {
  payload_buf_.clear();
  payload_buf_ += "{\"count\":";
  payload_buf_ += std::to_string(seq_ + 1);
  payload_buf_ += ",\"reason\":";
  AppendCanonicalString(reason, &payload_buf_);
  payload_buf_ += '}';
  KILN_TRY(WriteRecord(kCheckpoint, payload_buf_, nullptr, /*sign=*/true));
  since_checkpoint_ = 0;
  last_checkpoint_ns_ = Now();
  return Sync();
}

Result<Appended> Writer::Close(const nlohmann::json& run_end_payload) {
  std::lock_guard lock(mu_);
  if (closed_) return Error::Invalid("session log " + Quote(path_) + " is already closed");
  KILN_TRY(CheckFileLocked());
  if (!failure_.empty()) return Fail(Error::Internal(failure_));
  if (seq_ == 0) return Error::Invalid("cannot close a session log without run.start");
  KILN_TRY(CheckObject(run_end_payload, kRunEnd, true));
  nlohmann::json p = run_end_payload;
  p["log"] = {{"blobs", blobs_}, {"records", seq_ + 1}};
  payload_buf_.clear();
  KILN_TRY(
      AppendCanonical(p, &payload_buf_, redactor_.empty() ? nullptr : &redactor_, "payload", 1));
  KILN_ASSIGN_OR_RETURN(Appended a, WriteRecord(kRunEnd, payload_buf_, nullptr, /*sign=*/true));
  KILN_TRY(Sync());
  closed_ = true;
  fd_.reset();
  return a;
}

Result<BlobRef> Writer::WriteBlob(std::string_view canonical_payload) {
  // The blob holds the payload line exactly as it would have been inlined,
  // plus "\n", so `sha256sum` of the file is its name.
  // Hashed and written in two pieces: a large payload is not copied.
  BlobRef ref;
  sha_.Init();
  sha_.Update(canonical_payload);
  sha_.Update("\n");
  ref.sha256 = sha_.Final();
  ref.size = canonical_payload.size() + 1;
  if (!blob_dir_ready_) {
    if (::mkdir(blob_dir_.c_str(), 0750) != 0 && errno != EEXIST) {
      return Error::Sys("mkdir(" + Quote(blob_dir_) + ", 0750)", errno);
    }
    blob_dir_ready_ = true;
  }
  std::string path = blob_dir_ + "/" + Hex(ref.sha256);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == ref.size) {
    ++blobs_;
    return ref;  // content-addressed: the same bytes are already there
  }
  // A unique temporary name: other writers may store the same blob right now.
  std::string tmp = path + ".tmp.XXXXXX";
  {
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd.valid()) return Error::Sys("mkostemp(" + Quote(tmp) + ")", errno);
    Status st = ::fchmod(fd.get(), 0640) == 0 ? WriteAll(fd.get(), canonical_payload)
                                              : Error::Sys("fchmod(" + Quote(tmp) + ")", errno);
    if (st.ok()) st = WriteAll(fd.get(), "\n");
    if (st.ok() && options_.durability != Durability::kNone && TimedSync(fd.get(), false) != 0) {
      st = Error::Sys("fsync(" + Quote(tmp) + ")", errno);
    }
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st.error().Wrap("writing blob " + Quote(tmp));
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error::Sys("rename(" + Quote(tmp) + ", " + Quote(path) + ")", err);
  }
  // The record that names the blob must not outlive the blob in a crash.
  if (options_.durability != Durability::kNone) KILN_TRY(FsyncDir(blob_dir_));
  ++blobs_;
  return ref;
}

Result<Appended> Writer::WriteRecord(std::string_view type, std::string_view payload,
                                     const BlobRef* blob, bool sign, std::string_view prefix) {
  std::string& line = line_buf_;
  line.clear();
  line += prefix;
  const size_t start = line.size();
  line += '{';
  if (blob != nullptr) {
    line += "\"blob\":{\"sha256\":\"";
    line += Hex(blob->sha256);
    line += "\",\"size\":";
    line += std::to_string(blob->size);
    line += "},";
  } else {
    line += "\"payload\":";
    line += payload;
    line += ',';
  }
  line += "\"prev\":\"";
  line += Hex(head_);
  line += "\",\"seq\":";
  line += std::to_string(seq_);
  line += ',';
  const size_t sig_at = line.size();
  line += "\"ts\":\"";
  line += Timestamp(Now());
  line += "\",\"type\":\"";
  line += type;  // [a-z0-9._-] only: nothing to escape
  line += "\"}\n";
  if (sign) {
    Digest head = sha_.Hash(std::string_view(line).substr(start));
    KILN_ASSIGN_OR_RETURN(std::string sig, signer_->Sign(SignatureInput(run_id_, seq_, head)));
    std::string member =
        "\"sig\":{\"key_id\":\"" + signer_->key_id() + "\",\"value\":\"" + Base64(sig) + "\"},";
    line.insert(sig_at, member);
  }
  Digest hash = sha_.Hash(std::string_view(line).substr(start));

  // One write per record: with O_APPEND a record is never interleaved, and a
  // crash leaves at most one torn line at the end.
  std::string_view rest = line;
  while (!rest.empty()) {
    ssize_t n = ::write(fd_.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      // What was written of the record is not a record: cut it off, so that
      // the file ends as before (a whole record, or the torn line it ended
      // with) and a recovery can continue it.
      if (rest.size() != line.size() && ::ftruncate(fd_.get(), static_cast<off_t>(offset_)) != 0) {
        offset_ += line.size() - rest.size();
      }
      return Fail(
          Error::Sys("write(" + Quote(path_) + ") of record seq " + std::to_string(seq_), err));
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  offset_ += line.size();
  head_ = hash;
  Appended a{seq_, hash};
  ++seq_;
  if (options_.durability == Durability::kEveryRecord && !sign) KILN_TRY(Sync());
  return a;
}

}  // namespace kiln::sessionlog
