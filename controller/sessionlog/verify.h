// The session log verifier: proves a log complete and unmodified, or names
// what is wrong with it, record by record.
//
// It never trusts its input: lines are parsed by the canonical scanner (no
// JSON library on untrusted bytes except small run.start/recovery payloads),
// lines longer than max_line_bytes are skipped without being buffered, and
// memory is about 100 bytes per line plus one line.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/digest.h"
#include "base/result.h"
#include "controller/sessionlog/record.h"
#include "controller/sessionlog/signer.h"

namespace kiln::sessionlog {

enum class FindingKind {
  kModified,      // a record's bytes differ from what the chain committed to
  kDeleted,       // records missing from the chain (a gap in seq)
  kInserted,      // a line that is not part of the chain
  kReordered,     // a record of the chain at the wrong place in the file
  kTruncated,     // no signed run.end at the end, or a torn last line
  kBadSignature,  // a signature that does not verify, or a missing one
  kUnknownKey,    // a signature by a key that is not trusted
  kBlobMissing,   // a referenced blob file is absent
  kBlobAltered,   // a blob whose bytes do not match its reference
  kMalformed,     // a line that is not a record and no better explanation fits
};

std::string_view KindName(FindingKind kind);

struct Finding {
  FindingKind kind;
  uint64_t seq;   // the seq the finding is about (inferred for damaged lines)
  uint64_t line;  // 1-based line number in the file
  std::string message;
};

struct VerifyOptions {
  // Signatures must be by one of these keys.
  std::vector<PublicKey> trusted_keys;
  // Where blobs are; empty: the "blobs" directory beside the log.
  std::string blob_dir;
  size_t max_line_bytes = kMaxLineBytes;
  // Findings beyond this many are counted, not kept.
  size_t max_findings = 1000;
};

struct TornTail {
  uint64_t offset = 0;
  uint64_t bytes = 0;
  Digest line_hash{};  // SHA-256 of the torn bytes plus "\n"
};

struct VerifyReport {
  std::vector<Finding> findings;  // sorted by seq, then line
  uint64_t findings_total = 0;
  std::vector<std::string> notes;  // informational; do not make the log fail
  std::string run_id;
  std::string key_id;  // from run.start
  uint64_t lines = 0;
  uint64_t records = 0;  // records in the chain
  uint64_t bytes = 0;
  uint64_t blobs = 0;
  uint64_t signatures = 0;           // valid signatures by trusted keys
  bool complete = false;             // the chain ends with a signed run.end
  std::optional<uint64_t> last_seq;  // last record of the chain
  Digest head{};                     // its hash
  std::optional<TornTail> torn;      // an unacknowledged torn last line

  bool ok() const { return findings_total == 0; }
};

struct BlobInfo {
  uint64_t size = 0;
  Digest sha256{};
};
// Looks a blob up by its hex name: its size and SHA-256, or nullopt if absent.
using BlobLookup = std::function<std::optional<BlobInfo>(const std::string& hex)>;

// Verifies the log at path. Fails only when the file cannot be read.
Result<VerifyReport> Verify(const std::string& path, const VerifyOptions& options);

// Verifies a log held in memory (for tests and the fuzzer).
VerifyReport VerifyBuffer(std::string_view data, const VerifyOptions& options,
                          const BlobLookup& blobs);

// One line per finding: "seq 5: modified: ... (line 6)".
std::string FormatFinding(const Finding& f);

}  // namespace kiln::sessionlog
