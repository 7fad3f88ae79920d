// The walk behind Collect: a workspace directory compared with a commit's
// tree, entry by entry, reading the workspace as untrusted data. Nothing is
// followed: every directory is opened component by component with
// O_NOFOLLOW, symlinks are read with readlinkat, regular files are opened
// O_NOFOLLOW|O_NONBLOCK and checked to be regular again after opening, and
// FIFOs, sockets and devices are only lstat'ed.
#pragma once

#include <git2.h>
#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace kiln::git {

inline constexpr uint32_t kModeTree = 0040000;
inline constexpr uint32_t kModeFile = 0100644;
inline constexpr uint32_t kModeExec = 0100755;
inline constexpr uint32_t kModeLink = 0120000;
inline constexpr uint32_t kModeGitlink = 0160000;

// One path whose content, mode or type differs from the commit.
struct Change {
  std::string path;       // relative to the workspace root, '/'-separated
  char status = 'M';      // 'A', 'M', 'D', 'T' (type changed)
  uint32_t old_mode = 0;  // 0: not in the commit
  uint32_t new_mode = 0;  // 0: gone, or a FIFO, socket or device (status 'A' or 'T')
  git_oid old_id{};       // the commit's blob
  git_oid new_id{};       // the workspace's file or link target, hashed as a blob
  uint64_t new_size = 0;
  std::string link_target;  // new symlinks
};

// Every change between tree (of repo) and the directory root_fd, in no
// particular order: tracked paths that differ, and untracked files that the
// workspace's .gitignore files do not cover. Entries named .git are skipped
// at every level; submodule entries (gitlinks) are not compared.
//
// upper_fd, when not -1, is the upper directory of the overlay mounted at
// root_fd whose lower layer is tree's checkout. Only the paths it names can
// differ, so only those are compared (each read through root_fd, as
// without it): the time taken follows what changed, not the tree's size. A
// whiteout names a deleted path; an opaque directory (one that replaced a
// lower directory), a redirected one (a directory renamed with
// redirect_dir=on) and anything new are compared whole. The result is the
// same as without upper_fd.
Result<std::vector<Change>> Scan(git_repository* repo, const git_tree* tree, int root_fd,
                                 int upper_fd = -1);

// Opens path (relative, '/'-separated, "" for root_fd itself) below root_fd
// without following a symlink in any component.
Result<UniqueFd> OpenBeneath(int root_fd, std::string_view path, int flags);

// Opens name in dir as a regular file (path names it in errors): never a
// link (O_NOFOLLOW), never blocking on a FIFO swapped in since an lstat
// (O_NONBLOCK), and checked to be regular after opening. st is its fstat.
Result<UniqueFd> OpenRegular(int dir, const char* name, const std::string& path, struct stat* st);

// The target text of the symlink name in dir, never followed; st is its lstat.
Result<std::string> ReadLinkAt(int dir, const char* name, const std::string& path,
                               const struct stat& st);

// Reads the size bytes of the open file fd (path names it in errors) in
// chunks, passing each to sink, and fails if the file turns out shorter or
// longer than size: it changed while it was read.
Status ReadExactly(int fd, uint64_t size, const std::string& path,
                   const std::function<Status(const char* data, size_t n)>& sink);

}  // namespace kiln::git
