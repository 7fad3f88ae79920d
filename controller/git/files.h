// File system helpers of the repository cache: per-entry flock(2) locks,
// directories built under a temporary name and renamed into place, and the
// SHA-256 that names mirrors.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "base/fd.h"
#include "base/result.h"

namespace kiln::git {

// A flock(2) lock on a lock file, created 0600 if missing and never removed
// (removing it would let two holders lock two different inodes). Held until
// destroyed. Each Acquire opens its own file description, so threads of one
// process exclude each other as separate processes do.
class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  static Result<FileLock> Acquire(const std::string& path, Mode mode);

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Runs a function on destruction unless dismissed: the removal of a
// half-built directory on every early return.
class Cleanup {
 public:
  explicit Cleanup(std::function<void()> fn) : fn_(std::move(fn)) {}
  ~Cleanup() {
    if (fn_) fn_();
  }
  Cleanup(const Cleanup&) = delete;
  Cleanup& operator=(const Cleanup&) = delete;
  void Dismiss() { fn_ = nullptr; }

 private:
  std::function<void()> fn_;
};

// mkdir(path, mode); an existing directory is fine, and keeps its mode.
Status MakeDir(const std::string& path, mode_t mode);

// mkdir -p: path and its missing parents, mode 0755.
Status MakeDirs(const std::string& path);

// A new empty directory parent/<prefix>XXXXXX, mode 0700.
Result<std::string> MakeTempDir(const std::string& parent, const std::string& prefix);

// Removes path and everything below it without following symlinks; a missing
// path is fine.
Status RemoveTree(const std::string& path);

// Removes every entry of dir whose name starts with prefix: the temporary
// directories of a builder that died. Call only while holding the lock that
// serialises those builders.
Status RemoveStale(const std::string& dir, const std::string& prefix);

// syncfs(2) of the file system holding path: what was written there is on
// disk before a rename publishes it.
Status SyncFs(const std::string& path);

// rename(2) with the error message the cache uses.
Status Rename(const std::string& from, const std::string& to);

}  // namespace kiln::git
