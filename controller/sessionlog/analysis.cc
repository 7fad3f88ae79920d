// Pass 1 of the verifier (one call per line: hash, parse, keep ~100 bytes)
// and the checks of pass 2 that follow the chain: the end of the log,
// signatures and blobs.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "controller/sessionlog/analysis.h"

namespace kiln::sessionlog::verify_internal {
namespace {

bool IsHexKeyId(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

void Analysis::Add(FindingKind kind, uint64_t seq, uint32_t line, std::string message) {
  ++report_.findings_total;
  if (report_.findings.size() < options_.max_findings) {
    report_.findings.push_back({kind, seq, LineNo(line), std::move(message)});
  }
}

std::string Analysis::Damage(uint32_t i) const {
  const LineInfo& l = lines_[i];
  std::string why = errors_[l.error];
  if (l.more > 0) {
    why += "; nor are the " + std::to_string(l.more) + " lines after it (to line " +
           std::to_string(l.line_no + l.more) + ")";
  }
  return why;
}

// Adds a line that is not a record to the junk entry before it, if there is
// one. A torn last line stays separate: it is reported as truncation.
bool Analysis::MergeJunk(const LineReader::Line& line) {
  if (!line.newline || lines_.empty()) return false;
  LineInfo& p = lines_.back();
  if (p.error == kNone || (p.flags & kTorn)) return false;
  p.length = line.offset + line.length - p.offset;
  ++p.more;
  return true;
}

void Analysis::AddLine(const LineReader::Line& line, const Digest* hash) {
  LineInfo li;
  li.offset = line.offset;
  li.length = line.length;
  li.line_no = ++line_count_;
  report_.bytes += line.length + (line.newline ? 1 : 0);
  if (!line.newline) li.flags |= kTorn;
  if (line.too_long) {
    if (MergeJunk(line)) return;
    li.error = static_cast<uint32_t>(errors_.size());
    errors_.push_back("the line is " + std::to_string(line.length) + " bytes, over the " +
                      std::to_string(options_.max_line_bytes) + "-byte limit");
    lines_.push_back(li);
    return;
  }
  std::string_view text = line.bytes.substr(0, line.length);
  if (hash != nullptr) {
    li.hash = *hash;
  } else if (line.newline) {
    li.hash = sha_.Hash(line.bytes);
  } else {
    sha_.Init();
    sha_.Update(text);
    sha_.Update("\n");
    li.hash = sha_.Final();
  }
  Result<ParsedRecord> rec = ParseRecord(text);
  if (!rec.ok()) {
    if (MergeJunk(line)) return;
    li.error = static_cast<uint32_t>(errors_.size());
    errors_.push_back(rec.error().message());
  } else {
    li.flags |= kParsed;
    li.seq = rec->seq;
    li.prev = rec->prev;
    ParseExtra(li, *rec, text);
  }
  lines_.push_back(li);
}

void Analysis::ParseExtra(LineInfo& li, const ParsedRecord& rec, std::string_view text) {
  if (rec.type == kRunStart) li.kind = Kind::kStart;
  if (rec.type == kCheckpoint) li.kind = Kind::kCheckpoint;
  if (rec.type == kRunEnd) li.kind = Kind::kEnd;
  if (rec.type == kRecovery) li.kind = Kind::kRecovery;
  if (li.kind == Kind::kOther && !rec.signed_record && !rec.blob) return;
  Aux a;
  a.blob = rec.blob;
  if (rec.signed_record) {
    a.signed_record = true;
    a.key_id = std::string(rec.sig_key_id);
    a.signature = Base64Decode(rec.sig_value).value_or("");
    a.head = SignedHead(text, rec);
    li.sig = SigState::kUnchecked;
  }
  if ((li.kind == Kind::kStart || li.kind == Kind::kRecovery) && !rec.payload.empty()) {
    // Small, writer-made payloads; already validated as canonical JSON.
    auto p = nlohmann::json::parse(rec.payload, nullptr, /*allow_exceptions=*/false);
    if (li.kind == Kind::kStart && p.is_object()) {
      auto log = p.find("log");
      if (log != p.end() && log->is_object()) {
        auto id = log->find("run_id");
        auto key = log->find("key_id");
        if (id != log->end() && id->is_string() && ValidRunId(id->get<std::string>())) {
          a.run_id = id->get<std::string>();
        }
        if (key != log->end() && key->is_string() && IsHexKeyId(key->get<std::string>())) {
          a.start_key_id = key->get<std::string>();
        }
      }
    }
    if (li.kind == Kind::kRecovery && p.is_object()) {
      auto torn = p.find("torn");
      if (torn != p.end() && torn->is_object()) {
        auto b = torn->find("bytes"), o = torn->find("offset"), h = torn->find("sha256");
        TornTail t;
        if (b != torn->end() && b->is_number_unsigned() && o != torn->end() &&
            o->is_number_unsigned() && h != torn->end() && h->is_string() &&
            ParseHex(h->get<std::string>(), t.line_hash.data(), t.line_hash.size())) {
          t.bytes = b->get<uint64_t>();
          t.offset = o->get<uint64_t>();
          a.ack = t;
        }
      }
    }
  }
  li.aux = static_cast<uint32_t>(aux_.size());
  aux_.push_back(std::move(a));
}

bool Analysis::FindGenesis() {
  for (const LineInfo& l : lines_) {
    if ((l.flags & kParsed) && l.seq == 0 && l.kind == Kind::kStart && l.aux != kNone &&
        !aux_[l.aux].run_id.empty() && !aux_[l.aux].start_key_id.empty()) {
      report_.run_id = aux_[l.aux].run_id;
      report_.key_id = aux_[l.aux].start_key_id;
      genesis_ = GenesisHash(report_.run_id, report_.key_id);
      return true;
    }
  }
  return false;
}

void Analysis::CheckSignatures() {
  for (LineInfo& l : lines_) {
    if (l.sig != SigState::kUnchecked) continue;
    const Aux& a = aux_[l.aux];
    const PublicKey* key = nullptr;
    for (const auto& k : options_.trusted_keys) {
      if (k.id() == a.key_id) key = &k;
    }
    if (key == nullptr) {
      l.sig = SigState::kUnknownKey;
    } else if (!have_genesis_) {
      l.sig = SigState::kUnchecked;  // no run id to check against; reported elsewhere
    } else {
      l.sig = key->Verify(SignatureInput(report_.run_id, l.seq, a.head), a.signature)
                  ? SigState::kValid
                  : SigState::kBad;
    }
  }
}

bool Analysis::IsLinear(const std::vector<uint32_t>& cand) const {
  if (!have_genesis_) return false;
  const Digest* prev = &genesis_;
  uint64_t seq = 0;
  for (uint32_t i : cand) {
    const LineInfo& l = lines_[i];
    if (!(l.flags & kParsed) || l.seq != seq || l.prev != *prev) return false;
    prev = &l.hash;
    ++seq;
  }
  return true;
}

void Analysis::CheckEnd() {
  const std::optional<TornTail>& torn = report_.torn;
  std::string torn_text;
  if (torn) {
    torn_text = "the last line is torn: " + std::to_string(torn->bytes) + " bytes at offset " +
                std::to_string(torn->offset) + " without a newline";
  }
  if (stack_.empty()) {
    Add(FindingKind::kTruncated, 0,
        static_cast<uint32_t>(lines_.size() == 0 ? 0 : lines_.size() - 1),
        "the log has no intact records" + (torn ? "; " + torn_text : std::string()));
    return;
  }
  const uint32_t last = stack_.back();
  const uint64_t last_seq = eff_.back();
  const LineInfo& l = lines_[last];
  if (l.kind != Kind::kEnd) {
    uint32_t line = torn ? static_cast<uint32_t>(lines_.size() - 1) : last + 1;
    Add(FindingKind::kTruncated, last_seq + 1, line,
        "the log ends after seq " + std::to_string(last_seq) + " without run.end" +
            (torn ? "; " + torn_text : std::string()));
  } else if (torn) {
    Add(FindingKind::kInserted, last_seq + 1, static_cast<uint32_t>(lines_.size() - 1),
        "bytes after run.end: " + torn_text);
  }
  const LineInfo& first = lines_[stack_.front()];
  if (eff_.front() == 0 && first.kind != Kind::kStart) {
    Add(FindingKind::kMalformed, 0, stack_.front(), "the first record must be run.start");
  }
}

void Analysis::CheckBlobs() {
  for (size_t k = 0; k < stack_.size(); ++k) {
    const LineInfo& l = lines_[stack_[k]];
    if (l.aux == kNone || !aux_[l.aux].blob) continue;
    const BlobRef& ref = *aux_[l.aux].blob;
    ++report_.blobs;
    std::string name = Hex(ref.sha256);
    std::optional<BlobInfo> info = blobs_ ? blobs_(name) : std::nullopt;
    if (!info) {
      Add(FindingKind::kBlobMissing, eff_[k], stack_[k], "blob " + name + " is missing");
    } else if (info->size != ref.size || info->sha256 != ref.sha256) {
      Add(FindingKind::kBlobAltered, eff_[k], stack_[k],
          "blob " + name + " has " + std::to_string(info->size) + " bytes with SHA-256 " +
              Hex(info->sha256) + "; the record names " + std::to_string(ref.size) + " bytes");
    }
  }
}

VerifyReport Analysis::Finish() {
  report_.lines = line_count_;
  // A torn last line is not a record: set it aside (CheckEnd reports it).
  std::vector<bool> skip(lines_.size(), false);
  if (!lines_.empty() && (lines_.back().flags & kTorn)) {
    const LineInfo& t = lines_.back();
    report_.torn = TornTail{t.offset, t.length, t.hash};
    skip[lines_.size() - 1] = true;
  }
  // Torn lines that a recovery record acknowledges are set aside too.
  for (size_t i = 1; i < lines_.size(); ++i) {
    const LineInfo& r = lines_[i];
    if (!(r.flags & kParsed) || r.kind != Kind::kRecovery || r.aux == kNone) continue;
    const auto& ack = aux_[r.aux].ack;
    const LineInfo& t = lines_[i - 1];
    if (ack && t.more == 0 && ack->offset == t.offset && ack->bytes == t.length &&
        ack->line_hash == t.hash) {
      skip[i - 1] = true;
      lines_[i - 1].flags |= kAcked;
      report_.notes.push_back(
          Where(static_cast<uint32_t>(i - 1)) + ": a torn write of " + std::to_string(t.length) +
          " bytes at offset " + std::to_string(t.offset) +
          " is acknowledged by the recovery record at " + Where(static_cast<uint32_t>(i)));
    }
  }
  std::vector<uint32_t> cand;
  cand.reserve(lines_.size());
  for (uint32_t i = 0; i < lines_.size(); ++i) {
    if (!skip[i]) cand.push_back(i);
  }
  have_genesis_ = FindGenesis();
  CheckSignatures();
  stack_pos_.assign(lines_.size(), kNone);

  std::vector<uint32_t> work;
  if (IsLinear(cand)) {
    work = cand;  // the common case: no index needed
  } else {
    cand = DropCopies(cand);
    for (uint32_t i : cand) {
      if (!(lines_[i].flags & kParsed)) continue;
      auto it = by_hash_.find(lines_[i].prev);
      if (it != by_hash_.end()) lines_[it->second].flags |= kReferenced;
    }
    work = Reorder(cand);
  }
  Walk(work);
  CheckEnd();

  for (size_t k = 0; k < stack_.size(); ++k) {
    const LineInfo& l = lines_[stack_[k]];
    uint64_t seq = eff_[k];
    bool must_sign =
        l.kind == Kind::kCheckpoint || l.kind == Kind::kEnd || l.kind == Kind::kRecovery;
    switch (l.sig) {
      case SigState::kNone:
        if (must_sign) Add(FindingKind::kBadSignature, seq, stack_[k], "the record is not signed");
        break;
      case SigState::kValid:
        ++report_.signatures;
        break;
      case SigState::kBad:
        Add(FindingKind::kBadSignature, seq, stack_[k],
            "the signature by key " + aux_[l.aux].key_id + " does not verify");
        break;
      case SigState::kUnknownKey:
        Add(FindingKind::kUnknownKey, seq, stack_[k],
            "signed by key " + aux_[l.aux].key_id + ", which is not trusted");
        break;
      case SigState::kUnchecked:
        break;  // no run id: record 0 is already reported
    }
  }
  CheckBlobs();

  if (!have_genesis_) {
    bool said = false;
    for (const auto& f : report_.findings) said |= f.seq == 0;
    if (!said) {
      Add(FindingKind::kMalformed, 0, 0, "no intact run.start names the run id and key id");
    }
  }
  report_.records = stack_.size();
  if (!stack_.empty()) {
    report_.last_seq = eff_.back();
    report_.head = lines_[stack_.back()].hash;
    report_.complete =
        lines_[stack_.back()].kind == Kind::kEnd && lines_[stack_.back()].sig == SigState::kValid;
  }
  std::stable_sort(report_.findings.begin(), report_.findings.end(),
                   [](const Finding& a, const Finding& b) {
                     return a.seq != b.seq ? a.seq < b.seq : a.line < b.line;
                   });
  return std::move(report_);
}

}  // namespace kiln::sessionlog::verify_internal
