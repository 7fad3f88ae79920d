// One session log record: the line format shared by the writer, the verifier
// and `kiln log show`, and the byte strings that get hashed and signed.
//
// A record is one line: canonical JSON (canonical.h) of an object with the
// members blob|payload, prev, seq, sig (signed records only), ts and type, in
// that (sorted) order, then "\n". Its hash is SHA-256 over the whole line,
// newline included, so `sha256sum` of the line is the next record's `prev`.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/digest.h"
#include "base/result.h"

namespace kiln::sessionlog {

inline constexpr std::string_view kFormat = "kiln-session-log/1";
// Lines longer than this are reported as malformed without being buffered.
inline constexpr size_t kMaxLineBytes = 16 << 20;

// The record types of format 1 (docs/session-log.md has each payload).
inline constexpr std::string_view kRunStart = "run.start";
inline constexpr std::string_view kModelRequest = "model.request";
inline constexpr std::string_view kModelResponse = "model.response";
inline constexpr std::string_view kToolCall = "tool.call";
inline constexpr std::string_view kToolResult = "tool.result";
inline constexpr std::string_view kProxyRequest = "proxy.request";
inline constexpr std::string_view kSteer = "steer";
inline constexpr std::string_view kController = "controller";
inline constexpr std::string_view kResult = "result";
inline constexpr std::string_view kCheckpoint = "checkpoint";
inline constexpr std::string_view kRunEnd = "run.end";
inline constexpr std::string_view kRecovery = "recovery";

bool IsKnownType(std::string_view type);
// A run id is [A-Za-z0-9._:-]{1,128}: it goes into shell commands unquoted.
bool ValidRunId(std::string_view run_id);

struct BlobRef {
  Digest sha256;
  uint64_t size = 0;
};

// The members of a parsed record line. Views point into the line.
struct ParsedRecord {
  uint64_t seq = 0;
  Digest prev{};
  std::string_view ts;
  std::string_view type;
  std::string_view payload;  // canonical JSON of the payload; empty if in a blob
  std::optional<BlobRef> blob;
  bool signed_record = false;
  std::string_view sig_key_id;  // 32 hex chars
  std::string_view sig_value;   // base64 of 64 bytes
  // The bytes [sig_begin, sig_end) are `"sig":{...},`: removing them gives the
  // record as it was before signing.
  size_t sig_begin = 0;
  size_t sig_end = 0;
};

// Parses a line (without its "\n") as a format-1 record in canonical form.
// The error names the member and the byte offset that is wrong.
Result<ParsedRecord> ParseRecord(std::string_view line);

// The `prev` of record 0: SHA-256 of
// "kiln-session-log/1 genesis\nrun_id <run id>\nkey_id <key id>\n".
Digest GenesisHash(std::string_view run_id, std::string_view key_id);

// The head a signature covers: SHA-256 of the record line with its `sig`
// member removed, newline included (= `jq -cS 'del(.sig)' | sha256sum`).
Digest SignedHead(std::string_view line, const ParsedRecord& rec);

// The exact bytes an Ed25519 signature is made over:
// "kiln-session-log/1 signature\nrun_id <id>\nseq <n>\ncount <n+1>\nhead <hex>\n".
std::string SignatureInput(std::string_view run_id, uint64_t seq, const Digest& head);

// Where a log's blobs are: blob_dir if set, else "blobs" beside the log.
std::string BlobDirFor(const std::string& log_path, const std::string& blob_dir);

// RFC 3339 UTC with nanoseconds: 2024-05-01T12:34:56.123456789Z.
std::string FormatTimestamp(int64_t unix_ns);
bool ValidTimestamp(std::string_view ts);

}  // namespace kiln::sessionlog
