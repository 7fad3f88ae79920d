// /proc/<pid>/stat, parsed once for the places that need its fields.
#pragma once

#include <cstdint>
#include <string>

namespace kiln::sandbox::procfs {

// Numeric field n (1-based, as in proc(5), n >= 3) of /proc/<pid>/stat, for
// pid "self" or a number; 0 when the process or the field does not exist.
// Parsing starts after the last ')', since the command name (field 2) may
// hold spaces and parentheses.
uint64_t StatField(const std::string& pid, int n);

// True when the process has exited and waits to be reaped (state Z): its
// parent may be an init that never reaps, so it counts as gone.
bool IsZombie(const std::string& pid);

}  // namespace kiln::sandbox::procfs
