// Scoped secrets. The controller knows named secrets from a secrets file
// (YAML `NAME: value`, a regular file readable by its owner only) and from its
// environment (`KILN_SECRET_<NAME>`; the file wins). A skill names the secrets
// its runs need; only those are written, one file each, to a small tmpfs
// that the sandbox sees read-only at /run/secrets/NAME. Model API keys and
// forge tokens are not secrets in this sense: they never enter a sandbox (the
// egress proxy adds them on the way out).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "base/result.h"

namespace kiln::secrets {

class Vault {
 public:
  // Reads the secrets file (empty path: none) and the KILN_SECRET_*
  // environment. A file that others can read or write, a symlink, or not
  // owned by the caller is refused, as is malformed YAML (FILE:LINE).
  static Result<Vault> Load(const std::string& file);

  // The named secrets. An unknown name is an error naming it and the file.
  Result<std::map<std::string, std::string>> Select(const std::vector<std::string>& names) const;

  std::vector<std::string> Names() const;

 private:
  std::string source_;
  std::map<std::string, std::string> values_;
};

// Mounts a tmpfs of size bytes at dir (which must exist and be empty) holding
// one file per secret (mode 0400, owner uid:gid), then makes it read-only,
// nosuid, nodev, noexec. On failure nothing stays mounted. Undone by
// mountinfo::UnmountAll(dir).
Status Mount(const std::string& dir, const std::map<std::string, std::string>& secrets, uid_t uid,
             gid_t gid, uint64_t size);

}  // namespace kiln::secrets
