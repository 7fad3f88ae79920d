// The mount table of this process's mount namespace, from
// /proc/self/mountinfo.
#pragma once

#include <string>

#include "base/result.h"

namespace kiln::mountinfo {

// True when a file system is mounted exactly at path (mount points are
// compared after decoding mountinfo's \ooo escapes of space, tab, newline
// and backslash).
bool IsMountPoint(const std::string& path);

// Unmounts whatever is mounted at path, mounts stacked there included, until
// the kernel says nothing is (lazily when busy; symlinks never followed).
// Nothing mounted, or no such path, is not an error.
Status UnmountAll(const std::string& path);

// The same, always lazily (MNT_DETACH): for a mount nothing uses any more,
// such as a run's workspace once its sandbox is gone. The kernel then need
// not wait for an RCU grace period before returning (1-10 ms for an
// overlay, against about 1 ms).
Status DetachAll(const std::string& path);

}  // namespace kiln::mountinfo
