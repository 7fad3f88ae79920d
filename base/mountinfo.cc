#include "base/mountinfo.h"

#include <sys/mount.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace kiln::mountinfo {
namespace {

std::string Decode(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      out += static_cast<char>(std::stoi(field.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

}  // namespace

bool IsMountPoint(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (Decode(mount_point) == path) return true;
  }
  return false;
}

Status DetachAll(const std::string& path) {
  for (;;) {
    if (::umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    int err = errno;
    if (err == EINVAL || err == ENOENT) return Ok();
    return Error::Sys("umount2(" + Quote(path) + ", MNT_DETACH)", err);
  }
}

Status UnmountAll(const std::string& path) {
  for (;;) {
    if (::umount2(path.c_str(), UMOUNT_NOFOLLOW) == 0) continue;
    int err = errno;
    if (err == EBUSY && ::umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    if (err == EINVAL || err == ENOENT) return Ok();
    return Error::Sys("umount2(" + Quote(path) + ")", err);
  }
}

}  // namespace kiln::mountinfo
