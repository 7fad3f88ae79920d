#include "controller/git/scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "controller/git/ignore.h"
#include "controller/git/libgit.h"

namespace kiln::git {
namespace {

// A .gitignore larger than this is not read (git's own limit is 100 MiB;
// no real one comes near either).
constexpr off_t kMaxIgnoreFileBytes = 1 << 20;

enum class Kind { kNone, kDir, kFile, kLink, kSpecial };

Kind KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return Kind::kDir;
  if (S_ISREG(mode)) return Kind::kFile;
  if (S_ISLNK(mode)) return Kind::kLink;
  return Kind::kSpecial;
}

std::string Join(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

struct EvpFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// The blob id git would give the size bytes read from fd.
Result<git_oid> HashBlob(int fd, uint64_t size, const std::string& path) {
  std::unique_ptr<EVP_MD_CTX, EvpFree> ctx(EVP_MD_CTX_new());
  std::string header = "blob " + std::to_string(size);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha1(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), header.c_str(), header.size() + 1) != 1) {
    return Error::Internal("SHA-1 of " + Quote(path) + ": OpenSSL failed");
  }
  KILN_TRY(ReadExactly(fd, size, path, [&](const char* data, size_t n) -> Status {
    EVP_DigestUpdate(ctx.get(), data, n);
    return Ok();
  }));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  git_oid oid;
  git_oid_fromraw(&oid, md);
  return oid;
}

// Names in the directory, without ".", "..".
Result<std::vector<std::string>> ReadNames(int dir_fd, const std::string& path) {
  int fd = ::dup(dir_fd);
  if (fd < 0) return Error::Sys("dup", errno);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    ::close(fd);
    return Error::Sys("fdopendir(" + Quote(path) + ")", err);
  }
  ::rewinddir(d);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Error::Sys("readdir(" + Quote(path) + ")", err);
  return names;
}

// The value of the overlay xattr name (trusted.overlay.NAME as root mounts
// it, user.overlay.NAME in a user namespace's "userxattr" mount) on the open
// directory fd, "" when it has none.
Result<std::string> OverlayXattr(int fd, const std::string& name, const std::string& path) {
  for (const char* ns : {"trusted.overlay.", "user.overlay."}) {
    char value[256];
    ssize_t n = ::fgetxattr(fd, (ns + name).c_str(), value, sizeof value);
    if (n >= 0) return std::string(value, static_cast<size_t>(n));
    // ERANGE: a value longer than any overlayfs writes; it is there.
    if (errno == ERANGE) return std::string("?");
    if (errno != ENODATA && errno != ENOTSUP) {
      return Error::Sys("getxattr(" + Quote(path) + ", " + ns + name + ")", errno);
    }
  }
  return std::string();
}

// A directory still to compare.
struct DirTask {
  std::string rel;  // "" for the root
  TreePtr tree;     // the commit's tree here; null when untracked
  std::shared_ptr<const IgnoreFrame> ignore;
  bool ignored = false;  // inside an ignored directory: untracked content is ignored
  // Only the names the overlay's upper directory holds at rel can differ
  // from the tree here (see Scan's upper_fd); false compares every name.
  bool guided = false;
};

class Scanner {
 public:
  // upper_fd: the overlay's upper directory over root_fd, or -1.
  Scanner(git_repository* repo, int root_fd, int upper_fd)
      : repo_(repo), root_fd_(root_fd), upper_fd_(upper_fd) {}

  Result<std::vector<Change>> Run(const git_tree* root) {
    git_tree* copy = nullptr;
    if (git_tree_dup(&copy, const_cast<git_tree*>(root)) != 0) return GitError("tree");
    pending_.push_back(DirTask{"", TreePtr(copy), nullptr, false, upper_fd_ >= 0});
    while (!pending_.empty()) {
      DirTask task = std::move(pending_.back());
      pending_.pop_back();
      KILN_TRY(ScanDir(std::move(task)));
    }
    return std::move(changes_);
  }

 private:
  struct Node {
    const git_tree_entry* entry = nullptr;
    bool in_workspace = false;
  };

  Status ScanDir(DirTask task) {
    KILN_ASSIGN_OR_RETURN(UniqueFd dir, OpenBeneath(root_fd_, task.rel, O_RDONLY | O_DIRECTORY));
    std::map<std::string, Node> nodes;
    KILN_ASSIGN_OR_RETURN(Names upper, UpperNames(task));
    if (upper) {
      // Every other name is the lower layer's, which is the tree's.
      for (std::string& name : *upper) {
        Node& node = nodes[name];
        node.in_workspace = true;  // or a whiteout: the lstat below finds it gone
        if (task.tree) node.entry = git_tree_entry_byname(task.tree.get(), name.c_str());
      }
    } else {
      task.guided = false;
      KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, ReadNames(dir.get(), task.rel));
      for (std::string& name : names) nodes[std::move(name)].in_workspace = true;
      if (task.tree) {
        size_t count = git_tree_entrycount(task.tree.get());
        for (size_t i = 0; i < count; ++i) {
          const git_tree_entry* e = git_tree_entry_byindex(task.tree.get(), i);
          nodes[git_tree_entry_name(e)].entry = e;
        }
      }
    }
    std::shared_ptr<const IgnoreFrame> ignore = task.ignore;
    // Guided, an unchanged .gitignore is not among the names, but applies.
    if (!task.ignored &&
        (task.guided || (nodes.count(".gitignore") && nodes[".gitignore"].in_workspace))) {
      KILN_ASSIGN_OR_RETURN(ignore, ReadIgnore(dir.get(), task));
    }
    for (const auto& [name, node] : nodes) {
      if (name == ".git") continue;  // the agent's repository, never a change
      KILN_TRY(ScanEntry(dir.get(), task, ignore, name, node));
    }
    return Ok();
  }

  // The names of the upper directory at task.rel when the task is guided
  // and that directory shows only what changed; nullopt when every name
  // must be compared: the task is not guided, or the upper directory is
  // opaque (it replaced a lower one: nothing below shows through), or
  // redirects to a lower directory elsewhere (a renamed directory), or is
  // missing or not a directory.
  using Names = std::optional<std::vector<std::string>>;
  Result<Names> UpperNames(const DirTask& task) {
    if (!task.guided) return Names();
    auto upper = OpenBeneath(upper_fd_, task.rel, O_RDONLY | O_DIRECTORY);
    if (!upper.ok()) return Names();
    KILN_ASSIGN_OR_RETURN(std::string opaque, OverlayXattr(upper->get(), "opaque", task.rel));
    KILN_ASSIGN_OR_RETURN(std::string redirect, OverlayXattr(upper->get(), "redirect", task.rel));
    // "x" marks a directory holding xattr whiteouts (Linux 6.7), not opacity.
    if ((!opaque.empty() && opaque != "x") || !redirect.empty()) return Names();
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> names, ReadNames(upper->get(), task.rel));
    return Names(std::move(names));
  }

  Result<std::shared_ptr<const IgnoreFrame>> ReadIgnore(int dir, const DirTask& task) {
    std::string path = Join(task.rel, ".gitignore");
    struct stat st;
    if (::fstatat(dir, ".gitignore", &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return task.ignore;
      return Error::Sys("lstat(" + Quote(path) + ")", errno);
    }
    // git reads no .gitignore through a symlink either.
    if (!S_ISREG(st.st_mode) || st.st_size > kMaxIgnoreFileBytes) return task.ignore;
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(dir, ".gitignore", path, &st));
    std::string content(static_cast<size_t>(st.st_size), '\0');
    ssize_t n = ::pread(fd.get(), content.data(), content.size(), 0);
    if (n < 0) return Error::Sys("read(" + Quote(path) + ")", errno);
    content.resize(static_cast<size_t>(n));
    IgnoreFile file(content);
    if (file.empty()) return task.ignore;
    std::string base = task.rel.empty() ? "" : task.rel + "/";
    return std::shared_ptr<const IgnoreFrame>(
        new IgnoreFrame{task.ignore, std::move(base), std::move(file)});
  }

  Status ScanEntry(int dir, const DirTask& task, const std::shared_ptr<const IgnoreFrame>& ignore,
                   const std::string& name, const Node& node) {
    std::string path = Join(task.rel, name);
    struct stat st;
    Kind kind = Kind::kNone;
    if (node.in_workspace) {
      if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        kind = KindOf(st.st_mode);
      } else if (errno != ENOENT) {
        return Error::Sys("lstat(" + Quote(path) + ")", errno);
      }
    }
    uint32_t mode = node.entry ? git_tree_entry_filemode(node.entry) : 0;
    if (mode == kModeGitlink) return Ok();  // submodules are not checked out
    if (mode == kModeTree) {
      if (kind == Kind::kDir) {
        KILN_ASSIGN_OR_RETURN(TreePtr sub, SubTree(node.entry, path));
        bool ignored = task.ignored || IsIgnored(ignore.get(), path, true);
        pending_.push_back(DirTask{path, std::move(sub), ignore, ignored, task.guided});
        return Ok();
      }
      KILN_TRY(DeleteTree(node.entry, path));
      return kind == Kind::kNone ? Ok() : Untracked(dir, task, ignore, name, path, st, kind);
    }
    if (mode == 0) {
      return kind == Kind::kNone ? Ok() : Untracked(dir, task, ignore, name, path, st, kind);
    }
    // A blob or a symlink is tracked at this path.
    Change c;
    c.path = path;
    c.old_mode = mode;
    c.old_id = *git_tree_entry_id(node.entry);
    if (kind == Kind::kNone || kind == Kind::kDir) {
      c.status = 'D';
      changes_.push_back(std::move(c));
      return kind == Kind::kDir ? Untracked(dir, task, ignore, name, path, st, kind) : Ok();
    }
    KILN_TRY(Describe(dir, name, st, kind, &c));
    bool was_link = mode == kModeLink, is_link = c.new_mode == kModeLink;
    if (c.new_mode == 0 || was_link != is_link) {
      c.status = 'T';
    } else if (c.new_mode == c.old_mode && git_oid_equal(&c.new_id, &c.old_id)) {
      return Ok();
    } else {
      c.status = 'M';
    }
    changes_.push_back(std::move(c));
    return Ok();
  }

  // An entry the commit does not have at this path.
  Status Untracked(int dir, const DirTask& task, const std::shared_ptr<const IgnoreFrame>& ignore,
                   const std::string& name, const std::string& path, const struct stat& st,
                   Kind kind) {
    if (task.ignored || IsIgnored(ignore.get(), path, kind == Kind::kDir)) return Ok();
    if (kind == Kind::kDir) {
      pending_.push_back(DirTask{path, nullptr, ignore, false, false});
      return Ok();
    }
    Change c;
    c.path = path;
    c.status = 'A';
    KILN_TRY(Describe(dir, name, st, kind, &c));
    changes_.push_back(std::move(c));
    return Ok();
  }

  // The workspace side of a change: mode, size, id and link target.
  Status Describe(int dir, const std::string& name, const struct stat& st, Kind kind, Change* c) {
    if (kind == Kind::kSpecial) return Ok();  // listed, never opened
    if (kind == Kind::kLink) {
      KILN_ASSIGN_OR_RETURN(std::string target, ReadLinkAt(dir, name.c_str(), c->path, st));
      c->new_mode = kModeLink;
      c->new_size = target.size();
      if (git_odb_hash(&c->new_id, target.data(), target.size(), GIT_OBJECT_BLOB) != 0) {
        return GitError("hashing " + Quote(c->path));
      }
      c->link_target = std::move(target);
      return Ok();
    }
    struct stat opened;
    KILN_ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(dir, name.c_str(), c->path, &opened));
    c->new_mode = (opened.st_mode & S_IXUSR) ? kModeExec : kModeFile;  // git looks at u+x only
    c->new_size = static_cast<uint64_t>(opened.st_size);
    KILN_ASSIGN_OR_RETURN(c->new_id, HashBlob(fd.get(), c->new_size, c->path));
    return Ok();
  }

  Result<TreePtr> SubTree(const git_tree_entry* entry, const std::string& path) {
    git_tree* tree = nullptr;
    if (git_tree_lookup(&tree, repo_, git_tree_entry_id(entry)) != 0) {
      return GitError("tree " + Quote(path));
    }
    return TreePtr(tree);
  }

  // Every file of a tracked directory that is gone from the workspace.
  Status DeleteTree(const git_tree_entry* entry, const std::string& path) {
    KILN_ASSIGN_OR_RETURN(TreePtr tree, SubTree(entry, path));
    struct Walk {
      const std::string& prefix;
      std::vector<Change>& out;
    } walk{path, changes_};
    auto cb = [](const char* root, const git_tree_entry* e, void* payload) -> int {
      auto* w = static_cast<Walk*>(payload);
      uint32_t mode = git_tree_entry_filemode(e);
      if (mode == kModeTree || mode == kModeGitlink) return 0;
      Change c;
      c.path = w->prefix + "/" + root + git_tree_entry_name(e);
      c.status = 'D';
      c.old_mode = mode;
      c.old_id = *git_tree_entry_id(e);
      w->out.push_back(std::move(c));
      return 0;
    };
    if (git_tree_walk(tree.get(), GIT_TREEWALK_PRE, cb, &walk) != 0) {
      return GitError("walking tree " + Quote(path));
    }
    return Ok();
  }

  git_repository* repo_;
  int root_fd_;
  int upper_fd_;
  std::vector<DirTask> pending_;
  std::vector<Change> changes_;
};

}  // namespace

Result<UniqueFd> OpenRegular(int dir, const char* name, const std::string& path, struct stat* st) {
  UniqueFd fd(::openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  if (::fstat(fd.get(), st) != 0) return Error::Sys("fstat(" + Quote(path) + ")", errno);
  if (!S_ISREG(st->st_mode)) {
    return Error(Error::Code::kIO, Quote(path) + " stopped being a regular file");
  }
  return fd;
}

Result<std::string> ReadLinkAt(int dir, const char* name, const std::string& path,
                               const struct stat& st) {
  // st_size is the target's length, but a buffer of PATH_MAX holds any target.
  std::string target(std::max<size_t>(static_cast<size_t>(st.st_size), PATH_MAX) + 1, '\0');
  ssize_t n = ::readlinkat(dir, name, target.data(), target.size());
  if (n < 0) return Error::Sys("readlink(" + Quote(path) + ")", errno);
  if (static_cast<size_t>(n) == target.size()) {
    return Error(Error::Code::kIO, Quote(path) + " changed while it was read");
  }
  target.resize(static_cast<size_t>(n));
  return target;
}

Result<UniqueFd> OpenBeneath(int root_fd, std::string_view path, int flags) {
  if (path.empty()) {
    UniqueFd fd(::openat(root_fd, ".", flags | O_CLOEXEC));
    if (!fd.valid()) return Error::Sys("open('.')", errno);
    return fd;
  }
  UniqueFd current;
  int at = root_fd;
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    bool last = slash == std::string_view::npos;
    std::string component(path.substr(start, last ? std::string_view::npos : slash - start));
    int f = last ? flags : O_RDONLY | O_DIRECTORY;
    UniqueFd next(::openat(at, component.c_str(), f | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) {
      return Error::Sys("open(" + Quote(path.substr(0, last ? path.size() : slash)) + ")", errno);
    }
    if (last) return next;
    current = std::move(next);
    at = current.get();
    start = slash + 1;
  }
}

Result<std::vector<Change>> Scan(git_repository* repo, const git_tree* tree, int root_fd,
                                 int upper_fd) {
  return Scanner(repo, root_fd, upper_fd).Run(tree);
}

Status ReadExactly(int fd, uint64_t size, const std::string& path,
                   const std::function<Status(const char* data, size_t n)>& sink) {
  uint64_t total = 0;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Sys("read(" + Quote(path) + ")", errno);
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > size) break;
    KILN_TRY(sink(buf, static_cast<size_t>(n)));
  }
  if (total != size) {
    return Error(Error::Code::kIO, Quote(path) + " changed size while it was read");
  }
  return Ok();
}

}  // namespace kiln::git
