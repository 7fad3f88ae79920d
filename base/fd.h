// RAII owner for a file descriptor. Copy is deleted; move transfers ownership.
#pragma once

#include <string>
#include <utility>

#include "base/result.h"

namespace kiln {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A pipe whose two ends close themselves.
struct Pipe {
  UniqueFd read;
  UniqueFd write;
};
// pipe2(O_CLOEXEC).
Result<Pipe> MakePipe();

// Reads fd to its end; errors name what (a path, "spec fd 3").
Result<std::string> ReadAll(int fd, const std::string& what);

// Reads a whole (small) file such as a cgroup or /proc file.
Result<std::string> ReadFile(const std::string& path);
// Writes data to an existing file (O_WRONLY, no create): cgroup and /proc knobs.
Status WriteFile(const std::string& path, std::string_view data);
enum class Sync { kFsync, kNoFsync };

// Creates or truncates path with mode and writes data. Not atomic.
Status WriteNewFile(const std::string& path, std::string_view data, int mode, Sync sync);
// Writes data to path atomically: a temporary file in the same directory,
// then rename. kNoFsync for state that a host crash makes moot anyway.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode,
                       Sync sync = Sync::kFsync);
// Writes all of data to fd, retrying on EINTR and short writes.
Status WriteAll(int fd, std::string_view data);

// Which version of the file at path (symlinks followed) this is, for caches
// keyed by a file: "dev:ino:size:mtime_sec.mtime_nsec", which changes when
// the file is rewritten or replaced; "" when it cannot be stat'ed.
std::string FileVersion(const std::string& path);

}  // namespace kiln
