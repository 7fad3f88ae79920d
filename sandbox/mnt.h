// The sandbox's filesystem: a tmpfs holding the overlay's upper layer, the
// overlay root over the image, the host image's read-only binds, /proc with
// the OCI masked and read-only paths, a minimal /dev, a read-only /sys, the
// workspace and the caller's binds and tmpfs mounts; then pivot_root into it.
//
// Runs in the sandbox's init process, in its fresh mount namespace, before
// the command is started. Every mount target is resolved inside the new root
// (openat2 RESOLVE_IN_ROOT), so a symlink in an image or a workspace cannot
// redirect a mount onto the host.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "sandbox/spec.h"

namespace kiln::sandbox::mnt {

struct Layout {
  std::string scratch;              // host directory the rootfs tmpfs is mounted on
  std::vector<std::string> lowers;  // the image: the overlay's read-only lower layers, top first
  bool host_image = false;          // bind the host's /usr, /bin, /lib* read-only
  bool in_user_ns = false;          // overlay must use user.* xattrs (userxattr)
};

// Builds the root and pivots into it; on return the cwd is the new "/" and the
// host's filesystem is no longer reachable.
Status BuildRoot(const Spec& spec, const Layout& layout);

}  // namespace kiln::sandbox::mnt
