// The event stream to the controller: one JSON object per line,
// {"type": T, "ts": RFC 3339 UTC, "payload": {...}}, where T is a session log
// record type (model.request, model.response, tool.call, tool.result, result).
// The controller adds the sequence number and the hash chain; the runtime
// inside the sandbox cannot be trusted to.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::events {

// The longest event line the controller records (its pump refuses longer
// ones and stops the run). The runtime refuses to emit a longer one, and so
// to act on what it would describe.
constexpr size_t kMaxLineBytes = 256 << 20;

class Sink {
 public:
  // fd < 0: no output (tests observe through the callback). max_line: the
  // longest line it emits.
  explicit Sink(int fd, size_t max_line = kMaxLineBytes) : fd_(fd), max_line_(max_line) {}
  void set_observer(std::function<void(const nlohmann::json&)> f) { observer_ = std::move(f); }

  // Writes one line. A line over kMaxLineBytes, or a failed write (the
  // controller went away), is returned: the loop acts on nothing it could
  // not report, and ends the run.
  Status Emit(std::string_view type, nlohmann::json payload);

 private:
  int fd_;
  size_t max_line_;
  std::function<void(const nlohmann::json&)> observer_;
};

std::string NowRfc3339();

}  // namespace kiln::events
