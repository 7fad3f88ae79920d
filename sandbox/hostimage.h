// The built-in "host" image: a small skeleton directory used as the overlay's
// read-only lower layer, with a filtered copy of the host's /etc (no shadow
// files, ssh host keys, sudoers, private TLS keys, nothing that is not
// world-readable). The host's /usr and the /bin, /sbin, /lib* directories
// are bind-mounted read-only on top of it by the mount setup; where the host
// has merged /usr, the skeleton holds the same symlinks instead.
//
// The skeleton is built once per host state and cached under
// <state>/images/host-<fingerprint>; the fingerprint changes when /etc or
// its subdirectories change, so an edit of /etc produces a fresh copy.
// Computing the fingerprint takes a stat of every directory of /etc, so it is
// checked at most once per `recheck` interval: <state>/images/current names
// the image last found current, and its mtime says when.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "base/result.h"

namespace kiln::sandbox::hostimage {

// Top-level host directories that are bind-mounted read-only (when they are
// directories on the host rather than symlinks into /usr).
const std::vector<std::string>& BoundDirs();

// True when a file of /etc must not be copied into the image.
bool IsSecretEtcPath(const std::string& relative_path, unsigned mode);

constexpr std::chrono::milliseconds kRecheck{1000};

// Returns the skeleton's path, building it if needed. `host_root` is "/" except
// in tests; a `recheck` of 0 checks the fingerprint every time.
Result<std::string> Ensure(const std::string& state_dir, const std::string& host_root = "/",
                           std::chrono::milliseconds recheck = kRecheck);

}  // namespace kiln::sandbox::hostimage
