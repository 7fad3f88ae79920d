#include "base/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "base/terminal.h"

namespace kiln::logging {
namespace {

// %* in the pattern: the message as a JSON object's members.
class JsonFields : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& m, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    auto ts = std::chrono::duration_cast<std::chrono::microseconds>(m.time.time_since_epoch());
    std::time_t secs = static_cast<std::time_t>(ts.count() / 1'000'000);
    std::tm utc{};
    ::gmtime_r(&secs, &utc);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
    std::string stamp =
        std::string(buf) + "." + fmt::format("{:06d}", ts.count() % 1'000'000) + "Z";
    auto level = spdlog::level::to_string_view(m.level);
    std::string line = JsonLine(stamp, std::string(level.data(), level.size()),
                                std::string(m.payload.data(), m.payload.size()));
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonFields>();
  }
};

// %& in the pattern: the message, escaped for the terminal. Messages quote
// what came from outside (an agent's output in a run's error, a forge
// user's text): on stderr they are shown, never obeyed.
class TerminalMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& m, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string text = ForTerminalLine(std::string_view(m.payload.data(), m.payload.size()));
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<TerminalMessage>();
  }
};

}  // namespace

std::string JsonLine(const std::string& ts, const std::string& level, const std::string& msg) {
  nlohmann::json j = {{"ts", ts}, {"level", level}, {"msg", msg}};
  // "run <id>: ..." -> a field of its own, so that a collector can filter.
  if (msg.rfind("run ", 0) == 0) {
    size_t colon = msg.find(": ", 4);
    if (colon != std::string::npos && msg.find(' ', 4) >= colon)
      j["run"] = msg.substr(4, colon - 4);
  }
  return ForTerminalJson(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

Status Setup(const std::string& format) {
  if (format != "text" && format != "json") {
    return Error::Invalid("--log-format " + Quote(format) + ": expected text or json");
  }
  auto logger = spdlog::get("kiln");
  if (!logger) logger = spdlog::stderr_color_mt("kiln");
  if (format == "json") {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<JsonFields>('*').set_pattern("%*");
    logger->set_formatter(std::move(f));
  } else {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<TerminalMessage>('&').set_pattern("kiln: %^%l%$: %&");
    logger->set_formatter(std::move(f));
  }
  spdlog::set_default_logger(logger);
  return Ok();
}

}  // namespace kiln::logging
