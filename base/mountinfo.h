// The mount table of this process's mount namespace, from
// /proc/self/mountinfo.
#pragma once

#include <string>

namespace kiln::mountinfo {

// True when a file system is mounted exactly at path (mount points are
// compared after decoding mountinfo's \ooo escapes of space, tab, newline
// and backslash).
bool IsMountPoint(const std::string& path);

}  // namespace kiln::mountinfo
