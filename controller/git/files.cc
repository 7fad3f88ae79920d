#include "controller/git/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <vector>

namespace kiln::git {

Result<FileLock> FileLock::Acquire(const std::string& path, Mode mode) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  int op = mode == Mode::kShared ? LOCK_SH : LOCK_EX;
  while (::flock(fd.get(), op) != 0) {
    if (errno != EINTR) return Error::Sys("flock(" + Quote(path) + ")", errno);
  }
  return FileLock(std::move(fd));
}

Status MakeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) == 0) return Ok();
  int err = errno;
  struct stat st;
  if (err == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Ok();
  return Error::Sys("mkdir(" + Quote(path) + ")", err);
}

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Error(Error::Code::kIO, "creating " + Quote(path) + ": " + ec.message());
  return Ok();
}

Result<std::string> MakeTempDir(const std::string& parent, const std::string& prefix) {
  std::string path = parent + "/" + prefix + "XXXXXX";
  if (::mkdtemp(path.data()) == nullptr) return Error::Sys("mkdtemp(" + Quote(path) + ")", errno);
  return path;
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);  // unlinks symlinks, never follows them
  if (ec) return Error(Error::Code::kIO, "removing " + Quote(path) + ": " + ec.message());
  return Ok();
}

Status RemoveStale(const std::string& dir, const std::string& prefix) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Error::Sys("opendir(" + Quote(dir) + ")", errno);
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.substr(0, prefix.size()) == prefix) stale.emplace_back(name);
  }
  ::closedir(d);
  for (const std::string& name : stale) KILN_TRY(RemoveTree(dir + "/" + name));
  return Ok();
}

Status SyncFs(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  if (::syncfs(fd.get()) != 0) return Error::Sys("syncfs(" + Quote(path) + ")", errno);
  return Ok();
}

Status Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Error::Sys("rename(" + Quote(from) + ", " + Quote(to) + ")", errno);
  }
  return Ok();
}

}  // namespace kiln::git
