#include "base/fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace kiln {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<Pipe> MakePipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Error::Sys("pipe2", errno);
  return Pipe{UniqueFd(p[0]), UniqueFd(p[1])};
}

Result<std::string> ReadAll(int fd, const std::string& what) {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Sys("read(" + Quote(what) + ")", errno);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

Result<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  return ReadAll(fd.get(), path);
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Sys("write", errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

Status WriteFile(const std::string& path, std::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  // Kernel knobs want the value in one write; a short write is an error there.
  ssize_t n = ::write(fd.get(), data.data(), data.size());
  if (n < 0) {
    return Error::Sys("write(" + Quote(path) + ", " + Quote(data) + ")", errno);
  }
  return Ok();
}

Status WriteNewFile(const std::string& path, std::string_view data, int mode, Sync sync) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  if (auto s = WriteAll(fd.get(), data); !s) return s.error().Wrap(Quote(path));
  if (sync == Sync::kFsync && ::fsync(fd.get()) != 0) {
    return Error::Sys("fsync(" + Quote(path) + ")", errno);
  }
  return Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode, Sync sync) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  if (auto s = WriteNewFile(tmp, data, mode, sync); !s) return s;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error::Sys("rename(" + Quote(tmp) + ", " + Quote(path) + ")", err);
  }
  return Ok();
}

std::string FileVersion(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace kiln
