#include "controller/sessionlog/record.h"

#include <ctime>

#include "controller/sessionlog/canonical.h"

namespace kiln::sessionlog {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool ValidTypeName(std::string_view t) {
  if (t.empty() || t.size() > 64 || t[0] < 'a' || t[0] > 'z') return false;
  for (char c : t) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

Error Bad(const Scanner& s, std::string_view member, std::string_view what) {
  std::string msg;
  if (!member.empty()) msg = "member '" + std::string(member) + "': ";
  msg += what;
  msg += " at byte ";
  msg += std::to_string(s.pos());
  return Error(Error::Code::kCorruption, std::move(msg));
}

// Lowercase hex digit values; 0xff for anything else (canonical digests are
// lowercase). A table: this runs for every record's prev.
constexpr std::array<uint8_t, 256> kLowerHex = [] {
  std::array<uint8_t, 256> t{};
  for (auto& v : t) v = 0xff;
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 6; ++i) t['a' + i] = static_cast<uint8_t>(10 + i);
  return t;
}();

bool ParseHexDigest(std::string_view raw, Digest* d) {
  if (raw.size() != 64) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  uint8_t bad = 0;
  for (size_t i = 0; i < 32; ++i) {
    uint8_t hi = kLowerHex[p[2 * i]], lo = kLowerHex[p[2 * i + 1]];
    bad |= hi | lo;
    (*d)[i] = static_cast<uint8_t>(hi << 4 | (lo & 0x0f));
  }
  return (bad & 0xf0) == 0;
}

// "blob": {"sha256": "<hex>", "size": N}
bool ParseBlob(Scanner& s, BlobRef* blob) {
  if (!s.Consume('{')) return false;
  std::string_view prev, key, raw;
  if (!s.Key(&prev, true, &key)) return false;
  if (key != "sha256") return s.Fail("expected member \"sha256\"");
  if (!s.String(&raw)) return false;
  if (!ParseHexDigest(raw, &blob->sha256)) return s.Fail("sha256 must be 64 lowercase hex digits");
  if (!s.Consume(',') || !s.Key(&prev, false, &key)) return false;
  if (key != "size") return s.Fail("expected member \"size\"");
  int64_t size;
  if (!s.Integer(&size)) return false;
  if (size < 0) return s.Fail("negative size");
  blob->size = static_cast<uint64_t>(size);
  return s.Consume('}');
}

// "sig": {"key_id": "<32 hex>", "value": "<base64 of 64 bytes>"}
bool ParseSig(Scanner& s, ParsedRecord* r) {
  if (!s.Consume('{')) return false;
  std::string_view prev, key;
  if (!s.Key(&prev, true, &key)) return false;
  if (key != "key_id") return s.Fail("expected member \"key_id\"");
  if (!s.String(&r->sig_key_id)) return false;
  if (r->sig_key_id.size() != 32 || !IsLowerHex(r->sig_key_id)) {
    return s.Fail("key_id must be 32 lowercase hex digits");
  }
  if (!s.Consume(',') || !s.Key(&prev, false, &key)) return false;
  if (key != "value") return s.Fail("expected member \"value\"");
  if (!s.String(&r->sig_value)) return false;
  if (r->sig_value.size() != 88) return s.Fail("value must be base64 of 64 bytes");
  return s.Consume('}');
}

}  // namespace

bool IsKnownType(std::string_view t) {
  return t == kRunStart || t == kModelRequest || t == kModelResponse || t == kToolCall ||
         t == kToolResult || t == kProxyRequest || t == kSteer || t == kController ||
         t == kResult || t == kCheckpoint || t == kRunEnd || t == kRecovery;
}

bool ValidRunId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == ':' || c == '-')) {
      return false;
    }
  }
  return true;
}

Result<ParsedRecord> ParseRecord(std::string_view line) {
  ParsedRecord r;
  Scanner s(line);
  if (!s.Consume('{')) return Bad(s, "", "a record must be a JSON object");
  std::string_view prev_key, key;
  bool have_prev = false, have_seq = false, have_ts = false, have_type = false;
  bool have_payload = false;
  for (bool first = true;; first = false) {
    size_t member_begin = s.pos();
    if (!s.Key(&prev_key, first, &key)) return Bad(s, key, s.error());
    if (key == "blob") {
      BlobRef b;
      if (!ParseBlob(s, &b)) return Bad(s, key, s.error());
      r.blob = b;
    } else if (key == "payload") {
      size_t begin = s.pos();
      if (!s.Peek('{')) return Bad(s, key, "the payload must be a JSON object");
      if (!s.Value(1)) return Bad(s, key, s.error());
      r.payload = line.substr(begin, s.pos() - begin);
      have_payload = true;
    } else if (key == "prev") {
      std::string_view raw;
      if (!s.String(&raw)) return Bad(s, key, s.error());
      if (!ParseHexDigest(raw, &r.prev)) return Bad(s, key, "must be 64 lowercase hex digits");
      have_prev = true;
    } else if (key == "seq") {
      int64_t v;
      if (!s.Integer(&v)) return Bad(s, key, s.error());
      if (v < 0) return Bad(s, key, "must not be negative");
      r.seq = static_cast<uint64_t>(v);
      have_seq = true;
    } else if (key == "sig") {
      if (!ParseSig(s, &r)) return Bad(s, key, s.error());
      r.signed_record = true;
      r.sig_begin = member_begin;
      r.sig_end = s.pos() + 1;  // the ',' that follows; "ts" and "type" always come after
    } else if (key == "ts") {
      if (!s.String(&r.ts)) return Bad(s, key, s.error());
      if (!ValidTimestamp(r.ts)) {
        return Bad(s, key,
                   "must be RFC 3339 UTC with nanoseconds (2024-05-01T12:34:56.123456789Z)");
      }
      have_ts = true;
    } else if (key == "type") {
      if (!s.String(&r.type)) return Bad(s, key, s.error());
      if (!ValidTypeName(r.type)) return Bad(s, key, "must match [a-z][a-z0-9._-]{0,63}");
      have_type = true;
    } else {
      return Bad(s, key, "unknown member");
    }
    if (s.Peek(',')) {
      s.Consume(',');
      continue;
    }
    if (!s.Consume('}')) return Bad(s, key, s.error());
    break;
  }
  if (!s.AtEnd()) return Bad(s, "", "trailing bytes after the record");
  const char* missing = !have_prev   ? "prev"
                        : !have_seq  ? "seq"
                        : !have_ts   ? "ts"
                        : !have_type ? "type"
                                     : nullptr;
  if (missing != nullptr) {
    return Error(Error::Code::kCorruption, std::string("missing member '") + missing + "'");
  }
  if (have_payload == r.blob.has_value()) {
    return Error(Error::Code::kCorruption,
                 "a record has exactly one of the members 'payload' and 'blob'");
  }
  return r;
}

Digest GenesisHash(std::string_view run_id, std::string_view key_id) {
  std::string in(kFormat);
  in += " genesis\nrun_id ";
  in += run_id;
  in += "\nkey_id ";
  in += key_id;
  in += '\n';
  return Sha256Of(in);
}

Digest SignedHead(std::string_view line, const ParsedRecord& rec) {
  Sha256 sha;
  sha.Init();
  sha.Update(line.substr(0, rec.sig_begin));
  sha.Update(line.substr(rec.sig_end));
  sha.Update("\n");
  return sha.Final();
}

std::string SignatureInput(std::string_view run_id, uint64_t seq, const Digest& head) {
  std::string in(kFormat);
  in += " signature\nrun_id ";
  in += run_id;
  in += "\nseq ";
  in += std::to_string(seq);
  in += "\ncount ";
  in += std::to_string(seq + 1);
  in += "\nhead ";
  in += Hex(head);
  in += '\n';
  return in;
}

std::string BlobDirFor(const std::string& log_path, const std::string& blob_dir) {
  if (!blob_dir.empty()) return blob_dir;
  size_t slash = log_path.rfind('/');
  if (slash == std::string::npos) return "blobs";
  return log_path.substr(0, slash + 1) + "blobs";
}

std::string FormatTimestamp(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  auto nanos = static_cast<long>(unix_ns % 1000000000);
  if (nanos < 0) {
    nanos += 1000000000;
    --secs;
  }
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nanos);
  return buf;
}

bool ValidTimestamp(std::string_view ts) {
  // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.dddddddddZ";
  if (ts.size() != kShape.size()) return false;
  for (size_t i = 0; i < ts.size(); ++i) {
    if (kShape[i] == 'd' ? (ts[i] < '0' || ts[i] > '9') : ts[i] != kShape[i]) return false;
  }
  auto num = [&](size_t at, size_t n) {
    int v = 0;
    for (size_t i = 0; i < n; ++i) v = v * 10 + (ts[at + i] - '0');
    return v;
  };
  int mon = num(5, 2), day = num(8, 2), hour = num(11, 2), min = num(14, 2), sec = num(17, 2);
  return mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && hour <= 23 && min <= 59 && sec <= 60;
}

}  // namespace kiln::sessionlog
