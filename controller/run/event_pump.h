// The runtime's events into the session log. kiln-runtime writes one JSON
// line per event on a pipe (docs/runtime.md); the pump checks each line —
// a known runtime record type, an object payload — and appends it to the
// run's log with the controller's sequence number, time and hash chain
// (payloads over the writer's threshold go to blobs). What the sandbox sends
// is untrusted: a line that is not a valid event becomes a `controller`
// record saying so, never a record of its own type. The runtime's final
// `result` is held back: the controller completes it with the diff and
// writes it after the sandbox is gone.
//
// An event that cannot be recorded — longer than kMaxEventBytes, or refused
// by the writer — is never dropped quietly: failure() says why, and the
// controller stops the run at once, since the agent would otherwise act on
// what the log does not hold.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/git/git.h"
#include "controller/sessionlog/writer.h"
#include "runtime/events.h"

namespace kiln::pump {

// The longest event line the controller records: the runtime's own limit
// (it emits nothing longer, and acts on nothing it could not emit).
constexpr size_t kMaxEventBytes = events::kMaxLineBytes;

class Pump {
 public:
  // events_fd: the read end of the event pipe; output_fd: the sandbox's
  // stdout and stderr. Both are made non-blocking. The last output_keep
  // bytes of the output are kept; an event line longer than max_event is not
  // recorded (failure() says so).
  Pump(sessionlog::Writer& log, int events_fd, int output_fd, size_t output_keep = 4096,
       size_t max_event = kMaxEventBytes);

  // Each reads what is available now; at end of file its fd() becomes -1.
  void ReadEvents();
  void ReadOutput();
  int events_fd() const { return events_fd_; }
  int output_fd() const { return output_fd_; }
  bool open() const { return events_fd_ >= 0 || output_fd_ >= 0; }

  uint64_t tool_calls() const { return tool_calls_; }
  // Model replies and their tokens, from the usage the runtime reported.
  uint64_t turns() const { return turns_; }
  uint64_t input_tokens() const { return input_tokens_; }
  uint64_t output_tokens() const { return output_tokens_; }
  uint64_t rejected() const { return rejected_; }
  // Why an event could not be recorded; empty while every event was.
  const std::string& failure() const { return failure_; }
  const nlohmann::json& result() const { return result_; }
  // When the first and the last valid event arrived (the runtime's start
  // and its result, for a run's phases); nullopt before any.
  using TimePoint = std::chrono::steady_clock::time_point;
  std::optional<TimePoint> first_event_at() const { return first_event_at_; }
  std::optional<TimePoint> last_event_at() const { return last_event_at_; }
  // The end of the sandbox's output (kiln's and the runtime's stderr, or a
  // command's stdout and stderr), output_keep bytes at most.
  std::string output_tail() const;

 private:
  void Line(std::string_view line);
  void Fail(std::string why);
  void FailOverlong();

  sessionlog::Writer& log_;
  int events_fd_;
  int output_fd_;
  const size_t max_event_;
  std::string partial_;
  bool skipping_ = false;  // inside a line that went over the limit
  std::string output_;
  size_t output_keep_;
  uint64_t tool_calls_ = 0;
  uint64_t turns_ = 0, input_tokens_ = 0, output_tokens_ = 0;
  uint64_t rejected_ = 0;
  std::string failure_;
  nlohmann::json result_;
  std::optional<TimePoint> first_event_at_, last_event_at_;
};

// The session log holds integers of at most 53 bits, 128 levels deep
// (canonical JSON); the agent's tool arguments may carry anything. Each
// fraction and each integer beyond 2^53 in j becomes its decimal text, and a
// subtree nested past 100 levels its JSON text, so that what the model sent
// is recorded (as text) rather than refused. Returns how many were converted.
size_t Sanitise(nlohmann::json& j);

// Appends a `controller` record {event, message}.
Status Note(sessionlog::Writer& log, std::string_view event, std::string_view message);

// The diff as recorded in the `result` record and the store.
nlohmann::json DiffJson(const git::Diff& diff);

}  // namespace kiln::pump
