#include "runtime/tools/workspace_path.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/strings.h"

namespace kiln::workspace_path {
namespace {

long Openat2(int dirfd, const char* path, int flags, mode_t mode, uint64_t resolve) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = resolve;
  long r;
  do {
    r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  } while (r < 0 && (errno == EINTR || errno == EAGAIN));
  return r;
}

constexpr uint64_t kResolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;

}  // namespace

Result<Workspace> Workspace::Open(const std::string& root) {
  if (root.empty() || root[0] != '/') {
    return Error::Invalid("workspace " + Quote(root) + " must be an absolute path");
  }
  UniqueFd fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Error::Sys("open(" + Quote(root) + ")", errno);
  // Probe once so an old kernel fails here with a clear message, not on the
  // model's first read.
  long probe = Openat2(fd.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, kResolve);
  if (probe < 0) {
    if (errno == ENOSYS)
      return Error::Unsupported("openat2 is not available (Linux >= 5.6 needed)");
    return Error::Sys("openat2(" + Quote(root) + ")", errno);
  }
  ::close(static_cast<int>(probe));
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return Workspace(r, std::move(fd));
}

Result<std::string> Workspace::Relative(std::string_view path) const {
  if (path.empty()) return Error::Invalid("path is empty");
  if (path.find('\0') != std::string_view::npos) {
    return Error::Invalid("path " + Quote(path) + " contains a NUL byte");
  }
  if (path[0] != '/') return std::string(path);
  if (path == root_) return std::string(".");
  if (root_ == "/") return std::string(path.substr(1));
  if (StartsWith(path, root_) && path.size() > root_.size() && path[root_.size()] == '/') {
    std::string rest(path.substr(root_.size() + 1));
    return rest.empty() ? std::string(".") : rest;
  }
  return Error(Error::Code::kPermission,
               "path " + Quote(path) + " is outside the workspace " + Quote(root_));
}

Result<UniqueFd> Workspace::OpenRelative(const std::string& rel, const std::string& shown,
                                         int flags, mode_t mode) const {
  long fd = Openat2(fd_.get(), rel.c_str(), flags | O_CLOEXEC, mode, kResolve);
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  int err = errno;
  if (err == EXDEV || err == ELOOP) {
    return Error(Error::Code::kPermission,
                 "path " + Quote(shown) + " escapes the workspace " + Quote(root_) +
                     (err == ELOOP ? " (through a symlink)" : ""),
                 err);
  }
  if (err == ENOENT) return Error(Error::Code::kNotFound, "no such file: " + Quote(shown), err);
  if (err == ENOTDIR) {
    return Error(Error::Code::kNotFound, "a parent of " + Quote(shown) + " is not a directory",
                 err);
  }
  if (err == EISDIR) {
    return Error(Error::Code::kInvalidArgument, Quote(shown) + " is a directory", err);
  }
  return Error::Sys("openat2(" + Quote(shown) + ")", err);
}

Result<UniqueFd> Workspace::OpenFile(std::string_view path, int flags, mode_t mode) const {
  KILN_ASSIGN_OR_RETURN(std::string rel, Relative(path));
  return OpenRelative(rel, std::string(path), flags, mode);
}

Result<std::pair<UniqueFd, std::string>> Workspace::OpenParent(std::string_view path,
                                                               bool create_dirs) const {
  KILN_ASSIGN_OR_RETURN(std::string rel, Relative(path));
  while (rel.size() > 1 && rel.back() == '/') rel.pop_back();
  size_t slash = rel.rfind('/');
  std::string dir = slash == std::string::npos ? "." : rel.substr(0, slash);
  std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  if (dir.empty()) dir = "/";  // "/x" cannot happen after Relative(); keep openat2 honest
  if (name.empty() || name == "." || name == "..") {
    return Error::Invalid("path " + Quote(path) + " does not name a file");
  }
  const std::string shown(path);
  auto parent = OpenRelative(dir, shown, O_PATH | O_DIRECTORY, 0);
  if (parent.ok() || parent.error().code() != Error::Code::kNotFound || !create_dirs) {
    if (!parent.ok()) return parent.error();
    return std::make_pair(std::move(*parent), name);
  }
  // Create the missing directories one component at a time, each one inside
  // a directory that was itself opened beneath the root.
  std::vector<std::string> parts = Split(dir, '/');
  std::string prefix;
  UniqueFd cur;
  KILN_ASSIGN_OR_RETURN(cur, OpenRelative(".", shown, O_PATH | O_DIRECTORY, 0));
  for (const auto& part : parts) {
    if (part.empty() || part == ".") continue;
    std::string next = prefix.empty() ? part : prefix + "/" + part;
    auto opened = OpenRelative(next, shown, O_PATH | O_DIRECTORY, 0);
    if (!opened.ok() && opened.error().code() == Error::Code::kNotFound && part != "..") {
      if (::mkdirat(cur.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
        return Error::Sys("mkdirat(" + Quote(next) + ")", errno);
      }
      opened = OpenRelative(next, shown, O_PATH | O_DIRECTORY, 0);
    }
    if (!opened.ok()) return opened.error();
    cur = std::move(*opened);
    prefix = next;
  }
  return std::make_pair(std::move(cur), name);
}

}  // namespace kiln::workspace_path
