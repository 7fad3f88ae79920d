#include "sandbox/userns.h"

#include <unistd.h>

#include "base/fd.h"

namespace kiln::sandbox::userns {

Mapping ForCaller(uint32_t uid, uint32_t gid) {
  Mapping m;
  if (::geteuid() == 0) {
    m.rootless = false;
    m.inside_uid = 0;
    m.inside_gid = 0;
    m.host_uid = kHostIdBase;
    m.host_gid = kHostIdBase;
    m.count = kIdCount;
  } else {
    m.rootless = true;
    m.inside_uid = uid;
    m.inside_gid = gid;
    m.host_uid = ::geteuid();
    m.host_gid = ::getegid();
    m.count = 1;
  }
  return m;
}

Status WriteMaps(pid_t pid, const Mapping& m) {
  std::string proc = "/proc/" + std::to_string(pid);
  // Unprivileged writers must give up setgroups(2) before mapping gids;
  // otherwise a process could drop a group that denies it access.
  if (m.rootless) KILN_TRY(WriteFile(proc + "/setgroups", "deny"));
  auto line = [&](uint32_t inside, uint32_t host) {
    return std::to_string(inside) + " " + std::to_string(host) + " " + std::to_string(m.count) +
           "\n";
  };
  if (auto s = WriteFile(proc + "/uid_map", line(m.inside_uid, m.host_uid)); !s) {
    return s.error().Wrap("mapping the sandbox's user ids");
  }
  if (auto s = WriteFile(proc + "/gid_map", line(m.inside_gid, m.host_gid)); !s) {
    return s.error().Wrap("mapping the sandbox's group ids");
  }
  return Ok();
}

}  // namespace kiln::sandbox::userns
