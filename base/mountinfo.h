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

}  // namespace kiln::mountinfo
