#include "runtime/model/compaction.h"

#include <cstdlib>

namespace kiln::compaction {
namespace {

constexpr size_t kStubAbove = 256;  // shorter items are not worth a stub

uint64_t MessageBytes(const model::Message& m) {
  uint64_t n = 16;
  for (const auto& b : m.blocks) {
    n += b.text.size() + b.call.name.size() + b.call.id.size() + 16;
    if (b.kind == model::Block::Kind::kToolUse) n += b.call.input.dump().size();
    if (b.kind == model::Block::Kind::kOther) n += b.raw.dump().size();
  }
  for (const auto& r : m.results) n += r.content.size() + r.call_id.size() + 16;
  return n;
}

uint64_t Scaled(uint64_t tokens, double scale) {
  return static_cast<uint64_t>(static_cast<double>(tokens) * scale);
}

void ElideStrings(nlohmann::json& j, Outcome& out) {
  if (j.is_string() && j.get_ref<const std::string&>().size() > kStubAbove) {
    size_t n = j.get_ref<const std::string&>().size();
    j = "[elided by compaction: " + std::to_string(n) + " bytes]";
    ++out.elided_items;
    out.elided_bytes += n;
  } else if (j.is_structured()) {
    for (auto& v : j) ElideStrings(v, out);
  }
}

}  // namespace

nlohmann::json Outcome::ToJson() const {
  return {{"tokens_before", tokens_before},
          {"tokens_after", tokens_after},
          {"elided_items", elided_items},
          {"elided_bytes", elided_bytes},
          {"dropped_turns", dropped_turns}};
}

uint64_t EstimateTokens(const std::string& system, const std::vector<model::Message>& messages,
                        const std::vector<tool::Def>& tools) {
  uint64_t bytes = system.size();
  for (const auto& t : tools)
    bytes += t.name.size() + t.description.size() + t.input_schema.dump().size();
  for (const auto& m : messages) bytes += MessageBytes(m);
  return bytes / 4;
}

Outcome Compact(const std::string& system, std::vector<model::Message>& messages,
                const std::vector<tool::Def>& tools, uint64_t target_tokens,
                uint64_t keep_recent_turns, double scale) {
  Outcome out;
  auto estimate = [&] { return Scaled(EstimateTokens(system, messages, tools), scale); };
  out.tokens_before = estimate();
  out.tokens_after = out.tokens_before;
  if (out.tokens_before <= target_tokens || messages.size() < 2) return out;
  // messages: [task, assistant, user, assistant, user, ...]; a turn is a pair.
  size_t protected_from =
      messages.size() > 2 * keep_recent_turns ? messages.size() - 2 * keep_recent_turns : 1;
  if (protected_from < 1) protected_from = 1;
  for (size_t i = 1; i < protected_from && estimate() > target_tokens; ++i) {
    for (auto& r : messages[i].results) {
      if (r.content.size() <= kStubAbove) continue;
      ++out.elided_items;
      out.elided_bytes += r.content.size();
      r.content = "[elided by compaction: " + std::to_string(r.content.size()) +
                  " bytes of tool output; run the tool again if you need it]";
    }
    for (auto& b : messages[i].blocks) {
      if (b.kind == model::Block::Kind::kToolUse) ElideStrings(b.call.input, out);
      if (b.kind == model::Block::Kind::kText && b.text.size() > 4 * kStubAbove) {
        ++out.elided_items;
        out.elided_bytes += b.text.size();
        b.text = b.text.substr(0, kStubAbove) + " [... elided by compaction]";
      }
    }
  }
  // Whole turns go next, oldest first, assistant message and its results together.
  while (estimate() > target_tokens && protected_from >= 3 && messages.size() >= 3) {
    messages.erase(messages.begin() + 1, messages.begin() + 3);
    protected_from -= 2;
    ++out.dropped_turns;
  }
  if (out.dropped_turns) {
    auto& task = messages[0].blocks;
    bool has_note = !task.empty() && task.back().kind == model::Block::Kind::kText &&
                    task.back().text.rfind("[kiln: ", 0) == 0;
    // One note with the running total, however often compaction ran.
    uint64_t total = out.dropped_turns;
    if (has_note) total += std::strtoull(task.back().text.c_str() + 7, nullptr, 10);
    std::string note = "[kiln: " + std::to_string(total) +
                       " earlier turns were removed to fit the context window]";
    if (has_note) {
      task.back().text = note;
    } else {
      model::Block b;
      b.text = note;
      task.push_back(b);
    }
  }
  out.tokens_after = estimate();
  return out;
}

}  // namespace kiln::compaction
