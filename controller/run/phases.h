// Where an attempt's own time goes (docs/controller.md, "A run's own cost"):
// named phases in the order they ran, each timed on the monotonic clock.
// Recorded in run.end's `timings.phases` and as the metric
// kiln_run_phase_seconds.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::runner {

class Phases {
 public:
  using Clock = std::chrono::steady_clock;

  // The phases that are the sandbox's and the agent's time: its start, the
  // agent, its exit. Every other phase is kiln's own cost.
  static bool IsSandbox(std::string_view name) {
    return name == "sandbox_start" || name == "agent" || name == "sandbox_exit";
  }

  // Ends the phase under way, as name: the time since the last Lap (or
  // since this object was made) is added to it.
  void Lap(std::string_view name) { Lap(name, Clock::now()); }
  void Lap(std::string_view name, Clock::time_point at) {
    Add(name, Ms(at - last_));
    last_ = at;
  }
  // Adds ms to name (a phase seen again accumulates).
  void Add(std::string_view name, double ms) {
    for (auto& [n, v] : list_) {
      if (n == name) {
        v += ms;
        return;
      }
    }
    list_.emplace_back(std::string(name), ms);
  }

  const std::vector<std::pair<std::string, double>>& list() const { return list_; }

  // The sum of the phases that are kiln's own (not IsSandbox).
  double own_ms() const {
    double sum = 0;
    for (const auto& [n, v] : list_) {
      if (!IsSandbox(n)) sum += v;
    }
    return sum;
  }

  // {"name": microseconds, ...}: whole numbers, as the session log holds.
  nlohmann::json ToJson() const {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [n, v] : list_) out[n] = Us(v);
    return out;
  }

  // Milliseconds as whole microseconds.
  static int64_t Us(double ms) { return static_cast<int64_t>(ms * 1000 + 0.5); }
  static double Ms(Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
  }

 private:
  Clock::time_point last_ = Clock::now();
  std::vector<std::pair<std::string, double>> list_;
};

}  // namespace kiln::runner
