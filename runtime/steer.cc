#include "runtime/steer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace kiln::steer {

namespace {
constexpr size_t kMaxLine = 1 << 20;
}

Inbox::Inbox(int fd) : fd_(fd) {
  if (fd_ >= 0) ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

std::vector<std::string> Inbox::Take() {
  std::vector<std::string> out;
  if (fd_ < 0) return out;
  char buf[8192];
  while (!eof_) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = n == 0;
      break;
    }
    partial_.append(buf, static_cast<size_t>(n));
  }
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(partial_.data() + start, nl - start);
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("message", nlohmann::json()).is_string() &&
        j.value("from", nlohmann::json()).is_string()) {
      out.push_back("[kiln] Message from " + j["from"].get<std::string>() +
                    " while you work: " + j["message"].get<std::string>());
    } else {
      std::fprintf(stderr, "kiln-runtime: ignoring a malformed steering line\n");
    }
  }
  partial_.erase(0, start);
  if (partial_.size() > kMaxLine) {
    std::fprintf(stderr, "kiln-runtime: ignoring a steering line over %zu bytes\n", kMaxLine);
    partial_.clear();
  }
  return out;
}

}  // namespace kiln::steer
