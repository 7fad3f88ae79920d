// The event stream to the controller: one JSON object per line,
// {"type": T, "ts": RFC 3339 UTC, "payload": {...}}, where T is a session log
// record type (model.request, model.response, tool.call, tool.result, result).
// The controller adds the sequence number and the hash chain; the runtime
// inside the sandbox cannot be trusted to.
#pragma once

#include <functional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::events {

class Sink {
 public:
  // fd < 0: no output (tests observe through the callback).
  explicit Sink(int fd) : fd_(fd) {}
  void set_observer(std::function<void(const nlohmann::json&)> f) { observer_ = std::move(f); }

  // Writes one line. A failed write (the controller went away) is returned;
  // the loop ends the run when it cannot log.
  Status Emit(std::string_view type, nlohmann::json payload);

 private:
  int fd_;
  std::function<void(const nlohmann::json&)> observer_;
};

std::string NowRfc3339();

}  // namespace kiln::events
