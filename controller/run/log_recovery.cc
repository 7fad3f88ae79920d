#include "controller/run/log_recovery.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/fd.h"
#include "controller/sessionlog/verify.h"
#include "controller/sessionlog/writer.h"

namespace kiln::log_recovery {

namespace {
// The first read of a log's end; widened until the last line is whole.
constexpr off_t kTail = 64 << 10;
}  // namespace

Result<std::string> CloseStoppedLog(const std::string& path,
                                    std::shared_ptr<const sessionlog::Signer> signer,
                                    std::string_view reason, const nlohmann::json& run_end) {
  auto w = sessionlog::Writer::Recover(path, std::move(signer), {}, reason);
  if (!w) {
    // Closed already (by the sweep, or before a crash): its head stands.
    auto report = sessionlog::Verify(path, {});
    if (report && report->complete) return Hex(report->head);
    return w.error();
  }
  KILN_ASSIGN_OR_RETURN(auto end, (*w)->Close(run_end));
  return Hex(end.hash);
}

bool EndsWithRunEnd(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || st.st_size == 0) return false;
  // Back from the end until the newline before the last line (run.end is
  // usually small, but its error may quote a long output).
  for (off_t window = kTail;; window *= 2) {
    off_t from = st.st_size > window ? st.st_size - window : 0;
    std::string tail(static_cast<size_t>(st.st_size - from), '\0');
    if (::pread(fd.get(), tail.data(), tail.size(), from) != static_cast<ssize_t>(tail.size())) {
      return false;
    }
    if (tail.back() != '\n') return false;  // torn
    size_t start = tail.size() < 2 ? std::string::npos : tail.rfind('\n', tail.size() - 2);
    if (start == std::string::npos && from > 0) continue;
    auto last = nlohmann::json::parse(start == std::string::npos ? tail : tail.substr(start + 1),
                                      nullptr, false);
    return last.is_object() && last.value("type", "") == "run.end";
  }
}

// One line per settled log: "<size> <mtime_ns> <file name>".
void Sweeper::LoadSettled() {
  loaded_ = true;
  auto text = ReadFile(log_dir_ + "/.settled");
  if (!text) return;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Seen s;
    std::string name;
    // A line that does not read is dropped: that log is read again.
    if (!(fields >> s.size >> s.mtime_ns) || !std::getline(fields >> std::ws, name) ||
        name.empty() || name.find('/') != std::string::npos) {
      continue;
    }
    s.settled = true;
    seen_[log_dir_ + "/" + name] = s;
  }
}

void Sweeper::SaveSettled() const {
  std::string text;
  for (const auto& [path, s] : seen_) {
    if (!s.settled) continue;
    text += std::to_string(s.size) + " " + std::to_string(s.mtime_ns) + " " +
            std::filesystem::path(path).filename().string() + "\n";
  }
  // A cache: when it cannot be written, the next process reads the logs.
  (void)WriteFileAtomic(log_dir_ + "/.settled", text, 0600, Sync::kNoFsync);
}

size_t Sweeper::Sweep() {
  if (!loaded_) LoadSettled();
  size_t closed = 0;
  std::map<std::string, Seen> seen;  // this sweep's: files that went are forgotten
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(log_dir_, ec)) {
    if (e.path().extension() != ".log") continue;
    std::string path = e.path().string();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const Seen now{st.st_size, st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec};
    auto it = seen_.find(path);
    const bool unchanged =
        it != seen_.end() && it->second.size == now.size && it->second.mtime_ns == now.mtime_ns;
    // Complete, or found beyond recovery, and unchanged since: nothing to read.
    if (unchanged && it->second.settled) {
      seen[path] = it->second;
      continue;
    }
    // A log just created is locked a moment after it appears; leave the
    // newest alone rather than race its writer for the lock.
    // The fine clock: file times can be finer than time()'s coarse one (the
    // kernel's multigrain timestamps), and a second ahead of it.
    timespec wall{};
    ::clock_gettime(CLOCK_REALTIME, &wall);
    const int64_t age_ns = (wall.tv_sec * 1'000'000'000LL + wall.tv_nsec) - now.mtime_ns;
    if (st.st_size == 0 || age_ns < settle_ * 1'000'000'000LL) continue;
    Seen& entry = seen[path] = now;
    if (EndsWithRunEnd(path)) {
      entry.settled = true;
      continue;
    }
    auto head = CloseStoppedLog(
        path, signer_,
        "the writer stopped without run.end (its controller died, or could not write); closed by "
        "the log sweep",
        {{"status", "error"},
         {"error",
          "the controller did not finish this log (it died, or could not write it); closed by "
          "the log sweep"}});
    if (head) {
      spdlog::warn("log recovery: closed {} (it had no run.end)", path);
      ++closed;
      continue;
    }
    // Held by a writer (a run in flight): not ours, and it will change. Any
    // other failure is said once, and not retried while the file stays as is.
    if (head.error().code() != Error::Code::kPermission) {
      spdlog::error("log recovery: {}: {}", path, head.error().message());
      entry.settled = true;
    }
  }
  const bool changed = seen != seen_;
  seen_ = std::move(seen);
  if (changed) SaveSettled();
  return closed;
}

}  // namespace kiln::log_recovery
