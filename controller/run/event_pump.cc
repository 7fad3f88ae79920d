#include "controller/run/event_pump.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::pump {
namespace {

// What one ReadEvents() call takes from the pipe before it returns to the
// poll loop.
constexpr size_t kReadBatch = 4 << 20;

bool RuntimeType(std::string_view t) {
  return t == "model.request" || t == "model.response" || t == "tool.call" || t == "tool.result" ||
         t == "result";
}

void NonBlocking(int fd) {
  if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Reads what is there, up to `batch` bytes; false at end of file (or a hard
// error).
bool Drain(int fd, std::string* into, size_t batch) {
  char buf[65536];
  for (size_t got = 0; got < batch;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into->append(buf, static_cast<size_t>(n));
      got += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  return true;  // more may be waiting: the poll loop calls again
}

}  // namespace

Pump::Pump(sessionlog::Writer& log, int events_fd, int output_fd, size_t output_keep,
           size_t max_event)
    : log_(log),
      events_fd_(events_fd),
      output_fd_(output_fd),
      max_event_(max_event),
      output_keep_(output_keep) {
  NonBlocking(events_fd_);
  NonBlocking(output_fd_);
}

void Pump::ReadEvents() {
  if (events_fd_ < 0) return;
  const size_t scanned = partial_.size();  // no newline before here
  bool more = Drain(events_fd_, &partial_, kReadBatch);
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start == 0 ? scanned : start)) != std::string::npos;
       start = nl + 1) {
    if (skipping_) {
      skipping_ = false;  // the end of an overlong line, already reported
    } else if (nl - start > max_event_) {
      FailOverlong();
    } else {
      Line(std::string_view(partial_).substr(start, nl - start));
    }
  }
  partial_.erase(0, start);
  if (partial_.size() > max_event_) {
    if (!skipping_) FailOverlong();
    skipping_ = true;
    partial_.clear();
  }
  if (!more) {
    if (!partial_.empty() && !skipping_) Line(partial_);
    partial_.clear();
    events_fd_ = -1;
  }
}

void Pump::FailOverlong() {
  Fail("the runtime sent an event longer than " + std::to_string(max_event_) +
       " bytes, more than the controller records");
}

void Pump::Fail(std::string why) {
  ++rejected_;
  (void)Note(log_, "unrecorded_event", why);
  if (failure_.empty()) failure_ = std::move(why);
}

void Pump::Line(std::string_view line) {
  auto reject = [&](const std::string& why) {
    ++rejected_;
    (void)Note(log_, "rejected_event", "an event line from the runtime " + why);
  };
  nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string() || !j.contains("payload") ||
      !j["payload"].is_object()) {
    return reject("is not {\"type\": ..., \"payload\": {...}}: " +
                  std::string(line.substr(0, 200)));
  }
  std::string type = j["type"];
  if (!RuntimeType(type)) return reject("has a type the runtime may not write: " + type);
  last_event_at_ = std::chrono::steady_clock::now();
  if (!first_event_at_) first_event_at_ = last_event_at_;
  nlohmann::json payload = std::move(j["payload"]);
  Sanitise(payload);
  if (type == "result") {
    if (!result_.is_null()) return reject("is a second result");
    result_ = std::move(payload);
    return;
  }
  if (type == "model.request" && payload.contains("body_delta")) {
    return reject(
        "is a model.request with a body_delta, which only the session log's writer "
        "writes");
  }
  if (type == "tool.call") ++tool_calls_;
  if (type == "model.response") {
    // The runtime's numbers came out of the sandbox: counted only if they
    // are numbers.
    ++turns_;
    const auto usage = payload.find("usage");
    if (usage != payload.end() && usage->is_object()) {
      auto add = [&](const char* key, uint64_t* to) {
        auto it = usage->find(key);
        if (it != usage->end() && it->is_number_unsigned()) *to += it->get<uint64_t>();
      };
      add("input_tokens", &input_tokens_);
      add("output_tokens", &output_tokens_);
    }
  }
  if (auto a = log_.Append(type, payload); !a) {
    Fail("a " + type + " event from the runtime could not be recorded: " + a.error().message());
  }
}

void Pump::ReadOutput() {
  if (output_fd_ < 0) return;
  bool more = Drain(output_fd_, &output_, kReadBatch);
  if (output_.size() > output_keep_) output_.erase(0, output_.size() - output_keep_);
  if (!more) output_fd_ = -1;
}

std::string Pump::output_tail() const {
  std::string t = output_;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

namespace {

// The largest integer the log's canonical form holds exactly (jq's doubles).
constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;
// Nesting below the payload the log's canonical form leaves room for (it
// allows 128 levels from the record itself).
constexpr int kMaxDepth = 100;

size_t SanitiseAt(nlohmann::json& j, int depth) {
  if (j.is_number_float()) {
    j = j.dump();
    return 1;
  }
  if (j.is_number_unsigned() ? j.get<uint64_t>() > static_cast<uint64_t>(kMaxSafeInteger)
      : j.is_number_integer()
          ? j.get<int64_t>() > kMaxSafeInteger || j.get<int64_t>() < -kMaxSafeInteger
          : false) {
    j = j.dump();
    return 1;
  }
  if (!j.is_object() && !j.is_array()) return 0;
  if (depth >= kMaxDepth) {
    j = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return 1;
  }
  size_t n = 0;
  for (auto& v : j) n += SanitiseAt(v, depth + 1);
  return n;
}

}  // namespace

size_t Sanitise(nlohmann::json& j) { return SanitiseAt(j, 0); }

Status Note(sessionlog::Writer& log, std::string_view event, std::string_view message) {
  auto a = log.Append("controller", {{"event", event}, {"message", message}});
  if (!a) return a.error();
  return Ok();
}

nlohmann::json DiffJson(const git::Diff& diff) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : diff.files) {
    nlohmann::json e = {{"path", f.path},         {"status", std::string(1, f.status)},
                        {"old_mode", f.old_mode}, {"new_mode", f.new_mode},
                        {"binary", f.binary},     {"too_large", f.too_large},
                        {"size", f.size}};
    if (!f.old_path.empty()) e["old_path"] = f.old_path;
    if (f.new_mode == 0120000) e["link_target"] = f.link_target;
    files.push_back(std::move(e));
  }
  return {{"sha256", diff.sha256}, {"bytes", diff.patch.size()},      {"truncated", diff.truncated},
          {"files", files},        {"files_total", diff.files_total}, {"patch", diff.patch}};
}

}  // namespace kiln::pump
