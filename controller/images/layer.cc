#include "controller/images/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "base/digest.h"
#include "base/fd.h"
#include "base/strings.h"

namespace kiln::images {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kOpaqueMarker[] = ".wh..wh..opq";
constexpr char kOpaqueXattr[] = "trusted.overlay.opaque";
constexpr uint32_t kIdLimit = 65536;
constexpr uint32_t kNobody = 65534;

struct ReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// A tar member's path, checked: relative, no '..', no empty result. "./a//b/"
// is "a/b"; the archive's root ("./") is "".
Result<std::string> CleanPath(std::string_view raw, const std::string& what) {
  if (raw.starts_with("/")) {
    return Error::Invalid(what + ": entry " + Quote(raw) + " has an absolute path");
  }
  std::vector<std::string> parts;
  for (const std::string& part : Split(raw, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return Error::Invalid(what + ": entry " + Quote(raw) + " climbs out of the layer with '..'");
    }
    parts.push_back(part);
  }
  return Join(parts, "/");
}

std::pair<std::string, std::string> SplitParent(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// Opens dir (relative to root) without following any symbolic link and
// without leaving root; creates missing directories (0755) on the way.
// The directories it makes are added to made, when given.
Result<UniqueFd> OpenDir(int root, const std::string& dir, const std::string& what,
                         const std::string& entry, std::vector<std::string>* made = nullptr) {
  UniqueFd cur(::dup(root));
  if (!cur.valid()) return Error::Sys("dup", errno);
  std::string path;
  for (const std::string& part : Split(dir, '/')) {
    if (part.empty()) continue;
    path += (path.empty() ? "" : "/") + part;
    open_how how{};
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int fd = static_cast<int>(::syscall(SYS_openat2, cur.get(), part.c_str(), &how, sizeof how));
    if (fd < 0 && errno == ENOENT) {
      if (::mkdirat(cur.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
        return Error::Sys(what + ": mkdir for " + Quote(entry), errno);
      }
      if (made) made->push_back(path);
      fd = static_cast<int>(::syscall(SYS_openat2, cur.get(), part.c_str(), &how, sizeof how));
    }
    if (fd < 0) {
      if (errno == ELOOP || errno == ENOTDIR || errno == EXDEV) {
        return Error::Invalid(what + ": entry " + Quote(entry) + " would be written through " +
                              Quote(part) +
                              ", which is not a directory of the layer (a symbolic "
                              "link or a file)");
      }
      return Error::Sys(what + ": opening the parent of " + Quote(entry), errno);
    }
    cur.reset(fd);
  }
  return cur;
}

// Removes what is at name in dir so that a later tar member replaces it
// (tar's rule); a directory stays when the new member is one too.
Status Replace(int dir, const std::string& name, bool new_is_dir, const std::string& what) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Ok();
    return Error::Sys(what + ": stat " + Quote(name), errno);
  }
  if (S_ISDIR(st.st_mode)) {
    if (new_is_dir) return Ok();
    if (::unlinkat(dir, name.c_str(), AT_REMOVEDIR) != 0) {
      return Error::Invalid(what + ": entry " + Quote(name) +
                            " replaces a directory that is not empty");
    }
    return Ok();
  }
  if (::unlinkat(dir, name.c_str(), 0) != 0) return Error::Sys(what + ": unlink", errno);
  return Ok();
}

Status CopyData(archive* a, int fd, const std::string& what, const std::string& path) {
  const void* buf = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  la_int64_t end = 0;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return Error::Invalid(what + ": reading " + Quote(path) + ": " + archive_error_string(a));
    }
    const char* p = static_cast<const char*>(buf);
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pwrite(fd, p + done, size - done, offset + static_cast<la_int64_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::Sys(what + ": writing " + Quote(path), errno);
      done += static_cast<size_t>(n);
    }
    end = offset + static_cast<la_int64_t>(size);
  }
  if (::ftruncate(fd, end) != 0) return Error::Sys(what + ": ftruncate " + Quote(path), errno);
  return Ok();
}

class Unpacker {
 public:
  Unpacker(int root, std::string what, const UnpackPolicy& policy, UnpackNotes* notes)
      : root_(root), what_(std::move(what)), policy_(policy), notes_(notes) {}

  Status Entry(archive* a, archive_entry* e) {
    KILN_ASSIGN_OR_RETURN(std::string path, CleanPath(archive_entry_pathname(e), what_));
    if (path.empty()) return Ok();  // the archive's own root
    auto [parent, name] = SplitParent(path);
    // Members come grouped by directory: the last member's stays open. (A
    // member that replaces that directory has another parent, so the next
    // member under it opens it again, checked.)
    if (!parent_fd_.valid() || parent != parent_path_) {
      std::vector<std::string> made;
      KILN_ASSIGN_OR_RETURN(parent_fd_, OpenDir(root_, parent, what_, path, &made));
      for (const std::string& m : made) dir_times_.try_emplace(m, 0);  // implied: time 0
      parent_path_ = parent;
    }
    const UniqueFd& dir = parent_fd_;
    if (name == kOpaqueMarker) {
      if (::fsetxattr(dir.get(), kOpaqueXattr, "y", 1, 0) != 0) {
        return Error::Sys(what_ + ": marking " + Quote(parent) + " opaque", errno);
      }
      return Ok();
    }
    if (name.starts_with(kWhiteoutPrefix)) {
      std::string hidden = name.substr(sizeof kWhiteoutPrefix - 1);
      if (hidden.empty() || hidden == "." || hidden == "..") {
        return Error::Invalid(what_ + ": entry " + Quote(path) + " is a whiteout of nothing");
      }
      KILN_TRY(Replace(dir.get(), hidden, false, what_));
      if (::mknodat(dir.get(), hidden.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
        return Error::Sys(what_ + ": whiteout " + Quote(path), errno);
      }
      return Ok();
    }
    const char* hardlink = archive_entry_hardlink(e);
    mode_t type = archive_entry_filetype(e);
    if (!hardlink && (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK)) {
      ++notes_->devices_dropped;  // the sandbox mounts its own /dev
      return Ok();
    }
    if (archive_entry_xattr_count(e) > 0) ++notes_->xattrs_dropped;
    KILN_TRY(Replace(dir.get(), name, !hardlink && type == AE_IFDIR, what_));
    const char* n = name.c_str();
    if (hardlink) return Link(dir.get(), name, path, hardlink);
    switch (type) {
      case AE_IFDIR:
        if (::mkdirat(dir.get(), n, 0700) != 0 && errno != EEXIST) {
          return Error::Sys(what_ + ": mkdir " + Quote(path), errno);
        }
        dir_times_[path] = archive_entry_mtime(e);
        break;
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target)
          return Error::Invalid(what_ + ": symbolic link " + Quote(path) + " has no target");
        if (::symlinkat(target, dir.get(), n) != 0) {
          return Error::Sys(what_ + ": symlink " + Quote(path), errno);
        }
        break;
      }
      case AE_IFIFO:
        if (::mkfifoat(dir.get(), n, 0600) != 0) return Error::Sys(what_ + ": mkfifo", errno);
        break;
      case AE_IFREG: {
        UniqueFd fd(
            ::openat(dir.get(), n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd.valid()) return Error::Sys(what_ + ": create " + Quote(path), errno);
        KILN_TRY(CopyData(a, fd.get(), what_, path));
        break;
      }
      default:
        return Error::Invalid(what_ + ": entry " + Quote(path) + " has an unknown file type");
    }
    return Metadata(dir.get(), name, e, type);
  }

  // Directories get their times last: their entries changed them. One a
  // member only implied gets time 0, so that the digest does not depend on
  // when it was unpacked.
  Status Finish() {
    for (const auto& [path, mtime] : dir_times_) {
      timespec t[2] = {{mtime, 0}, {mtime, 0}};
      if (::utimensat(root_, path.c_str(), t, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT) {
        return Error::Sys(what_ + ": utimensat " + Quote(path), errno);
      }
    }
    return Ok();
  }

 private:
  Status Link(int dir, const std::string& name, const std::string& path, const char* raw) {
    KILN_ASSIGN_OR_RETURN(std::string target, CleanPath(raw, what_));
    open_how how{};
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    UniqueFd t(static_cast<int>(
        ::syscall(SYS_openat2, root_, target.empty() ? "." : target.c_str(), &how, sizeof how)));
    struct stat st {};
    if (!t.valid() || ::fstat(t.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Error::Invalid(what_ + ": hard link " + Quote(path) + " points at " + Quote(raw) +
                            ", which is not a regular file earlier in the same layer");
    }
    if (::linkat(root_, target.c_str(), dir, name.c_str(), 0) != 0) {
      return Error::Sys(what_ + ": link " + Quote(path), errno);
    }
    return Ok();
  }

  uint32_t Id(int64_t id) {
    if (id < 0 || id >= kIdLimit) {
      ++notes_->ids_clamped;
      id = kNobody;
    }
    return static_cast<uint32_t>(id) + policy_.id_shift;
  }

  Status Metadata(int dir, const std::string& name, archive_entry* e, mode_t type) {
    const char* n = name.c_str();
    if (::geteuid() == 0) {
      if (::fchownat(dir, n, Id(archive_entry_uid(e)), Id(archive_entry_gid(e)),
                     AT_SYMLINK_NOFOLLOW) != 0) {
        return Error::Sys(what_ + ": chown " + Quote(name), errno);
      }
    }
    if (type == AE_IFLNK) {
      timespec t[2] = {{archive_entry_mtime(e), 0}, {archive_entry_mtime(e), 0}};
      (void)::utimensat(dir, n, t, AT_SYMLINK_NOFOLLOW);
      return Ok();
    }
    mode_t mode = archive_entry_perm(e) & 07777;
    if (!policy_.trusted && (mode & (S_ISUID | S_ISGID)) && type != AE_IFDIR) {
      ++notes_->setid_cleared;
      mode &= ~static_cast<mode_t>(S_ISUID | S_ISGID);
    }
    if (::fchmodat(dir, n, mode, 0) != 0)
      return Error::Sys(what_ + ": chmod " + Quote(name), errno);
    if (type != AE_IFDIR) {
      timespec t[2] = {{archive_entry_mtime(e), 0}, {archive_entry_mtime(e), 0}};
      if (::utimensat(dir, n, t, AT_SYMLINK_NOFOLLOW) != 0) {
        return Error::Sys(what_ + ": utimensat " + Quote(name), errno);
      }
    }
    return Ok();
  }

  int root_;
  std::string what_;
  UnpackPolicy policy_;
  UnpackNotes* notes_;
  std::map<std::string, int64_t> dir_times_;
  std::string parent_path_;
  UniqueFd parent_fd_;
};

// The directory walk under CanonicalTar and Seal: every entry below dir in
// byte order of its path, with its stat, and an fd of its directory.
using Visit = std::function<Status(const std::string& path, int dirfd, const std::string& name,
                                   const struct stat& st)>;

Status Walk(int dirfd, const std::string& prefix, const Visit& visit) {
  UniqueFd copy(::dup(dirfd));
  if (!copy.valid()) return Error::Sys("dup", errno);
  DIR* d = ::fdopendir(copy.get());
  if (!d) return Error::Sys("fdopendir " + Quote(prefix), errno);
  copy.release();
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* ent = ::readdir(d)) {
    std::string_view n = ent->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  if (errno != 0) return Error::Sys("readdir " + Quote(prefix), errno);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string path = prefix.empty() ? name : prefix + "/" + name;
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return Error::Sys("stat " + Quote(path), errno);
    }
    KILN_TRY(visit(path, dirfd, name, st));
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return Error::Sys("open " + Quote(path), errno);
      KILN_TRY(Walk(sub.get(), path, visit));
    }
  }
  return Ok();
}

Result<UniqueFd> OpenRoot(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Error::Sys("open " + Quote(dir), errno);
  return fd;
}

bool IsWhiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

bool IsOpaque(int dirfd, const std::string& name) {
  char v = 0;
  std::string proc = "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
  return ::lgetxattr(proc.c_str(), kOpaqueXattr, &v, 1) == 1 && v == 'y';
}

class TarWriter {
 public:
  explicit TarWriter(const TarSink& sink) : sink_(sink) {}

  Status Open() {
    a_.reset(archive_write_new());
    // Names are bytes: no translation through the locale's character set.
    if (archive_write_set_format_pax_restricted(a_.get()) != ARCHIVE_OK ||
        archive_write_set_format_option(a_.get(), "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a_.get(), 1) != ARCHIVE_OK ||
        archive_write_open2(a_.get(), this, nullptr, &TarWriter::OnWrite, nullptr, nullptr) !=
            ARCHIVE_OK) {
      return Error::Internal(std::string("libarchive: ") + archive_error_string(a_.get()));
    }
    return Ok();
  }

  // Writes one member; data is read from fd when it is a regular file.
  Status Add(archive_entry* e, int fd) {
    if (archive_write_header(a_.get(), e) != ARCHIVE_OK) return Failed();
    if (fd < 0) return Ok();
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::Sys("read", errno);
      if (n == 0) break;
      if (archive_write_data(a_.get(), buf, static_cast<size_t>(n)) < 0) return Failed();
      if (hash_) hash_->Update(std::string_view(buf, static_cast<size_t>(n)));
    }
    return Ok();
  }

  Status Close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) return Failed();
    return sink_status_;
  }

  void HashContent(Sha256* h) { hash_ = h; }

 private:
  Status Failed() {
    if (!sink_status_.ok()) return sink_status_;
    return Error::Internal(std::string("libarchive: ") + archive_error_string(a_.get()));
  }

  static la_ssize_t OnWrite(archive*, void* self, const void* buf, size_t n) {
    auto* w = static_cast<TarWriter*>(self);
    Status st = w->sink_(std::string_view(static_cast<const char*>(buf), n));
    if (!st.ok()) {
      w->sink_status_ = st;
      return -1;
    }
    return static_cast<la_ssize_t>(n);
  }

  const TarSink& sink_;
  Status sink_status_ = Ok();
  std::unique_ptr<archive, WriteDeleter> a_;
  Sha256* hash_ = nullptr;
};

uint32_t Unshift(uint32_t id, uint32_t shift) {
  return id >= shift && id - shift < kIdLimit ? id - shift : id;
}

}  // namespace

Status CanonicalTar(const std::string& dir, uint32_t id_shift, const TarSink& sink,
                    const std::function<void(json)>& entry) {
  KILN_ASSIGN_OR_RETURN(UniqueFd root, OpenRoot(dir));
  TarWriter w(sink);
  KILN_TRY(w.Open());
  std::map<std::pair<dev_t, ino_t>, std::string> inodes;
  std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
  Sha256 hash;
  Status st = Walk(
      root.get(), "",
      [&](const std::string& path, int dirfd, const std::string& name,
          const struct stat& s) -> Status {
        archive_entry_clear(e.get());
        json info = {{"path", path},
                     {"mode", s.st_mode & 07777},
                     {"uid", Unshift(s.st_uid, id_shift)},
                     {"gid", Unshift(s.st_gid, id_shift)},
                     {"mtime", static_cast<int64_t>(s.st_mtim.tv_sec)}};
        archive_entry_set_uid(e.get(), info["uid"].get<uint32_t>());
        archive_entry_set_gid(e.get(), info["gid"].get<uint32_t>());
        archive_entry_set_mtime(e.get(), s.st_mtim.tv_sec, 0);
        archive_entry_set_perm(e.get(), s.st_mode & 07777);
        UniqueFd data;
        if (IsWhiteout(s)) {
          auto [parent, hidden] = SplitParent(path);
          archive_entry_copy_pathname(
              e.get(),
              std::string((parent.empty() ? "" : parent + "/") + kWhiteoutPrefix + hidden).c_str());
          archive_entry_set_filetype(e.get(), AE_IFREG);
          archive_entry_set_perm(e.get(), 0);
          archive_entry_set_uid(e.get(), 0);
          archive_entry_set_gid(e.get(), 0);
          archive_entry_set_mtime(e.get(), 0, 0);
          info = {{"path", path}, {"type", "w"}};
        } else if (S_ISDIR(s.st_mode)) {
          archive_entry_copy_pathname(e.get(), std::string(path + "/").c_str());
          archive_entry_set_filetype(e.get(), AE_IFDIR);
          info["type"] = "d";
        } else if (S_ISLNK(s.st_mode)) {
          std::string target(static_cast<size_t>(s.st_size) + 1, '\0');
          ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
          if (n < 0) return Error::Sys("readlink " + Quote(path), errno);
          target.resize(static_cast<size_t>(n));
          archive_entry_copy_pathname(e.get(), std::string(path).c_str());
          archive_entry_set_filetype(e.get(), AE_IFLNK);
          archive_entry_copy_symlink(e.get(), std::string(target).c_str());
          info["type"] = "l";
          info["target"] = target;
        } else if (S_ISFIFO(s.st_mode)) {
          archive_entry_copy_pathname(e.get(), std::string(path).c_str());
          archive_entry_set_filetype(e.get(), AE_IFIFO);
          info["type"] = "p";
        } else if (S_ISREG(s.st_mode)) {
          archive_entry_copy_pathname(e.get(), std::string(path).c_str());
          auto [it, first] = inodes.try_emplace({s.st_dev, s.st_ino}, path);
          if (!first) {
            archive_entry_copy_hardlink(e.get(), std::string(it->second).c_str());
            archive_entry_set_filetype(e.get(), AE_IFREG);
            archive_entry_set_size(e.get(), 0);
            info["type"] = "h";
            info["target"] = it->second;
          } else {
            archive_entry_set_filetype(e.get(), AE_IFREG);
            archive_entry_set_size(e.get(), s.st_size);
            info["type"] = "f";
            info["size"] = static_cast<uint64_t>(s.st_size);
            data.reset(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            if (!data.valid()) return Error::Sys("open " + Quote(path), errno);
          }
        } else {
          return Error::Invalid("layer " + Quote(dir) + ": " + Quote(path) +
                                " is a device or a socket, which no layer holds");
        }
        hash.Init();
        w.HashContent(data.valid() ? &hash : nullptr);
        KILN_TRY(w.Add(e.get(), data.get()));
        if (data.valid()) info["sha256"] = Hex(hash.Final());
        if (S_ISDIR(s.st_mode) && IsOpaque(dirfd, name)) {
          info["opaque"] = true;
          archive_entry_clear(e.get());
          archive_entry_copy_pathname(e.get(), std::string(path + "/" + kOpaqueMarker).c_str());
          archive_entry_set_filetype(e.get(), AE_IFREG);
          archive_entry_set_perm(e.get(), 0);
          archive_entry_set_size(e.get(), 0);
          w.HashContent(nullptr);
          KILN_TRY(w.Add(e.get(), -1));
        }
        if (entry) entry(std::move(info));
        return Ok();
      });
  if (!st.ok()) return st;
  return w.Close();
}

Status RemoveTree(const std::string& dir) {
  std::error_code ec;
  if (::geteuid() != 0) {
    // An unprivileged owner needs write permission on each directory.
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) {
        ::chmod(it->path().c_str(), 0700);
      }
    }
    ::chmod(dir.c_str(), 0700);
  }
  fs::remove_all(dir, ec);
  if (ec) return Error::Sys("removing " + Quote(dir), ec.value());
  return Ok();
}

namespace {

// Reduces the unpacked tree at root to what differs from base: see Unpack.
Status Subtract(const std::string& dir, uint32_t id_shift, const FileIndex& base) {
  KILN_ASSIGN_OR_RETURN(UniqueFd root, OpenRoot(dir));
  FileIndex mine;
  KILN_TRY(CanonicalTar(
      dir, id_shift, [](std::string_view) { return Ok(); },
      [&](json e) {
        std::string path = e["path"];
        e.erase("path");
        mine.emplace(std::move(path), std::move(e));
      }));
  // Whiteouts for what the base has and this tree lacks (the topmost only).
  // A path under something that is not a directory here is hidden already.
  auto under_non_dir = [&](std::string path) {
    while (!(path = SplitParent(path).first).empty()) {
      auto it = mine.find(path);
      if (it != mine.end()) return it->second["type"] != "d";
    }
    return false;
  };
  // The directories that stay: those holding what stays, and those that differ.
  std::set<std::string> kept_dirs;
  auto keep_parents = [&](const std::string& path) {
    std::string parent = SplitParent(path).first;
    while (!parent.empty() && kept_dirs.insert(parent).second) parent = SplitParent(parent).first;
  };
  std::string hidden;
  for (const auto& [path, e] : base) {
    if (!hidden.empty() && path.starts_with(hidden + "/")) continue;
    if (mine.contains(path) || under_non_dir(path)) continue;
    hidden = path;
    auto [parent, name] = SplitParent(path);
    KILN_ASSIGN_OR_RETURN(UniqueFd d, OpenDir(root.get(), parent, "layer", path));
    if (::mknodat(d.get(), name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
      return Error::Sys("whiteout " + Quote(path), errno);
    }
    keep_parents(path);
  }
  auto equal = [&](const std::string& path, const json& e) {
    auto b = base.find(path);
    return b != base.end() && b->second == e;
  };
  // The paths of one inode go or stay together: a link cannot cross layers.
  std::map<std::string, bool> inode_same;  // first path -> all paths equal
  for (const auto& [path, e] : mine) {
    if (e["type"] != "h") continue;
    std::string first = e["target"];
    auto [it, fresh] = inode_same.try_emplace(first, equal(first, mine[first]));
    it->second = it->second && equal(path, e);
  }
  // Deepest first, so that a directory is judged after what it holds.
  for (auto it = mine.rbegin(); it != mine.rend(); ++it) {
    const std::string& path = it->first;
    bool same = equal(path, it->second);
    std::string first = it->second["type"] == "h" ? it->second["target"].get<std::string>() : path;
    if (auto group = inode_same.find(first); group != inode_same.end()) same = group->second;
    bool is_dir = it->second["type"] == "d";
    if (is_dir && kept_dirs.contains(path)) same = false;
    if (same) {
      if (::unlinkat(root.get(), path.c_str(), is_dir ? AT_REMOVEDIR : 0) != 0) {
        return Error::Sys("removing " + Quote(path) + " (the same in the layer beneath)", errno);
      }
      continue;
    }
    if (is_dir) kept_dirs.insert(path);
    keep_parents(path);
  }
  // Removing and whiting out changed the directories' times: back to the
  // tar's, so that the digest does not depend on when this ran.
  for (const std::string& dir : kept_dirs) {
    int64_t mtime = mine[dir]["mtime"];
    timespec t[2] = {{mtime, 0}, {mtime, 0}};
    if (::utimensat(root.get(), dir.c_str(), t, AT_SYMLINK_NOFOLLOW) != 0) {
      return Error::Sys("utimensat " + Quote(dir), errno);
    }
  }
  return Ok();
}

}  // namespace

Status Extract(const std::string& tar_path, const std::string& what, const std::string& dest,
               const UnpackPolicy& policy, UnpackNotes* notes) {
  UnpackNotes ignored;
  KILN_ASSIGN_OR_RETURN(UniqueFd root, OpenRoot(dest));
  std::unique_ptr<archive, ReadDeleter> a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  archive_read_support_filter_all(a.get());
  auto message = [&] {
    const char* m = archive_error_string(a.get());
    return std::string(m ? m : "unknown error");
  };
  if (archive_read_open_filename(a.get(), tar_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return Error::Invalid(what + ": " + message());
  }
  Unpacker u(root.get(), what, policy, notes ? notes : &ignored);
  archive_entry* e = nullptr;
  for (size_t count = 0;; ++count) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return Error::Invalid(what + ": not a readable tar (after " + std::to_string(count) +
                            " entries): " + message());
    }
    KILN_TRY(u.Entry(a.get(), e));
  }
  return u.Finish();
}

Result<Layer> Unpack(const std::string& tar_path, const std::string& what, const std::string& dest,
                     const UnpackPolicy& policy, UnpackNotes* notes, const FileIndex* base) {
  if (::mkdir(dest.c_str(), 0755) != 0) return Error::Sys("mkdir " + Quote(dest), errno);
  auto cleanup = [&](Error err) -> Error {
    (void)RemoveTree(dest);
    return err;
  };
  if (Status st = Extract(tar_path, what, dest, policy, notes); !st.ok()) {
    return cleanup(st.error());
  }
  if (base) {
    if (Status st = Subtract(dest, policy.id_shift, *base); !st.ok()) return cleanup(st.error());
  }
  Layer layer;
  layer.path = dest;
  Sha256 h;
  h.Init();
  Status st = CanonicalTar(
      dest, policy.id_shift,
      [&](std::string_view bytes) {
        h.Update(bytes);
        return Ok();
      },
      [&](json entry) {
        ++layer.entries;
        layer.bytes += entry.value("size", uint64_t{0});
        layer.files.push_back(std::move(entry));
      });
  if (!st.ok()) return cleanup(st.error());
  layer.digest = "sha256:" + Hex(h.Final());
  return layer;
}

FileIndex Merge(const std::vector<json>& file_lists) {
  FileIndex index;
  auto erase_under = [&](const std::string& path, bool self) {
    auto it = index.lower_bound(path);
    if (it != index.end() && it->first == path) it = self ? index.erase(it) : std::next(it);
    std::string prefix = path + "/";
    while (it != index.end() && it->first.starts_with(prefix)) it = index.erase(it);
  };
  for (const json& list : file_lists) {
    for (const json& e : list) {
      if (e["type"] == "w") {
        erase_under(e["path"], true);
      } else if (e.value("opaque", false)) {
        erase_under(e["path"], false);
      }
    }
    for (const json& e : list) {
      if (e["type"] == "w") continue;
      json v = e;
      v.erase("path");
      v.erase("opaque");
      index[e["path"]] = std::move(v);
    }
  }
  return index;
}

Result<std::string> Seal(const std::string& dir, const SealVisit& each) {
  KILN_ASSIGN_OR_RETURN(UniqueFd root, OpenRoot(dir));
  Sha256 h;
  h.Init();
  KILN_TRY(Walk(root.get(), "",
                [&](const std::string& path, int dirfd, const std::string& name,
                    const struct stat& s) -> Status {
                  if (each) KILN_TRY(each(dirfd, name));
                  h.Update(path);
                  char buf[160];
                  int n =
                      std::snprintf(buf, sizeof buf, "\t%llu\t%o\t%u\t%u\t%lld\t%lld.%09ld\n",
                                    static_cast<unsigned long long>(s.st_ino), s.st_mode, s.st_uid,
                                    s.st_gid, static_cast<long long>(s.st_size),
                                    static_cast<long long>(s.st_ctim.tv_sec), s.st_ctim.tv_nsec);
                  h.Update(std::string_view(buf, static_cast<size_t>(n)));
                  return Ok();
                }));
  return Hex(h.Final());
}

}  // namespace kiln::images
