#include "runtime/budget.h"

#include <cmath>

namespace kiln::budget {

void Budget::AddUsage(const model::Usage& u) {
  used_.input_tokens += u.input_tokens;
  used_.output_tokens += u.output_tokens;
  used_.cache_read_tokens += u.cache_read_tokens;
  used_.cache_write_tokens += u.cache_write_tokens;
}

uint64_t Budget::elapsed_ms(Clock::time_point now) const {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now - start_).count());
}

double Budget::cost_usd() const {
  if (!price_) return 0;
  return (static_cast<double>(used_.input_tokens) * price_->input_per_mtok +
          static_cast<double>(used_.output_tokens) * price_->output_per_mtok +
          static_cast<double>(used_.cache_read_tokens) * price_->cache_read_per_mtok +
          static_cast<double>(used_.cache_write_tokens) * price_->cache_write_per_mtok) /
         1e6;
}

std::optional<std::string> Budget::Exhausted(Clock::time_point now) const {
  uint64_t input = used_.input_tokens + used_.cache_read_tokens + used_.cache_write_tokens;
  if (turns_ >= limits_.max_turns) return "turns";
  if (limits_.max_input_tokens && input >= limits_.max_input_tokens) return "input_tokens";
  if (limits_.max_output_tokens && used_.output_tokens >= limits_.max_output_tokens) {
    return "output_tokens";
  }
  if (limits_.max_wall_ms && elapsed_ms(now) >= limits_.max_wall_ms) return "wall_time";
  if (limits_.max_cost_usd > 0 && cost_usd() >= limits_.max_cost_usd) return "cost";
  if (limits_.max_tool_output_bytes && tool_bytes_ >= limits_.max_tool_output_bytes) {
    return "tool_output_bytes";
  }
  return std::nullopt;
}

std::optional<uint64_t> Budget::RemainingOutputTokens() const {
  if (!limits_.max_output_tokens) return std::nullopt;
  return used_.output_tokens >= limits_.max_output_tokens
             ? 0
             : limits_.max_output_tokens - used_.output_tokens;
}

std::optional<uint64_t> Budget::RemainingWallMs(Clock::time_point now) const {
  if (!limits_.max_wall_ms) return std::nullopt;
  uint64_t e = elapsed_ms(now);
  return e >= limits_.max_wall_ms ? 0 : limits_.max_wall_ms - e;
}

nlohmann::json Budget::Totals() const {
  nlohmann::json t = {{"turns", turns_},
                      {"input_tokens", used_.input_tokens},
                      {"output_tokens", used_.output_tokens},
                      {"cache_read_tokens", used_.cache_read_tokens},
                      {"cache_write_tokens", used_.cache_write_tokens},
                      {"tool_output_bytes", tool_bytes_},
                      {"wall_ms", elapsed_ms()}};
  // Integer micro-dollars: the session log's canonical JSON has no floats.
  if (price_) t["cost_microusd"] = static_cast<uint64_t>(std::llround(cost_usd() * 1e6));
  return t;
}

}  // namespace kiln::budget
