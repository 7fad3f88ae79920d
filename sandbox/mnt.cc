#include "sandbox/mnt.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "base/fd.h"
#include "base/strings.h"
#include "sandbox/hostimage.h"

namespace kiln::sandbox::mnt {

namespace {

constexpr unsigned long kNoSuidDev = MS_NOSUID | MS_NODEV;

// OCI's default masked paths: hidden behind /dev/null or an empty read-only
// tmpfs. Absent paths are skipped (their set depends on the kernel config).
constexpr const char* kMaskedPaths[] = {
    "proc/acpi",          "proc/asound",     "proc/kcore",       "proc/keys",
    "proc/latency_stats", "proc/timer_list", "proc/timer_stats", "proc/sched_debug",
    "proc/scsi",          "proc/interrupts", "sys/firmware",     "sys/devices/virtual/powercap"};
// OCI's default read-only paths.
constexpr const char* kReadOnlyPaths[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys",
                                          "proc/sysrq-trigger"};
constexpr const char* kDevNodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

std::string Rel(std::string_view abs) {
  while (!abs.empty() && abs.front() == '/') abs.remove_prefix(1);
  return std::string(abs);
}

// Opens `rel` below root_fd without ever leaving it. With `create`, missing
// components are created as directories (and the last one as a file when
// `file`).
Result<UniqueFd> Resolve(int root_fd, const std::string& rel, bool create, bool file = false) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  auto open_rel = [&](const std::string& p) {
    return static_cast<int>(
        syscall(SYS_openat2, root_fd, p.empty() ? "." : p.c_str(), &how, sizeof how));
  };
  int fd = open_rel(rel);
  if (fd >= 0) return UniqueFd(fd);
  if (errno != ENOENT || !create) return Error::Sys("openat2(" + Quote("/" + rel) + ")", errno);

  std::vector<std::string> parts = Split(rel, '/');
  std::string prefix;
  UniqueFd dir(open_rel(""));
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty() || parts[i] == ".") continue;
    std::string next = prefix.empty() ? parts[i] : prefix + "/" + parts[i];
    int child = open_rel(next);
    if (child < 0 && errno == ENOENT) {
      bool last = i + 1 == parts.size();
      if (last && file) {
        int f = ::openat(dir.get(), parts[i].c_str(),
                         O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0 && errno != EEXIST)
          return Error::Sys("creating mount point " + Quote("/" + next), errno);
        if (f >= 0) ::close(f);
      } else if (::mkdirat(dir.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
        return Error::Sys("mkdir(" + Quote("/" + next) + ")", errno);
      }
      child = open_rel(next);
    }
    if (child < 0) return Error::Sys("openat2(" + Quote("/" + next) + ")", errno);
    dir.reset(child);
    prefix = next;
  }
  return dir;
}

Status SetAttr(int root_fd, const std::string& rel, uint64_t attrs, bool recursive) {
  // Re-resolve: a fresh walk crosses onto the mount just placed there.
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, Resolve(root_fd, rel, false));
  mount_attr attr{};
  attr.attr_set = attrs;
  unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
  if (::mount_setattr(fd.get(), "", flags, &attr, sizeof attr) != 0) {
    int err = errno;
    std::string msg = "mount_setattr(" + Quote("/" + rel) + ")";
    if (err == ENOSYS) msg += " (needs Linux 5.12 or later)";
    return Error::Sys(msg, err);
  }
  return Ok();
}

// Bind-mounts the host path `source` at `dest` inside the root.
Status Bind(int root_fd, const std::string& source, const std::string& dest, bool read_only) {
  struct stat st {};
  if (::stat(source.c_str(), &st) != 0) return Error::Sys("stat(" + Quote(source) + ")", errno);
  std::string rel = Rel(dest);
  KILN_ASSIGN_OR_RETURN(UniqueFd target, Resolve(root_fd, rel, true, !S_ISDIR(st.st_mode)));
  if (::mount(source.c_str(), FdPath(target.get()).c_str(), nullptr, MS_BIND | MS_REC, nullptr) !=
      0) {
    return Error::Sys("mount(" + Quote(source) + ", " + Quote(dest) + ", MS_BIND)", errno);
  }
  uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0);
  return SetAttr(root_fd, rel, attrs, true);
}

Status MountFs(int root_fd, const std::string& dest, const char* fstype, unsigned long flags,
               const std::string& data) {
  KILN_ASSIGN_OR_RETURN(UniqueFd target, Resolve(root_fd, Rel(dest), true));
  if (::mount(fstype, FdPath(target.get()).c_str(), fstype, flags,
              data.empty() ? nullptr : data.c_str()) != 0) {
    return Error::Sys(std::string("mount(") + fstype + ", " + Quote(dest) + ")", errno);
  }
  return Ok();
}

// /dev: a tmpfs with the six device files. As root, init creates them with
// mknod, as runc and crun do: that tmpfs then cannot be nodev, and it is the
// one mount that is not, but the sandbox can neither create device files
// (mknod of a device needs CAP_MKNOD in the host's user namespace) nor write
// to /dev (root's, 0755). In a user namespace mknod is refused, so the host's
// device files are bind-mounted, each without nodev. A bind costs a mount to
// set up and tear down; a node costs one mknod.
Status MountDev(int root_fd, bool in_user_ns) {
  unsigned long flags = MS_NOSUID | MS_NOEXEC | (in_user_ns ? MS_NODEV : 0);
  KILN_TRY(MountFs(root_fd, "/dev", "tmpfs", flags, "mode=0755,size=1m"));
  KILN_ASSIGN_OR_RETURN(UniqueFd dev, Resolve(root_fd, "dev", false));
  for (const char* node : kDevNodes) {
    std::string host = std::string("/dev/") + node;
    struct stat st {};
    if (::stat(host.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) continue;
    if (!in_user_ns) {
      // fchmodat: the mode is the host's, whatever init's umask.
      if (::mknodat(dev.get(), node, S_IFCHR | 0600, st.st_rdev) != 0 ||
          ::fchmodat(dev.get(), node, st.st_mode & 0777, 0) != 0) {
        return Error::Sys("mknod(" + Quote(host) + ")", errno);
      }
      continue;
    }
    KILN_ASSIGN_OR_RETURN(UniqueFd target,
                          Resolve(root_fd, "dev/" + std::string(node), true, true));
    if (::mount(host.c_str(), FdPath(target.get()).c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return Error::Sys("mount(" + Quote(host) + ", " + Quote(host) + ", MS_BIND)", errno);
    }
    // The device binds are the one place where device files work: no nodev.
    KILN_TRY(
        SetAttr(root_fd, "dev/" + std::string(node), MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, false));
  }
  KILN_TRY(MountFs(root_fd, "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                   "newinstance,ptmxmode=0666,mode=0620"));
  KILN_TRY(MountFs(root_fd, "/dev/shm", "tmpfs", kNoSuidDev | MS_NOEXEC, "mode=1777,size=64m"));
  const std::pair<const char*, const char*> links[] = {{"pts/ptmx", "ptmx"},
                                                       {"/proc/self/fd", "fd"},
                                                       {"/proc/self/fd/0", "stdin"},
                                                       {"/proc/self/fd/1", "stdout"},
                                                       {"/proc/self/fd/2", "stderr"}};
  for (auto [target, name] : links) {
    if (::symlinkat(target, dev.get(), name) != 0)
      return Error::Sys(std::string("symlink('/dev/") + name + "')", errno);
  }
  return Ok();
}

Status MaskPaths(int root_fd) {
  for (const char* path : kMaskedPaths) {
    auto fd = Resolve(root_fd, path, false);
    if (!fd) continue;
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) continue;
    std::string target = FdPath(fd->get());
    int rc = S_ISDIR(st.st_mode) ? ::mount("tmpfs", target.c_str(), "tmpfs",
                                           MS_RDONLY | kNoSuidDev | MS_NOEXEC, "mode=0555,size=4k")
                                 : ::mount("/dev/null", target.c_str(), nullptr, MS_BIND, nullptr);
    if (rc != 0) return Error::Sys("masking " + Quote(std::string("/") + path), errno);
    if (!S_ISDIR(st.st_mode)) {
      KILN_TRY(SetAttr(root_fd, path,
                       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                       false));
    }
  }
  for (const char* path : kReadOnlyPaths) {
    auto fd = Resolve(root_fd, path, false);
    if (!fd) continue;
    std::string target = FdPath(fd->get());
    if (::mount(target.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      return Error::Sys("bind " + Quote(std::string("/") + path) + " read-only", errno);
    }
    KILN_TRY(
        SetAttr(root_fd, path, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, true));
  }
  return Ok();
}

std::string EscapeOverlayPath(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == ',' || c == ':' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

Status BuildRoot(const Spec& spec, const Layout& layout) {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return Error::Sys("mount('/', MS_REC|MS_PRIVATE)", errno);
  }
  // The upper layer lives on a size-limited tmpfs in this mount namespace:
  // it is charged to the sandbox's memory cgroup and vanishes with it.
  std::string tmpfs_opts = "mode=0755,size=" + std::to_string(spec.limits.rootfs_bytes);
  if (::mount("tmpfs", layout.scratch.c_str(), "tmpfs", kNoSuidDev, tmpfs_opts.c_str()) != 0) {
    return Error::Sys("mount(tmpfs, " + Quote(layout.scratch) + ")", errno);
  }
  for (const char* d : {"/upper", "/work", "/root"}) {
    std::string p = layout.scratch + d;
    if (::mkdir(p.c_str(), 0755) != 0) return Error::Sys("mkdir(" + Quote(p) + ")", errno);
  }
  std::string root_path = layout.scratch + "/root";
  std::string lowers;
  for (const std::string& l : layout.lowers) {
    lowers += (lowers.empty() ? "" : ":") + EscapeOverlayPath(l);
  }
  std::string opts = "lowerdir=" + lowers +
                     ",upperdir=" + EscapeOverlayPath(layout.scratch + "/upper") +
                     ",workdir=" + EscapeOverlayPath(layout.scratch + "/work");
  if (layout.in_user_ns) opts += ",userxattr";
  if (::mount("overlay", root_path.c_str(), "overlay", kNoSuidDev, opts.c_str()) != 0) {
    int err = errno;
    std::string msg = "mount(overlay, lowerdir=" + Quote(lowers) + ")";
    if (err == EINVAL && layout.in_user_ns)
      msg += " (overlayfs in a user namespace needs Linux 5.11 or later)";
    return Error::Sys(msg, err);
  }
  UniqueFd root(::open(root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return Error::Sys("open(" + Quote(root_path) + ")", errno);

  if (layout.host_image) {
    for (const std::string& dir : hostimage::BoundDirs()) {
      struct stat st {};
      std::string host = "/" + dir;
      if (::lstat(host.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      KILN_TRY(Bind(root.get(), host, host, true));
    }
  }
  KILN_TRY(MountFs(root.get(), "/proc", "proc", kNoSuidDev | MS_NOEXEC, ""));
  KILN_TRY(MountDev(root.get(), layout.in_user_ns));
  KILN_TRY(MountFs(root.get(), "/sys", "sysfs", MS_RDONLY | kNoSuidDev | MS_NOEXEC, ""));
  KILN_TRY(MaskPaths(root.get()));

  if (spec.workspace) KILN_TRY(Bind(root.get(), *spec.workspace, "/workspace", false));
  for (const BindMount& b : spec.binds) KILN_TRY(Bind(root.get(), b.source, b.dest, b.read_only));
  for (const TmpfsMount& t : spec.tmpfs) {
    KILN_TRY(MountFs(root.get(), t.dest, "tmpfs", kNoSuidDev,
                     "mode=1777,size=" + std::to_string(t.size_bytes)));
  }

  // pivot_root(".", ".") stacks the old root on top of the new one; detaching
  // it leaves only the new root, with no directory left behind for it.
  if (::fchdir(root.get()) != 0) return Error::Sys("chdir(" + Quote(root_path) + ")", errno);
  if (syscall(SYS_pivot_root, ".", ".") != 0) return Error::Sys("pivot_root", errno);
  if (::umount2(".", MNT_DETACH) != 0) return Error::Sys("umount2(old root, MNT_DETACH)", errno);
  if (::chdir("/") != 0) return Error::Sys("chdir('/')", errno);
  return Ok();
}

}  // namespace kiln::sandbox::mnt
