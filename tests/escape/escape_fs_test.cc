// Escape suite, filesystem attacks: each runs kiln-attack for real inside a
// sandbox and checks the verdict and the host (the fixture compares mounts,
// cgroups, state directories, host files and knobs before and after).
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iterator>
#include <sstream>

#include "tests/escape/escape_support.h"

namespace kiln::testing::escape {
namespace {

namespace fs = std::filesystem;

class EscapeFs : public EscapeTest {};

TEST_F(EscapeFs, MountIsRefused) {
  // Layer: seccomp (mount and the new mount API are not in the policy).
  EXPECT_TRUE(Blocked(Attack("mount"),
                      {"mount(tmpfs, /tmp): Operation not permitted",
                       "mount(/usr, MS_REMOUNT|MS_BIND) read-write: Operation not permitted",
                       "fsopen(tmpfs): Operation not permitted",
                       "mount_setattr(/usr, clear MOUNT_ATTR_RDONLY): Operation not permitted"}));
}

TEST_F(EscapeFs, UmountOfTheMasksIsRefused) {
  EXPECT_TRUE(Blocked(Attack("umount"), {"umount2(/proc/sys, MNT_DETACH): Operation not permitted",
                                         "umount2(/proc/keys, MNT_DETACH): Operation not permitted",
                                         "umount2(/, MNT_DETACH): Operation not permitted"}));
}

TEST_F(EscapeFs, ChrootAndPivotRootAreRefused) {
  EXPECT_TRUE(Blocked(Attack("chroot"),
                      {"chroot(/tmp/kiln-jail): Operation not permitted",
                       "pivot_root(/tmp/kiln-jail, /tmp/kiln-jail/old): Operation not permitted"}));
}

TEST_F(EscapeFs, MknodOfTheHostDiskIsRefused) {
  // Layer: capabilities (mknodat is allowed for FIFOs; block and character
  // devices need CAP_MKNOD), and every writable mount is nodev besides.
  struct stat usr {};
  ASSERT_EQ(::stat("/usr", &usr), 0);
  std::string disk =
      "block " + std::to_string(major(usr.st_dev)) + ":" + std::to_string(minor(usr.st_dev));
  EXPECT_TRUE(Blocked(Attack("mknod"),
                      {"mknod(/tmp/kiln-disk, " + disk + "): Operation not permitted",
                       "mknod(/dev/shm/kiln-disk, " + disk + "): Operation not permitted",
                       "mknod(/tmp/kiln-mem, char 1:1 (/dev/mem)): Operation not permitted"}));
}

TEST_F(EscapeFs, HostShadowIsUnreadable) {
  // Layer: the image's /etc is a filtered copy; init's root is not reachable.
  std::string shadow = ReadAll("/etc/shadow");
  ASSERT_FALSE(shadow.empty()) << "the host needs an /etc/shadow for this attack to mean anything";
  std::string first = shadow.substr(0, shadow.find('\n'));
  for (const std::vector<std::string>& ids :
       {std::vector<std::string>{}, {"--uid", "0", "--gid", "0"}}) {
    auto o = Attack("shadow", {}, ids);
    EXPECT_TRUE(Blocked(o, {"open(/etc/shadow): No such file or directory",
                            "open(/proc/1/root/etc/shadow): Permission denied"}));
    EXPECT_EQ(o.out.find(first), std::string::npos);
    EXPECT_EQ(o.err.find(first), std::string::npos);
  }
}

TEST_F(EscapeFs, ImageAndBindsStayReadOnlyForInsideRoot) {
  // Inside root is host uid 200000000: the image (owned by host root) and
  // the read-only binds refuse it, and nothing reaches the lower layer.
  ASSERT_EQ(Sandbox({}, {"true"}).status, 0);  // builds the host image
  std::vector<std::string> images;
  for (const auto& e : fs::directory_iterator(TestStateDir() + "/images")) {
    images.push_back(e.path().string());
    WatchFile(e.path().string() + "/etc/passwd");
  }
  ASSERT_FALSE(images.empty());
  Recapture();
  std::string name = "kiln-escape-file-" + std::to_string(getpid());
  auto o = Attack("image-write", {name}, {"--uid", "0", "--gid", "0"});
  EXPECT_TRUE(Blocked(
      o, {"open(/etc/passwd, O_WRONLY|O_APPEND): Permission denied",
          "creat(/usr/bin/" + name + "): Read-only file system",
          "creat(/attack/" + name + "): Read-only file system", "truncate(/usr/bin/sh, 0)"}));
  for (const std::string& dir :
       {std::string("/etc"), std::string("/usr/bin"), HelperDir(), images[0] + "/etc"}) {
    EXPECT_FALSE(fs::exists(dir + "/" + name)) << dir;
  }
}

TEST_F(EscapeFs, SupervisorBinaryCannotBeOverwritten) {
  // CVE-2019-5736: init is a copy of the supervisor (kiln's binary), so
  // /proc/1/exe is the host's kiln. Layer: init is not dumpable, and the
  // binary belongs to host root. The fixture checks kiln's SHA-256 and mtime.
  auto o = Attack("proc-exe");
  EXPECT_TRUE(Blocked(
      o, {"open(/proc/1/exe -> ?, O_WRONLY): Permission denied",
          "open(/proc/1/exe, O_PATH): Permission denied", "execve(/proc/1/exe): Permission denied",
          "opendir(/proc/1/map_files): Permission denied",
          "open(/proc/self/exe -> /attack/kiln-attack, O_WRONLY)"}));
}

// vfs_cap_data granting every capability of this process's bounding set
// (exec refuses a file whose effective capabilities it cannot all grant).
std::string AllCapsXattr() {
  std::string status = ReadAll("/proc/self/status");
  size_t at = status.find("CapBnd:");
  uint64_t bounding =
      at == std::string::npos ? 0 : std::strtoull(status.c_str() + at + 7, nullptr, 16);
  vfs_cap_data caps{};
  caps.magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE;
  caps.data[0].permitted = static_cast<uint32_t>(bounding);
  caps.data[1].permitted = static_cast<uint32_t>(bounding >> 32);
  return std::string(reinterpret_cast<const char*>(&caps), XATTR_CAPS_SZ_2);
}

TEST_F(EscapeFs, SetuidBinariesGrantNothing) {
  // Copies of the attacker made setuid root, setgid root, setuid to the id
  // that is root inside, and given every file capability. Layers: nosuid on
  // every bind, no_new_privs, unmapped owners, locked securebits.
  TempDir dir;
  struct Copy {
    const char* name;
    uid_t owner;
    mode_t mode;
    bool caps;
  } copies[] = {{"suid-root", 0, 04755, false},
                {"sgid-root", 0, 02755, false},
                {"suid-inside-root", kInsideRootOnHost, 06755, false},
                {"fcaps", 0, 0755, true}};
  std::vector<std::string> inside;
  for (const Copy& c : copies) {
    std::string p = dir.path() + "/" + c.name;
    fs::copy_file(AttackBinary(), p);
    ASSERT_EQ(::chown(p.c_str(), c.owner, c.owner), 0);
    ASSERT_EQ(::chmod(p.c_str(), c.mode), 0);
    if (c.caps) {
      std::string x = AllCapsXattr();
      ASSERT_EQ(::setxattr(p.c_str(), "security.capability", x.data(), x.size(), 0), 0)
          << std::strerror(errno);
    }
    inside.push_back(std::string("/suid/") + c.name);
  }
  // Control: on the host these copies do raise a nobody to root.
  RunOptions nobody;
  nobody.as_uid = nobody.as_gid = 65534;
  EXPECT_EQ(kiln::testing::Run({dir.path() + "/suid-root", "probe-ids"}, nobody)
                .out.rfind("ids 65534 0 0 ", 0),
            0u);
  std::istringstream fcaps(kiln::testing::Run({dir.path() + "/fcaps", "probe-ids"}, nobody).out);
  std::vector<std::string> fields{std::istream_iterator<std::string>(fcaps), {}};
  ASSERT_EQ(fields.size(), 10u);
  EXPECT_NE(fields[7], "0") << "file capabilities should give a host process capabilities";

  auto o = Attack("setuid", inside, {"--bind", dir.path() + ":/suid:ro"});
  EXPECT_TRUE(Blocked(
      o,
      {"exec(/suid/suid-root, mode 4755, owner 65534:65534): euid 1000, egid 1000, no capabilities",
       "exec(/suid/sgid-root, mode 2755, owner 65534:65534): euid 1000, egid 1000",
       "exec(/suid/suid-inside-root, mode 6755, owner 0:0): euid 1000, egid 1000",
       "exec(/suid/fcaps, mode 755, owner 65534:65534): euid 1000, egid 1000, no capabilities"}));
}

TEST_F(EscapeFs, ShockerHandleToTheHostRootIsRefused) {
  // The shocker exploit: a handle for inode 2 opened through a bind of a
  // host filesystem. Control: on the host the crafted handle does open the
  // root of the filesystem that holds /attack.
  int mfd = ::open(HelperDir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(mfd, 0);
  struct {
    file_handle fh;
    uint32_t ino_gen[2];
  } h{};
  h.fh.handle_bytes = 8;
  h.fh.handle_type = 1;  // FILEID_INO32_GEN
  h.ino_gen[0] = 2;
  int root = ::open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY);
  struct stat st {};
  if (root >= 0 && ::fstat(root, &st) == 0) {
    EXPECT_EQ(st.st_ino, 2u);
  } else {
    std::printf(
        "note: the crafted handle does not open this filesystem's root on the host either\n");
  }
  if (root >= 0) ::close(root);
  ::close(mfd);
  EXPECT_TRUE(
      Blocked(Attack("shocker"), {"open_by_handle_at(/attack, inode 2): Operation not permitted",
                                  "open_by_handle_at(/usr, inode 2): Operation not permitted"}));
}

TEST_F(EscapeFs, DescriptorsLeakedToTheSupervisorAreClosed) {
  // kiln inherits, not close-on-exec: a secret file, the host's "/", the
  // host's mount namespace and a socket. None may reach the command.
  TempDir dir;
  std::string secret = "kiln-leaked-secret-" + std::to_string(getpid());
  WriteAll(dir.path() + "/secret", secret, 0600);
  int fds[] = {::open((dir.path() + "/secret").c_str(), O_RDONLY),
               ::open("/", O_PATH | O_DIRECTORY), ::open("/proc/self/ns/mnt", O_RDONLY),
               ::socket(AF_UNIX, SOCK_STREAM, 0)};
  RunOptions opts;
  std::vector<std::string> args;
  for (int fd : fds) {
    ASSERT_GE(fd, 3);
    opts.keep_fds.push_back(fd);
    args.push_back(std::to_string(fd));
  }
  auto o = Attack("leaked-fd", args, {}, opts);
  for (int fd : fds) ::close(fd);
  EXPECT_TRUE(Blocked(
      o,
      {"scan of fds 3..1023: none open", "fstat(leaked fd " + args[1] + "): Bad file descriptor",
       "opendir(/proc/1/fd): Permission denied", "pidfd_getfd(init, 0): Operation not permitted"}));
  EXPECT_EQ(o.out.find(secret), std::string::npos);
  EXPECT_EQ(o.err.find(secret), std::string::npos);
}

TEST_F(EscapeFs, SizeLimitedTmpfsMountsFillUp) {
  // --tmpfs size, --rootfs-size (the overlay's upper) and /dev/shm (64M):
  // each stops with ENOSPC at its size. The data lives in memory charged to
  // the sandbox's cgroup (the report's peak shows the 64 MiB of /dev/shm),
  // not on a host disk.
  TempDir dir;
  std::string report = dir.path() + "/report.json";
  auto o = Attack("tmpfs-fill", {"/scratch=4194304", "/tmp=16777216", "/dev/shm=67108864"},
                  {"--tmpfs", "/scratch:4M", "--rootfs-size", "16M", "--report", report});
  EXPECT_TRUE(Blocked(
      o,
      {"write(/scratch/kiln-fill) stopped after 4.0 MiB (limit 4.0 MiB): No space left on device",
       "write(/tmp/kiln-fill) stopped after",
       "write(/dev/shm/kiln-fill) stopped after 64.0 MiB (limit 64.0 MiB): No space left on "
       "device"}));
  auto j = ReadReport(report);
  ASSERT_TRUE(j.contains("memory_peak_bytes")) << ReadAll(report);
  EXPECT_GE(j["memory_peak_bytes"].get<uint64_t>(), 64u << 20)
      << "the tmpfs data was not charged to the sandbox";
}

TEST_F(EscapeFs, CgroupFilesAreOutOfReach) {
  // The command sees no cgroup filesystem, a cgroup namespace rooted at its
  // own cgroup, and cannot mount a hierarchy (CVE-2022-0492). The fixture
  // checks every host hierarchy's release_agent.
  EXPECT_TRUE(
      Blocked(Attack("cgroup"), {"open(/sys/fs/cgroup/memory/memory.limit_in_bytes, O_WRONLY)",
                                 "mount(cgroup, memory): Operation not permitted",
                                 "mount(cgroup2): Operation not permitted"}));
}

TEST_F(EscapeFs, SysfsIsReadOnly) {
  std::vector<std::string> expect = {"open(/sys/class/net/lo/mtu, O_WRONLY): Read-only file system",
                                     "mkdir(/sys/kernel/kiln-escape): Read-only file system"};
  if (fs::exists("/sys/kernel/mm/transparent_hugepage/enabled")) {
    expect.push_back(
        "open(/sys/kernel/mm/transparent_hugepage/enabled, O_WRONLY): Read-only file system");
  }
  EXPECT_TRUE(Blocked(Attack("sysfs"), expect));
}

}  // namespace
}  // namespace kiln::testing::escape
