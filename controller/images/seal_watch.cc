#include "controller/images/seal_watch.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "base/strings.h"
#include "controller/images/layer.h"

namespace kiln::images {
namespace {

// What can change a sealed entry: its content, its attributes (mode,
// owner, times, link count), the entries of a directory, a rename.
constexpr uint64_t kChanges = FAN_MODIFY | FAN_ATTRIB | FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM |
                              FAN_MOVED_TO | FAN_DELETE_SELF | FAN_MOVE_SELF | FAN_ONDIR;

// A file id as fanotify reports it: the filesystem's id, then the handle's
// type and bytes.
std::string Key(const void* fsid, int handle_type, const void* handle, size_t bytes) {
  std::string key(static_cast<const char*>(fsid), 8);
  key.append(reinterpret_cast<const char*>(&handle_type), sizeof handle_type);
  key.append(static_cast<const char*>(handle), bytes);
  return key;
}

// The file id of name in dirfd; a symbolic link's own (no flag follows it).
Result<std::string> KeyOf(const void* fsid, int dirfd, const char* name) {
  union {
    struct file_handle h;
    char bytes[sizeof(struct file_handle) + MAX_HANDLE_SZ];
  } buf{};
  buf.h.handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (::name_to_handle_at(dirfd, name, &buf.h, &mount_id, 0) != 0) {
    return Error::Sys(std::string("the file id of ") + Quote(name), errno);
  }
  return Key(fsid, buf.h.handle_type, buf.h.f_handle, buf.h.handle_bytes);
}

bool IsFid(uint8_t type) {
  switch (type) {
    case FAN_EVENT_INFO_TYPE_FID:
    case FAN_EVENT_INFO_TYPE_DFID:
    case FAN_EVENT_INFO_TYPE_DFID_NAME:
    case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
    case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<std::unique_ptr<SealWatch>> SealWatch::Start(const std::string& root) {
  UniqueFd fan(::fanotify_init(
      FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_FID | FAN_REPORT_DFID_NAME,
      O_RDONLY | O_LARGEFILE));
  if (!fan.valid()) return Error::Sys("fanotify_init (file ids)", errno);
  if (::fanotify_mark(fan.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, kChanges, AT_FDCWD,
                      root.c_str()) != 0) {
    return Error::Sys("fanotify_mark on the filesystem of " + Quote(root), errno);
  }
  // Events name files by id: a filesystem whose files have none to ask for
  // (overlayfs without nfs_export, say) cannot be watched here.
  struct statfs fs {};
  if (::statfs(root.c_str(), &fs) != 0) return Error::Sys("statfs " + Quote(root), errno);
  if (auto id = KeyOf(&fs.f_fsid, AT_FDCWD, root.c_str()); !id) return id.error();
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return Error::Sys("eventfd", errno);
  std::unique_ptr<SealWatch> w(new SealWatch(std::move(fan), std::move(wake)));
  w->thread_ = std::thread([raw = w.get()] { raw->Watch(); });
  return w;
}

SealWatch::SealWatch(UniqueFd fanotify, UniqueFd wake)
    : fanotify_(std::move(fanotify)), wake_(std::move(wake)) {}

SealWatch::~SealWatch() {
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void SealWatch::Watch() {
  for (;;) {
    struct pollfd fds[2] = {{fanotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0 || (fds[0].revents & (POLLERR | POLLNVAL)) != 0) break;
    std::lock_guard lock(mu_);
    Drain();
  }
  // Nothing is watched any more: nothing may be taken as sealed.
  std::lock_guard lock(mu_);
  sealed_.clear();
}

void SealWatch::Drain() {
  char buf[64 << 10];
  for (;;) {
    ssize_t n = ::read(fanotify_.get(), buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      // EAGAIN: nothing pending. Anything else: events may be lost.
      if (n < 0 && errno != EAGAIN && !sealed_.empty()) {
        sealed_.clear();
        ++drops_;
      }
      return;
    }
    // Records are read by copying: the kernel packs them at 4-byte steps,
    // so a record's 8-byte fields need not be aligned in buf.
    for (size_t at = 0; at + sizeof(struct fanotify_event_metadata) <= static_cast<size_t>(n);) {
      struct fanotify_event_metadata m;
      std::memcpy(&m, buf + at, sizeof m);
      if (m.event_len < sizeof m || at + m.event_len > static_cast<size_t>(n)) break;
      const char* p = buf + at + m.metadata_len;
      const char* end = buf + at + m.event_len;
      at += m.event_len;
      if (m.fd >= 0) ::close(m.fd);
      if (m.vers != FANOTIFY_METADATA_VERSION || (m.mask & FAN_Q_OVERFLOW) != 0) {
        if (!sealed_.empty()) ++drops_;
        sealed_.clear();
        continue;
      }
      while (p + sizeof(struct fanotify_event_info_header) <= end) {
        struct fanotify_event_info_header h;
        std::memcpy(&h, p, sizeof h);
        if (h.len < sizeof h || p + h.len > end) break;
        // An id record: the header, the filesystem's id, the handle's
        // length and type, its bytes (and for DFID_NAME, a name after).
        constexpr size_t kFsid = offsetof(struct fanotify_event_info_fid, fsid);
        constexpr size_t kHandle = offsetof(struct fanotify_event_info_fid, handle);
        struct file_handle fh;
        if (IsFid(h.info_type) && h.len >= kHandle + sizeof fh) {
          std::memcpy(&fh, p + kHandle, sizeof fh);
          if (kHandle + sizeof fh + fh.handle_bytes <= h.len) {
            auto it = layer_of_.find(
                Key(p + kFsid, fh.handle_type, p + kHandle + sizeof fh, fh.handle_bytes));
            if (it != layer_of_.end()) drops_ += sealed_.erase(it->second);
          }
        }
        p += h.len;
      }
    }
  }
}

Result<bool> SealWatch::Holds(const std::string& dir, const std::string& seal) {
  std::lock_guard lock(mu_);
  Drain();
  if (sealed_.contains(dir)) return true;
  // Events of this walk's time wait in the kernel's queue until the lock is
  // let go: an entry changed after the walk passed it is seen then, by its
  // id; one changed before, by its seal.
  ++walks_;
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return Error::Sys("statfs " + Quote(dir), errno);
  // An entry without an id (another filesystem mounted inside, say): the
  // walk's answer holds, but the layer is walked again at its next use.
  bool every_id = true;
  std::vector<std::string> keys;
  auto note = [&](Result<std::string> key) {
    if (key) {
      keys.push_back(std::move(*key));
    } else {
      every_id = false;
    }
  };
  note(KeyOf(&fs.f_fsid, AT_FDCWD, dir.c_str()));
  auto now = Seal(dir, [&](int dirfd, const std::string& name) -> Status {
    note(KeyOf(&fs.f_fsid, dirfd, name.c_str()));
    return Ok();
  });
  if (!now) return now.error();
  if (*now != seal) return false;
  if (!every_id) return true;
  // The ids of what the layer held at its last walk go with it.
  std::erase_if(layer_of_, [&](const auto& kv) { return kv.second == dir; });
  for (std::string& k : keys) layer_of_[std::move(k)] = dir;
  sealed_.insert(dir);
  return true;
}

uint64_t SealWatch::walks() const {
  std::lock_guard lock(mu_);
  return walks_;
}

uint64_t SealWatch::drops() const {
  std::lock_guard lock(mu_);
  return drops_;
}

}  // namespace kiln::images
