// Pass 2 of the verifier: puts the lines in chain order and explains every
// break in the chain as the fewest modifications, deletions, insertions and
// moves (docs/session-log.md, "How breaks are attributed").
#include <algorithm>

#include "controller/sessionlog/analysis.h"

namespace kiln::sessionlog::verify_internal {

uint32_t Analysis::Pred(const LineInfo& l) const {
  if (have_genesis_ && l.prev == genesis_) return kGenesis;
  auto it = by_hash_.find(l.prev);
  return it == by_hash_.end() ? kNone : it->second;
}

// Finds records of the chain that sit at the wrong place in the file: those
// outside a longest run of increasing seq whose links prove them genuine
// (their prev is the record before them and the record after them names
// them). Returns the candidates in chain order.
std::vector<uint32_t> Analysis::Reorder(const std::vector<uint32_t>& cand) {
  // Longest strictly increasing subsequence of seq over parsed lines.
  std::vector<uint32_t> parsed;
  for (uint32_t i : cand) {
    if (lines_[i].flags & kParsed) parsed.push_back(i);
  }
  std::vector<uint32_t> tails, tail_idx, back(parsed.size(), kNone);
  for (uint32_t k = 0; k < parsed.size(); ++k) {
    uint64_t s = lines_[parsed[k]].seq;
    auto it = std::lower_bound(tails.begin(), tails.end(), s,
                               [&](uint32_t t, uint64_t v) { return lines_[parsed[t]].seq < v; });
    size_t pos = static_cast<size_t>(it - tails.begin());
    if (pos > 0) back[k] = tails[pos - 1];
    if (it == tails.end()) {
      tails.push_back(k);
    } else {
      *it = k;
    }
  }
  std::vector<bool> in_lis(lines_.size(), false);
  for (uint32_t k = tails.empty() ? kNone : tails.back(); k != kNone; k = back[k]) {
    in_lis[parsed[k]] = true;
  }

  // The candidates as a linked list, so that moving a record is O(1).
  std::vector<uint32_t> next(lines_.size(), kNone), prev_in_list(lines_.size(), kNone);
  uint32_t head = kNone, tail = kNone;
  for (uint32_t i : cand) {
    if (tail == kNone) {
      head = i;
    } else {
      next[tail] = i;
      prev_in_list[i] = tail;
    }
    tail = i;
  }
  std::vector<uint32_t> displaced;
  for (uint32_t i : parsed) {
    if (in_lis[i]) continue;
    const LineInfo& l = lines_[i];
    uint32_t p = Pred(l);
    if (p == kNone) continue;
    bool pred_fits =
        p == kGenesis ? l.seq == 0 : (lines_[p].flags & kParsed) && lines_[p].seq + 1 == l.seq;
    bool genuine = pred_fits && (Confirmed(i) || l.kind == Kind::kEnd);
    if (!genuine || prev_in_list[i] == p || (p == kGenesis && head == i)) continue;
    displaced.push_back(i);
  }
  std::sort(displaced.begin(), displaced.end(),
            [&](uint32_t a, uint32_t b) { return lines_[a].seq < lines_[b].seq; });
  for (uint32_t i : displaced) {
    // Unlink i, then link it after its predecessor.
    uint32_t a = prev_in_list[i], b = next[i];
    if (a == kNone) {
      head = b;
    } else {
      next[a] = b;
    }
    if (b != kNone) prev_in_list[b] = a;
    uint32_t p = Pred(lines_[i]);
    uint32_t after = p == kGenesis ? kNone : p;
    uint32_t before = after == kNone ? head : next[after];
    prev_in_list[i] = after;
    next[i] = before;
    if (after == kNone) {
      head = i;
    } else {
      next[after] = i;
    }
    if (before != kNone) prev_in_list[before] = i;
    const std::string pred_where = p == kGenesis ? "the start of the log" : Where(p);
    Add(FindingKind::kReordered, lines_[i].seq, i,
        "record seq " + std::to_string(lines_[i].seq) + " is out of order: the chain places it " +
            "right after " +
            (p == kGenesis ? pred_where
                           : "seq " + std::to_string(lines_[p].seq) + " (" + pred_where + ")"));
  }
  std::vector<uint32_t> work;
  work.reserve(cand.size());
  for (uint32_t i = head; i != kNone; i = next[i]) work.push_back(i);
  return work;
}

// Exact copies of a record: the copy that sits where the chain puts it (after
// the record its prev names) is the record; the others are inserted. Builds
// by_hash_ over the remaining lines.
std::vector<uint32_t> Analysis::DropCopies(const std::vector<uint32_t>& cand) {
  by_hash_.reserve(cand.size());
  std::vector<uint32_t> copies;  // lines whose hash an earlier line has
  for (uint32_t i : cand) {
    if (!by_hash_.emplace(lines_[i].hash, i).second && (lines_[i].flags & kParsed)) {
      copies.push_back(i);
    }
  }
  if (copies.empty()) return cand;
  auto in_place = [&](uint32_t i) {
    auto it = std::lower_bound(cand.begin(), cand.end(), i);
    return it == cand.begin() ? (have_genesis_ && lines_[i].prev == genesis_)
                              : lines_[*(it - 1)].hash == lines_[i].prev;
  };
  std::vector<bool> drop(lines_.size(), false);
  for (uint32_t c : copies) {
    uint32_t& keeper = by_hash_[lines_[c].hash];
    if (!in_place(keeper) && in_place(c)) std::swap(keeper, c);
    drop[c] = true;
    Add(FindingKind::kInserted, lines_[c].seq, c,
        "a copy of record seq " + std::to_string(lines_[c].seq) + " (" + Where(keeper) + ")");
  }
  std::vector<uint32_t> out;
  out.reserve(cand.size());
  for (uint32_t i : cand) {
    if (!drop[i]) out.push_back(i);
  }
  return out;
}

void Analysis::Accept(uint32_t i, uint64_t eff, size_t mark) {
  stack_pos_[i] = static_cast<uint32_t>(stack_.size());
  stack_.push_back(i);
  eff_.push_back(eff);
  marks_.push_back(mark);
}

// Walks the lines in chain order and explains every break in the chain with
// the fewest edits: a modified record breaks the link after it (and the one
// before it too if its prev changed), a deleted one leaves a seq gap, an
// inserted one is skipped by the link around it.
void Analysis::Walk(const std::vector<uint32_t>& work) {
  explained_ = false;
  for (size_t pos = 0; pos < work.size(); ++pos) {
    const uint32_t i = work[pos];
    const Step s{
        i,
        lines_[i],
        stack_.empty() ? 0 : eff_.back() + 1,
        pos + 1 < work.size() ? &lines_[work[pos + 1]] : nullptr,
        stack_.empty() ? (have_genesis_ ? &genesis_ : nullptr) : &lines_[stack_.back()].hash,
        report_.findings_total};
    const bool after_end = !stack_.empty() && lines_[stack_.back()].kind == Kind::kEnd;
    if (!(s.l.flags & kParsed)) {
      NotARecord(s, after_end);
    } else if (after_end) {
      Add(FindingKind::kInserted, s.l.seq, i,
          "record seq " + std::to_string(s.l.seq) + " comes after run.end, which ends the log");
    } else if (s.expect != nullptr && s.l.prev == *s.expect) {
      Linked(s);
    } else if (BrokenLink(s)) {
      --pos;  // re-examine this line against the repaired chain
    }
  }
}

// A line that is not a record: inserted junk, a damaged record, or neither.
void Analysis::NotARecord(const Step& s, bool after_end) {
  const std::string why = Damage(s.i);
  if (after_end) {
    Add(FindingKind::kInserted, s.next_seq, s.i,
        "a line after run.end that is not a record: " + why);
    return;
  }
  const bool n_parsed = s.n != nullptr && (s.n->flags & kParsed);
  if (n_parsed && s.expect != nullptr && s.n->prev == *s.expect) {
    Add(FindingKind::kInserted, s.next_seq, s.i,
        "not a record (" + why + "), and the chain continues around it");
    return;
  }
  explained_ = true;
  if (n_parsed && s.n->seq == s.next_seq + 1) {
    Add(FindingKind::kModified, s.next_seq, s.i,
        "record seq " + std::to_string(s.next_seq) + " is damaged: " + why);
    Accept(s.i, s.next_seq, s.mark);
    return;
  }
  Add(FindingKind::kMalformed, s.next_seq, s.i, "not a session log record: " + why);
}

// A record whose prev is the record before it: only its seq can be wrong.
void Analysis::Linked(const Step& s) {
  explained_ = s.l.seq != s.next_seq;
  if (explained_) {
    Add(FindingKind::kModified, s.next_seq, s.i,
        "the record's seq says " + std::to_string(s.l.seq) + " but its prev links it as seq " +
            std::to_string(s.next_seq));
  }
  Accept(s.i, s.next_seq, s.mark);
}

// A record whose prev is not the record before it. True when the chain was
// repaired and the record must be looked at again.
bool Analysis::BrokenLink(const Step& s) {
  const LineInfo& l = s.l;
  // An exact copy of the record before it?
  if (!stack_.empty() && l.hash == lines_[stack_.back()].hash) {
    Add(FindingKind::kInserted, l.seq, s.i, "a copy of " + Where(stack_.back()));
    return false;
  }
  uint32_t p = Pred(l);
  bool links_back =
      (p == kGenesis && !stack_.empty()) ||
      (p != kNone && p != kGenesis && stack_pos_[p] != kNone && stack_pos_[p] + 1 < stack_.size());
  if (links_back) return LinksBack(s, p);
  if (explained_) {
    AfterExplainedBreak(s);
  } else if (l.seq > s.next_seq) {
    std::string before = stack_.empty() ? std::string("at the start of the log")
                                        : "after seq " + std::to_string(eff_.back());
    Add(FindingKind::kDeleted, s.next_seq, s.i,
        (l.seq - s.next_seq == 1
             ? "record seq " + std::to_string(s.next_seq) + " is missing "
             : "records seq " + std::to_string(s.next_seq) + ".." + std::to_string(l.seq - 1) +
                   " (" + std::to_string(l.seq - s.next_seq) + " records) are missing ") +
            before + ": seq " + std::to_string(l.seq) + " links to a record not in the file");
    Accept(s.i, l.seq, s.mark);
  } else if (l.seq == s.next_seq) {
    PrevMatchesNothing(s);
  } else {
    Add(FindingKind::kInserted, l.seq, s.i,
        "record claiming seq " + std::to_string(l.seq) +
            " is not part of the chain: that seq is already taken and its prev matches nothing");
  }
  return false;
}

// The record links to an earlier record of the chain (p). Either it or the
// records accepted after p are not part of the chain: the one that a later
// record (or a valid signature) confirms wins. True when the records after p
// were taken out, so the record is looked at again.
bool Analysis::LinksBack(const Step& s, uint32_t p) {
  size_t keep = p == kGenesis ? 0 : stack_pos_[p] + 1;
  if (!Confirmed(s.i) || Confirmed(stack_[keep])) {
    Add(FindingKind::kInserted, s.l.seq, s.i,
        "record claiming seq " + std::to_string(s.l.seq) + " is not part of the chain: " +
            (p == kGenesis ? std::string("the start of the log") : Where(p)) +
            " is already followed by " + Where(stack_[keep]));
    return false;
  }
  // Retract what was said while accepting the popped records, then report
  // them as inserted.
  std::vector<uint32_t> popped(stack_.begin() + static_cast<ptrdiff_t>(keep), stack_.end());
  // By the file's line numbers, which findings carry: a record's line_no is
  // not its index (a line without its newline joins the next), and a
  // finding may be about the line after the last.
  std::vector<bool> is_popped_line(line_count_ + 2, false);
  for (uint32_t x : popped) is_popped_line[lines_[x].line_no] = true;
  size_t from = std::min(marks_[keep], report_.findings.size());
  auto gone = std::remove_if(
      report_.findings.begin() + static_cast<ptrdiff_t>(from), report_.findings.end(),
      [&](const Finding& f) { return f.line < is_popped_line.size() && is_popped_line[f.line]; });
  report_.findings_total -= static_cast<uint64_t>(report_.findings.end() - gone);
  report_.findings.erase(gone, report_.findings.end());
  for (uint32_t x : popped) stack_pos_[x] = kNone;
  stack_.resize(keep);
  eff_.resize(keep);
  marks_.resize(keep);
  for (uint32_t x : popped) {
    Add(FindingKind::kInserted, lines_[x].seq, x,
        "record claiming seq " + std::to_string(lines_[x].seq) +
            " is not part of the chain: " + Where(s.i) + " links around it");
  }
  explained_ = false;
  return true;
}

// The first broken link after a break already accounted for (a damaged or
// modified record): the chain goes on from this record.
void Analysis::AfterExplainedBreak(const Step& s) {
  explained_ = false;
  const uint64_t seq = s.l.seq;
  if (seq < s.next_seq) {
    Add(FindingKind::kInserted, seq, s.i,
        "record claiming seq " + std::to_string(seq) + " is not part of the chain");
    return;
  }
  if (seq > s.next_seq) {
    Add(FindingKind::kDeleted, s.next_seq, s.i,
        seq - s.next_seq == 1 ? "record seq " + std::to_string(s.next_seq) + " is missing"
                              : "records seq " + std::to_string(s.next_seq) + ".." +
                                    std::to_string(seq - 1) + " are missing");
  }
  Accept(s.i, seq, s.mark);
}

// The record has the seq that comes next but a prev that matches nothing:
// either the record before it was modified (when the record after confirms
// this one) or this one's prev was.
void Analysis::PrevMatchesNothing(const Step& s) {
  const LineInfo& l = s.l;
  bool confirmed =
      s.n != nullptr ? ((s.n->flags & kParsed) && s.n->prev == l.hash) : l.sig == SigState::kValid;
  if (confirmed && stack_.empty()) {
    Add(FindingKind::kModified, 0, s.i,
        "record seq 0's prev is not the genesis hash of run " + report_.run_id);
  } else if (confirmed) {
    Add(FindingKind::kModified, eff_.back(), stack_.back(),
        "record seq " + std::to_string(eff_.back()) + " does not hash to the prev of seq " +
            std::to_string(l.seq) + " (" + Where(s.i) + ")");
  } else {
    Add(FindingKind::kModified, l.seq, s.i,
        "record seq " + std::to_string(l.seq) + " has a prev that matches no record before it");
    explained_ = true;
  }
  Accept(s.i, l.seq, s.mark);
}

}  // namespace kiln::sessionlog::verify_internal
