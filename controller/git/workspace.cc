// MountWorkspace / RemoveWorkspace: a run's copy-on-write view of a cached
// tree. Mounting is O(1) in the size of the repository: nothing is copied
// until the run writes a file (overlayfs copies that one file up).
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "base/mountinfo.h"
#include "controller/git/files.h"
#include "controller/git/git.h"

namespace kiln::git {
namespace {

// Overlay options are a comma-separated list and lowerdir a colon-separated
// one; a path holding either (or the escape character) would change them.
Status CheckOverlayPath(const std::string& path) {
  if (path.find_first_of(",:\\") != std::string::npos) {
    return Error::Invalid("overlay path " + Quote(path) + " contains ',', ':' or '\\'");
  }
  return Ok();
}

// mkdir that fails on an existing directory: a workspace is never mounted
// twice over the same directories.
Status MakeNewDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0) {
    char octal[16];
    std::snprintf(octal, sizeof octal, "0%o", static_cast<unsigned>(mode));
    return Error::Sys("mkdir(" + Quote(path) + ", " + octal + ")", errno);
  }
  return Ok();
}

}  // namespace

Result<Workspace> MountWorkspace(const std::string& tree, const std::string& run_dir, uid_t uid,
                                 gid_t gid) {
  Workspace ws{run_dir + "/workspace", run_dir + "/upper", run_dir + "/work"};
  for (const std::string& p : {tree, ws.merged, ws.upper, ws.work}) KILN_TRY(CheckOverlayPath(p));
  KILN_TRY(MakeDir(run_dir, 0755));
  KILN_TRY(MakeNewDir(ws.upper, 0755));
  Cleanup remove_dirs([&] {
    ::rmdir(ws.merged.c_str());
    ::rmdir(ws.work.c_str());
    ::rmdir(ws.upper.c_str());
  });
  // The merged root takes its owner and mode from the upper root.
  if (::chown(ws.upper.c_str(), uid, gid) != 0) {
    return Error::Sys("chown(" + Quote(ws.upper) + ")", errno);
  }
  if (::chmod(ws.upper.c_str(), 0755) != 0) {
    return Error::Sys("chmod(" + Quote(ws.upper) + ")", errno);
  }
  KILN_TRY(MakeNewDir(ws.work, 0700));
  KILN_TRY(MakeNewDir(ws.merged, 0755));
  std::string options = "lowerdir=" + tree + ",upperdir=" + ws.upper + ",workdir=" + ws.work;
  if (::mount("overlay", ws.merged.c_str(), "overlay", MS_NOSUID | MS_NODEV, options.c_str()) !=
      0) {
    return Error::Sys("mount(overlay, " + Quote(ws.merged) + ", " + Quote(options) + ")", errno);
  }
  remove_dirs.Dismiss();
  return ws;
}

Status RemoveWorkspace(const std::string& run_dir) {
  std::string merged = run_dir + "/workspace";
  // Called once the sandbox is gone: nothing uses the overlay any more.
  KILN_TRY(mountinfo::DetachAll(merged));
  // The mount point itself is only ever an empty directory: rmdir, never a
  // recursive removal that could walk into a mount that is still there.
  if (::rmdir(merged.c_str()) != 0 && errno != ENOENT) {
    return Error::Sys("rmdir(" + Quote(merged) + ")", errno);
  }
  // The run wrote these (through the overlay): removed without following
  // any symlink it planted.
  KILN_TRY(RemoveTree(run_dir + "/upper"));
  return RemoveTree(run_dir + "/work");
}

}  // namespace kiln::git
