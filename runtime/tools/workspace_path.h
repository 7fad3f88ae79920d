// Confinement of the file tools to the workspace. Every path the model names
// is resolved by the kernel with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
// relative to a descriptor of the workspace root, so neither `..`, nor an
// absolute path, nor a symlink (absolute or relative, planted before or during
// the run) can reach a file outside it. Checking strings in user space instead
// would race with the agent's own shell commands.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>

#include "base/fd.h"
#include "base/result.h"

namespace kiln::workspace_path {

class Workspace {
 public:
  // Opens root (a directory). Fails with kUnsupported on kernels without openat2.
  static Result<Workspace> Open(const std::string& root);

  const std::string& root() const { return root_; }
  int fd() const { return fd_.get(); }

  // The model's path as a path relative to the root: a relative path is kept,
  // an absolute one must lie under root() (lexically) and has it removed.
  Result<std::string> Relative(std::string_view path) const;

  // openat2(root, path, flags, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS).
  // An escape is reported as "path 'p' escapes the workspace"; a missing file
  // as kNotFound.
  Result<UniqueFd> OpenFile(std::string_view path, int flags, mode_t mode = 0) const;

  // The directory that holds path (created with its parents when
  // create_dirs) and the final name in it, which is never "", "." or "..".
  Result<std::pair<UniqueFd, std::string>> OpenParent(std::string_view path,
                                                      bool create_dirs) const;

 private:
  Workspace(std::string root, UniqueFd fd) : root_(std::move(root)), fd_(std::move(fd)) {}
  Result<UniqueFd> OpenRelative(const std::string& rel, const std::string& shown, int flags,
                                mode_t mode) const;

  std::string root_;
  UniqueFd fd_;
};

}  // namespace kiln::workspace_path
