// The verifier's internals, shared by analysis.cc (pass 1 over the lines, and
// the checks of pass 2) and chain.cc (reconstructing the chain and explaining
// every break in it). Not a public interface: use verify.h.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "controller/sessionlog/line_reader.h"
#include "controller/sessionlog/record.h"
#include "controller/sessionlog/verify.h"

namespace kiln::sessionlog::verify_internal {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr uint32_t kGenesis = kNone - 1;  // the virtual predecessor of seq 0

enum Flags : uint8_t {
  kParsed = 1,
  kTorn = 2,        // the last line, without a newline
  kAcked = 4,       // a torn line a recovery record acknowledges
  kReferenced = 8,  // some line's prev is this line's hash
};

enum class Kind : uint8_t { kOther, kStart, kCheckpoint, kEnd, kRecovery };

enum class SigState : uint8_t { kNone, kValid, kBad, kUnknownKey, kUnchecked };

// What pass 1 keeps per line: about 100 bytes. Consecutive lines that are not
// records share one LineInfo (`more` counts the extra lines), so that junk
// costs no memory per line.
struct LineInfo {
  uint64_t offset = 0;
  uint64_t length = 0;   // without the newline; for merged junk, up to the last one's
  uint64_t line_no = 0;  // 1-based
  Digest hash{};
  Digest prev{};
  uint64_t seq = 0;
  uint32_t aux = kNone;    // index into Analysis::aux_
  uint32_t error = kNone;  // index into Analysis::errors_
  uint32_t more = 0;       // further junk lines merged into this one
  uint8_t flags = 0;
  Kind kind = Kind::kOther;
  SigState sig = SigState::kNone;
};

// Extra data for the few lines that need it: signed records, blobs, run.start
// and recovery records.
struct Aux {
  bool signed_record = false;
  std::string key_id;
  std::string signature;  // decoded; empty if not valid base64
  Digest head{};
  std::optional<BlobRef> blob;
  std::string run_id, start_key_id;  // run.start
  std::optional<TornTail> ack;       // recovery
};

struct Digest32Hash {
  size_t operator()(const Digest& d) const {
    size_t h;
    std::memcpy(&h, d.data(), sizeof h);
    return h;
  }
};

class Analysis {
 public:
  Analysis(const VerifyOptions& options, const BlobLookup& blobs)
      : options_(options), blobs_(blobs) {}

  // Pass 1: one call per line, in file order.
  void AddLine(const LineReader::Line& line, const Digest* hash);
  // Pass 2: the chain, signatures and blobs.
  VerifyReport Finish();

 private:
  void ParseExtra(LineInfo& li, const ParsedRecord& rec, std::string_view bytes);
  void Add(FindingKind kind, uint64_t seq, uint32_t line, std::string message);
  // The 1-based line number of lines_[i], or of the line after the last.
  uint64_t LineNo(uint32_t i) const {
    return i < lines_.size() ? lines_[i].line_no : line_count_ + 1;
  }
  std::string Where(uint32_t i) const { return "line " + std::to_string(LineNo(i)); }
  // Why lines_[i] is not a record.
  std::string Damage(uint32_t i) const;
  bool MergeJunk(const LineReader::Line& line);
  void CheckSignatures();
  bool FindGenesis();
  bool IsLinear(const std::vector<uint32_t>& cand) const;
  std::vector<uint32_t> DropCopies(const std::vector<uint32_t>& cand);
  std::vector<uint32_t> Reorder(const std::vector<uint32_t>& cand);
  // One line in Walk: lines_[i], the seq the chain expects next, the line
  // after it, the hash its prev should be, and the findings' count before it.
  struct Step {
    uint32_t i;
    const LineInfo& l;
    uint64_t next_seq;
    const LineInfo* n;
    const Digest* expect;
    size_t mark;
  };
  void Walk(const std::vector<uint32_t>& work);
  void NotARecord(const Step& s, bool after_end);
  void Linked(const Step& s);
  bool BrokenLink(const Step& s);
  bool LinksBack(const Step& s, uint32_t p);
  void AfterExplainedBreak(const Step& s);
  void PrevMatchesNothing(const Step& s);
  void Accept(uint32_t i, uint64_t eff, size_t mark);
  bool Confirmed(uint32_t i) const {
    return (lines_[i].flags & kReferenced) != 0 || lines_[i].sig == SigState::kValid;
  }
  uint32_t Pred(const LineInfo& l) const;
  void CheckEnd();
  void CheckBlobs();

  const VerifyOptions& options_;
  const BlobLookup& blobs_;
  Sha256 sha_;
  std::vector<LineInfo> lines_;
  uint64_t line_count_ = 0;
  std::vector<Aux> aux_;
  std::vector<std::string> errors_;
  std::unordered_map<Digest, uint32_t, Digest32Hash> by_hash_;
  bool have_genesis_ = false;
  Digest genesis_{};
  // The chain as accepted so far.
  std::vector<uint32_t> stack_;
  std::vector<uint64_t> eff_;
  std::vector<size_t> marks_;
  std::vector<uint32_t> stack_pos_;
  bool explained_ = false;  // Walk: the last break is already accounted for
  VerifyReport report_;
};

}  // namespace kiln::sessionlog::verify_internal
