// The run's budgets: turns, input and output tokens, wall time, cost and tool
// output bytes. Every model attempt's usage is charged, failed ones included,
// so retries cannot overspend; the loop also shrinks each request's
// max_tokens and timeouts to what is left (Remaining*), so a budget holds
// within one reply instead of being noticed after it.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/model/model.h"
#include "runtime/spec.h"

namespace kiln::budget {

class Budget {
 public:
  using Clock = std::chrono::steady_clock;
  Budget(const spec::Budgets& limits, std::optional<spec::Price> price,
         Clock::time_point start = Clock::now())
      : limits_(limits), price_(price), start_(start) {}

  void AddTurn() { ++turns_; }
  void AddUsage(const model::Usage& u);
  void AddToolOutput(uint64_t bytes) { tool_bytes_ += bytes; }

  // The name of the first budget that is used up ("turns", "input_tokens",
  // "output_tokens", "wall_time", "cost", "tool_output_bytes"), if any.
  // Turns are used up when the next turn would exceed max_turns.
  std::optional<std::string> Exhausted(Clock::time_point now = Clock::now()) const;

  // What is left, or nullopt when unlimited.
  std::optional<uint64_t> RemainingOutputTokens() const;
  std::optional<uint64_t> RemainingWallMs(Clock::time_point now = Clock::now()) const;

  double cost_usd() const;
  uint64_t turns() const { return turns_; }
  uint64_t elapsed_ms(Clock::time_point now = Clock::now()) const;
  nlohmann::json Totals() const;

 private:
  spec::Budgets limits_;
  std::optional<spec::Price> price_;
  Clock::time_point start_;
  uint64_t turns_ = 0;
  model::Usage used_;
  uint64_t tool_bytes_ = 0;
};

}  // namespace kiln::budget
