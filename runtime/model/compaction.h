// Keeps the conversation inside the model's context window without a model
// call (a summarising call would spend budget and could itself overflow):
//   1. tool outputs and long tool-call arguments older than the most recent
//      keep_recent turns are replaced by a stub saying how much was elided;
//   2. if that is not enough, the oldest whole turns (an assistant message
//      and the tool results answering it) are dropped, and the task message
//      says how many were removed.
// The task (first user message) and the recent turns are never touched, and
// tool calls stay paired with their results, which both APIs require.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/model/model.h"

namespace kiln::compaction {

// A rough token count: bytes / 4 of everything sent.
uint64_t EstimateTokens(const std::string& system, const std::vector<model::Message>& messages,
                        const std::vector<tool::Def>& tools);

struct Outcome {
  uint64_t tokens_before = 0;
  uint64_t tokens_after = 0;
  uint64_t elided_items = 0;
  uint64_t elided_bytes = 0;
  uint64_t dropped_turns = 0;
  nlohmann::json ToJson() const;
};

// Compacts messages until the estimate (times scale, a calibration from the
// provider's real counts) is at most target_tokens, or nothing more can go.
Outcome Compact(const std::string& system, std::vector<model::Message>& messages,
                const std::vector<tool::Def>& tools, uint64_t target_tokens,
                uint64_t keep_recent_turns, double scale);

}  // namespace kiln::compaction
