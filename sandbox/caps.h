// Capabilities. Used between fork and exec: no allocation, errors as errno
// with the failing step's name.
#pragma once

namespace kiln::sandbox::caps {

// Locks the securebits so that neither uid 0 nor execve can regain
// capabilities, clears the ambient set and drops every capability from the
// bounding set except `keep` (-1: none). Needs CAP_SETPCAP, so it runs before
// the uid changes. Returns 0 or -errno; *step names what failed.
int LockAndDropBounding(int keep, const char** step);

// Clears effective, permitted and inheritable, except `keep` (-1: none).
int ClearSets(int keep, const char** step);

}  // namespace kiln::sandbox::caps
