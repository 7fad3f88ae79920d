#include "runtime/events.h"

#include <sys/time.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "base/fd.h"

namespace kiln::events {

std::string NowRfc3339() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(us % 1000000));
  return buf;
}

Status Sink::Emit(std::string_view type, nlohmann::json payload) {
  nlohmann::json line = {{"type", type}, {"ts", NowRfc3339()}, {"payload", std::move(payload)}};
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  if (text.size() > max_line_) {
    return Error::Invalid("the " + std::string(type) + " event is " + std::to_string(text.size()) +
                          " bytes, more than the " + std::to_string(max_line_) +
                          " a run's log records");
  }
  if (observer_) observer_(line);
  if (fd_ < 0) return Ok();
  Status s = WriteAll(fd_, text);
  if (!s.ok()) return s.error().Wrap("writing the " + std::string(type) + " event");
  return Ok();
}

}  // namespace kiln::events
