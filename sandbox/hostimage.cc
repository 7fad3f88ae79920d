#include "sandbox/hostimage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>

#include "base/fd.h"

namespace kiln::sandbox::hostimage {

namespace {

// Bump when the skeleton's layout changes, so old caches are not reused.
constexpr int kFormat = 1;

const std::set<std::string>& SecretNames() {
  static const std::set<std::string> kNames = {"shadow",
                                               "shadow-",
                                               "gshadow",
                                               "gshadow-",
                                               "sudoers",
                                               "sudoers.d",
                                               "subuid",
                                               "subgid",
                                               "subuid-",
                                               "subgid-",
                                               "ssl/private",
                                               "security/opasswd",
                                               "krb5.keytab",
                                               "kiln",
                                               "machine-id",
                                               ".pwd.lock",
                                               "ssh/ssh_host_rsa_key",
                                               "ssh/ssh_host_ecdsa_key",
                                               "ssh/ssh_host_ed25519_key",
                                               "ssh/ssh_host_dsa_key",
                                               "wireguard",
                                               "NetworkManager/system-connections",
                                               "ppp/chap-secrets",
                                               "ppp/pap-secrets",
                                               "openvpn"};
  return kNames;
}

Status CopyTree(const std::string& src, const std::string& dst, const std::string& rel);

Status CopyFile(const std::string& src, const std::string& dst, mode_t mode) {
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!in.valid()) {
    // Files that vanish or cannot be read are left out rather than failing the image.
    if (errno == ENOENT || errno == EACCES || errno == ELOOP) return Ok();
    return Error::Sys("open(" + Quote(src) + ")", errno);
  }
  UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0755));
  if (!out.valid()) return Error::Sys("open(" + Quote(dst) + ")", errno);
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Sys("read(" + Quote(src) + ")", errno);
    if (n == 0) break;
    KILN_TRY(WriteAll(out.get(), std::string_view(buf, static_cast<size_t>(n))));
  }
  return Ok();
}

Status CopyTree(const std::string& src, const std::string& dst, const std::string& rel) {
  DIR* d = ::opendir(src.c_str());
  if (d == nullptr) return Error::Sys("opendir(" + Quote(src) + ")", errno);
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string from = src + "/" + name, to = dst + "/" + name;
    std::string r = rel.empty() ? name : rel + "/" + name;
    struct stat st {};
    if (::lstat(from.c_str(), &st) != 0) continue;
    if (IsSecretEtcPath(r, st.st_mode)) continue;
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      auto target = std::filesystem::read_symlink(from, ec);
      if (ec) continue;  // vanished or unreadable: left out like other files
      std::filesystem::create_symlink(target, to, ec);
      if (ec) return Error(Error::Code::kIO, "symlink(" + Quote(to) + "): " + ec.message());
    } else if (S_ISDIR(st.st_mode)) {
      if (::mkdir(to.c_str(), st.st_mode & 0755) != 0)
        return Error::Sys("mkdir(" + Quote(to) + ")", errno);
      KILN_TRY(CopyTree(from, to, r));
    } else if (S_ISREG(st.st_mode)) {
      KILN_TRY(CopyFile(from, to, st.st_mode));
    }
  }
  return Ok();
}

void AppendTime(std::string& out, const struct timespec& t) {
  out += std::to_string(t.tv_sec);
  out += '.';
  out += std::to_string(t.tv_nsec);
}

// Cheap fingerprint of the host state the skeleton depends on: the layout of
// the top-level directories and the mtimes of /etc and its subdirectories
// (package and configuration tools replace files by rename, which touches the
// directory). Subdirectories are looked up relative to /etc's descriptor.
std::string Fingerprint(const std::string& host_root) {
  std::string fp = std::to_string(kFormat);
  for (const std::string& dir : BoundDirs()) {
    struct stat st {};
    if (::lstat((host_root + dir).c_str(), &st) == 0) fp += dir + std::to_string(st.st_mode);
  }
  int etc = ::open((host_root + "etc").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (etc >= 0) {
    struct stat st {};
    if (::fstat(etc, &st) == 0) AppendTime(fp, st.st_mtim);
    if (DIR* d = ::fdopendir(etc)) {  // owns etc from here
      while (struct dirent* e = ::readdir(d)) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
        struct stat sub {};
        if (::fstatat(etc, e->d_name, &sub, 0) == 0) {
          fp += e->d_name;
          AppendTime(fp, sub.st_mtim);
        }
      }
      ::closedir(d);
    } else {
      ::close(etc);
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016zx", std::hash<std::string>{}(fp));
  return hex;
}

constexpr char kCurrent[] = "current";
constexpr char kPrefix[] = "host-";

// The image `current` names, if it was found current less than `recheck` ago
// and still exists.
std::optional<std::string> RecentlyChecked(const std::string& images,
                                           std::chrono::milliseconds recheck) {
  if (recheck.count() <= 0) return std::nullopt;
  std::string link = images + "/" + kCurrent;
  struct stat st {};
  if (::lstat(link.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return std::nullopt;
  using namespace std::chrono;
  auto checked = seconds(st.st_mtim.tv_sec) + nanoseconds(st.st_mtim.tv_nsec);
  auto now = system_clock::now().time_since_epoch();
  if (now < checked || now - checked >= recheck) return std::nullopt;  // stale, or a clock step
  char target[64];
  ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0) return std::nullopt;
  std::string name(target, static_cast<size_t>(n));
  if (!name.starts_with(kPrefix) || name.find('/') != std::string::npos) return std::nullopt;
  std::string dir = images + "/" + name;
  if (::access(dir.c_str(), F_OK) != 0) return std::nullopt;
  return dir;
}

// Points `current` at the image just found current; its new mtime is the
// time of the check. Best effort: without it the next start checks again.
void MarkChecked(const std::string& images, const std::string& name) {
  std::string tmp = images + "/." + kCurrent + "-" + std::to_string(::gettid());
  ::unlink(tmp.c_str());
  if (::symlink(name.c_str(), tmp.c_str()) != 0) return;
  if (::rename(tmp.c_str(), (images + "/" + kCurrent).c_str()) != 0) ::unlink(tmp.c_str());
}

// Fills dir, an empty directory the caller made.
Status Build(const std::string& dir, const std::string& host_root) {
  auto mk = [&](const std::string& rel, mode_t mode) -> Status {
    std::string p = dir + "/" + rel;
    if (::mkdir(p.c_str(), mode) != 0) return Error::Sys("mkdir(" + Quote(p) + ")", errno);
    if (::chmod(p.c_str(), mode) != 0) return Error::Sys("chmod(" + Quote(p) + ")", errno);
    return Ok();
  };
  if (::chmod(dir.c_str(), 0755) != 0) return Error::Sys("chmod(" + Quote(dir) + ")", errno);
  for (const std::string& name : BoundDirs()) {
    struct stat st {};
    std::string host = host_root + name;
    if (::lstat(host.c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      std::string link = dir + "/" + name;
      std::filesystem::copy_symlink(host, link, ec);
      if (ec)
        return Error(Error::Code::kIO, "copying symlink " + Quote(host) + ": " + ec.message());
    } else if (S_ISDIR(st.st_mode)) {
      KILN_TRY(mk(name, 0755));
    }
  }
  for (const char* d :
       {"proc", "dev", "sys", "run", "home", "mnt", "opt", "srv", "var", "workspace"}) {
    KILN_TRY(mk(d, 0755));
  }
  KILN_TRY(mk("root", 0700));
  KILN_TRY(mk("tmp", 01777));
  KILN_TRY(mk("var/tmp", 01777));
  KILN_TRY(mk("etc", 0755));
  return CopyTree(host_root + "etc", dir + "/etc", "");
}

}  // namespace

const std::vector<std::string>& BoundDirs() {
  static const std::vector<std::string> kDirs = {"usr",   "bin",   "sbin",  "lib",
                                                 "lib32", "lib64", "libx32"};
  return kDirs;
}

bool IsSecretEtcPath(const std::string& rel, unsigned mode) {
  if (SecretNames().count(rel)) return true;
  // Private keys and anything a stranger on the host could not read either.
  if (rel.ends_with("_key") || rel.ends_with(".key") || rel.ends_with(".pem.key")) return true;
  if (S_ISREG(mode) && (mode & S_IROTH) == 0) return true;
  if (S_ISDIR(mode) && (mode & (S_IROTH | S_IXOTH)) != (S_IROTH | S_IXOTH)) return true;
  return false;
}

Result<std::string> Ensure(const std::string& state_dir, const std::string& host_root,
                           std::chrono::milliseconds recheck) {
  std::string images = state_dir + "/images";
  if (auto dir = RecentlyChecked(images, recheck)) return *dir;
  if (::mkdir(images.c_str(), 0755) != 0 && errno != EEXIST) {
    return Error::Sys("mkdir(" + Quote(images) + ")", errno);
  }
  const std::string name = kPrefix + Fingerprint(host_root);
  std::string final_dir = images + "/" + name;
  if (::access(final_dir.c_str(), F_OK) == 0) {
    MarkChecked(images, name);
    return final_dir;
  }

  // Build beside the final name and rename, so that concurrent sandboxes
  // never see a half-built image; the loser of a race discards its copy.
  // mkdtemp: builders in several threads of one process (the controller's
  // runs) each get a directory of their own.
  std::string tmp = images + "/.build-XXXXXX";
  if (::mkdtemp(tmp.data()) == nullptr) return Error::Sys("mkdtemp(" + Quote(tmp) + ")", errno);
  std::error_code ec;
  if (auto s = Build(tmp, host_root); !s) {
    std::filesystem::remove_all(tmp, ec);
    return s.error().Wrap("building the host image");
  }
  if (::rename(tmp.c_str(), final_dir.c_str()) != 0) {
    int err = errno;
    std::filesystem::remove_all(tmp, ec);
    if (err != EEXIST && err != ENOTEMPTY) {
      return Error::Sys("rename(" + Quote(tmp) + ", " + Quote(final_dir) + ")", err);
    }
  }
  MarkChecked(images, name);
  return final_dir;
}

}  // namespace kiln::sandbox::hostimage
