#include "controller/log_recovery.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "controller/sessionlog/writer.h"

namespace kiln::log_recovery {

namespace {
// run.end is small (status, totals, timings): its line is well within this.
constexpr off_t kTail = 64 << 10;
}  // namespace

Result<std::string> CloseStoppedLog(const std::string& path,
                                    std::shared_ptr<const sessionlog::Signer> signer,
                                    std::string_view reason, const nlohmann::json& run_end) {
  KILN_ASSIGN_OR_RETURN(auto w, sessionlog::Writer::Recover(path, std::move(signer), {}, reason));
  KILN_ASSIGN_OR_RETURN(auto end, w->Close(run_end));
  return sessionlog::Hex(end.hash);
}

bool EndsWithRunEnd(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || st.st_size == 0) return false;
  off_t from = st.st_size > kTail ? st.st_size - kTail : 0;
  std::string tail(static_cast<size_t>(st.st_size - from), '\0');
  if (::pread(fd.get(), tail.data(), tail.size(), from) != static_cast<ssize_t>(tail.size())) {
    return false;
  }
  if (tail.back() != '\n') return false;  // torn
  size_t start = tail.rfind('\n', tail.size() - 2);
  auto last = nlohmann::json::parse(start == std::string::npos ? tail : tail.substr(start + 1),
                                    nullptr, false);
  return last.is_object() && last.value("type", "") == "run.end";
}

size_t Sweeper::Sweep() {
  size_t closed = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(log_dir_, ec)) {
    if (e.path().extension() != ".log") continue;
    std::string path = e.path().string();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    Seen now{st.st_size, st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec, false};
    Seen& before = seen_[path];
    if (before.complete && before.size == now.size && before.mtime_ns == now.mtime_ns) continue;
    // A log just created is locked a moment after it appears; leave the
    // newest alone rather than race its writer for the lock.
    if (st.st_size == 0 || std::time(nullptr) - st.st_mtim.tv_sec < settle_) continue;
    if (EndsWithRunEnd(path)) {
      before = now;
      before.complete = true;
      continue;
    }
    auto head = CloseStoppedLog(
        path, signer_, "the writer stopped without run.end; closed by the log sweep",
        {{"status", "error"},
         {"error", "the controller could not finish this log; closed when it could be written"}});
    if (head) {
      spdlog::warn("log recovery: closed {} (it had no run.end)", path);
      ++closed;
      continue;
    }
    // Held by a writer (a run in flight): not ours. Anything else is said
    // once per state of the file.
    if (head.error().code() != Error::Code::kPermission &&
        (before.size != now.size || before.mtime_ns != now.mtime_ns)) {
      spdlog::error("log recovery: {}: {}", path, head.error().message());
    }
    before = now;
  }
  return closed;
}

}  // namespace kiln::log_recovery
