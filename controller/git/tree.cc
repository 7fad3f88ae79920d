// Cache::Tree: the checkout of a commit, made once per commit and sandbox uid
// and shared read-only by every run's overlay. It carries a .git of its own
// (detached HEAD, an index, the mirror's packs hard-linked) so that git works
// inside the sandbox without any path of the host.
#include <dirent.h>
#include <fcntl.h>
#include <fts.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "controller/git/files.h"
#include "controller/git/git.h"
#include "controller/git/libgit.h"

namespace kiln::git {
namespace {

// The tree's own repository configuration. No remote: the sandbox learns no
// URL. checkStat=minimal because the index is written on the host: the
// sandbox sees other uids (user namespace) and the chown after the checkout
// changes every ctime, so git compares only mtime, size and mode; otherwise
// the first `git status` inside would re-hash the whole tree.
constexpr char kTreeConfig[] =
    "[core]\n"
    "\trepositoryformatversion = 0\n"
    "\tfilemode = true\n"
    "\tsymlinks = true\n"
    "\tbare = false\n"
    "\tlogallrefupdates = true\n"
    "\tcheckStat = minimal\n"
    "\ttrustctime = false\n";

// The empty .git: HEAD detached at the commit, refs, objects.
Status MakeGitDir(const std::string& git_dir, const std::string& commit) {
  for (const char* sub :
       {"", "/refs", "/refs/heads", "/refs/tags", "/objects", "/objects/pack", "/objects/info"}) {
    KILN_TRY(MakeDir(git_dir + sub, 0755));
  }
  KILN_TRY(WriteNewFile(git_dir + "/HEAD", commit + "\n", 0644, Sync::kNoFsync));
  return WriteNewFile(git_dir + "/config", kTreeConfig, 0644, Sync::kNoFsync);
}

// Writes the commit's files and the index into dir, reading objects straight
// from the mirror's object database (the tree's own objects are linked in
// later, after the chown, so that the shared pack files keep their owner).
Status Checkout(const std::string& dir, const std::string& mirror_path, const std::string& commit) {
  git_repository* r = nullptr;
  if (git_repository_open(&r, dir.c_str()) != 0) return GitError("opening " + Quote(dir));
  RepoPtr repo(r);
  git_odb* o = nullptr;
  std::string objects = mirror_path + "/objects";
  if (git_odb_open(&o, objects.c_str()) != 0) return GitError("opening " + Quote(objects));
  OdbPtr odb(o);
  if (git_repository_set_odb(repo.get(), odb.get()) != 0) return GitError("using mirror objects");
  KILN_ASSIGN_OR_RETURN(TreePtr tree, CommitTree(repo.get(), commit));
  git_checkout_options opts;
  git_checkout_options_init(&opts, GIT_CHECKOUT_OPTIONS_VERSION);
  opts.checkout_strategy = GIT_CHECKOUT_FORCE;
  // Blobs as stored: no CRLF or ident conversion from .gitattributes or the
  // host's config. Collect compares the workspace with the blobs byte for
  // byte, so an untouched file must be its blob.
  opts.disable_filters = 1;
  opts.dir_mode = 0755;
  if (git_checkout_tree(repo.get(), reinterpret_cast<const git_object*>(tree.get()), &opts) != 0) {
    return GitError("checking out " + commit + " into " + Quote(dir));
  }
  return Ok();
}

// lchown of every entry below and including dir.
Status ChownAll(const std::string& dir, uid_t uid, gid_t gid) {
  char* paths[] = {const_cast<char*>(dir.c_str()), nullptr};
  FTS* fts = ::fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, nullptr);
  if (fts == nullptr) return Error::Sys("fts_open(" + Quote(dir) + ")", errno);
  Status status;
  for (;;) {
    errno = 0;
    FTSENT* e = ::fts_read(fts);
    if (e == nullptr) {
      if (errno != 0) status = Error::Sys("fts_read(" + Quote(dir) + ")", errno);
      break;
    }
    if (e->fts_info == FTS_DP) continue;  // directories are visited before their content
    if (e->fts_info == FTS_DNR || e->fts_info == FTS_ERR || e->fts_info == FTS_NS) {
      status = Error::Sys("reading " + Quote(e->fts_path), e->fts_errno);
      break;
    }
    if (::lchown(e->fts_accpath, uid, gid) != 0) {
      status = Error::Sys("lchown(" + Quote(e->fts_path) + ")", errno);
      break;
    }
  }
  ::fts_close(fts);
  return status;
}

// Copies regular file from to a new file to (mode 0444, root-owned).
Status CopyFile(const std::string& from, const std::string& to) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!in.valid()) return Error::Sys("open(" + Quote(from) + ")", errno);
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!out.valid()) return Error::Sys("open(" + Quote(to) + ")", errno);
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Sys("read(" + Quote(from) + ")", errno);
    if (n == 0) break;
    KILN_TRY(WriteAll(out.get(), std::string_view(buf, static_cast<size_t>(n))));
  }
  return Ok();
}

// A hard link of the mirror's immutable pack file (made readable by all, as
// the sandbox reads it under another uid), or a copy across file systems.
Status LinkPackFile(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) == 0) {
    if (::chmod(to.c_str(), 0444) != 0) return Error::Sys("chmod(" + Quote(to) + ")", errno);
    return Ok();
  }
  if (errno != EXDEV) return Error::Sys("link(" + Quote(from) + ", " + Quote(to) + ")", errno);
  return CopyFile(from, to);
}

Result<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Error::Sys("opendir(" + Quote(dir) + ")", errno);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  return names;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Gives the tree every object of the mirror: the packs hard-linked (one link
// per pack, whatever the number of objects; pack files are never rewritten in
// place) and the rare loose objects copied and owned by uid:gid. Under the
// mirror's shared lock, so no fetch adds a half-written pack meanwhile.
Status LinkObjects(const std::string& mirror_path, const std::string& git_dir, uid_t uid,
                   gid_t gid) {
  // mirrors/<key>.git is locked by mirrors/<key>.lock.
  std::string lock_path = EndsWith(mirror_path, ".git")
                              ? mirror_path.substr(0, mirror_path.size() - 4) + ".lock"
                              : mirror_path + ".lock";
  KILN_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(lock_path, FileLock::Mode::kShared));
  std::string from = mirror_path + "/objects";
  std::string to = git_dir + "/objects";
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> packs, ListDir(from + "/pack"));
  std::set<std::string> names(packs.begin(), packs.end());
  for (const std::string& name : packs) {
    if (!EndsWith(name, ".pack")) continue;
    std::string base = name.substr(0, name.size() - 5);
    if (!names.count(base + ".idx")) continue;  // an index is needed to read the pack
    for (const char* ext : {".pack", ".idx", ".rev"}) {
      if (!names.count(base + ext)) continue;
      KILN_TRY(LinkPackFile(from + "/pack/" + base + ext, to + "/pack/" + base + ext));
    }
  }
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> fanout, ListDir(from));
  for (const std::string& sub : fanout) {
    if (sub.size() != 2 || !std::isxdigit(static_cast<unsigned char>(sub[0])) ||
        !std::isxdigit(static_cast<unsigned char>(sub[1]))) {
      continue;
    }
    std::string dir = to + "/" + sub;
    KILN_TRY(MakeDir(dir, 0755));
    if (::lchown(dir.c_str(), uid, gid) != 0)
      return Error::Sys("lchown(" + Quote(dir) + ")", errno);
    KILN_ASSIGN_OR_RETURN(std::vector<std::string> objects, ListDir(from + "/" + sub));
    for (const std::string& object : objects) {
      if (object.size() != GIT_OID_HEXSZ - 2) continue;  // tmp_obj_* of a writer
      std::string dest = dir + "/" + object;
      KILN_TRY(CopyFile(from + "/" + sub + "/" + object, dest));
      if (::lchown(dest.c_str(), uid, gid) != 0) {
        return Error::Sys("lchown(" + Quote(dest) + ")", errno);
      }
    }
  }
  return Ok();
}

Status BuildTree(const Resolved& repo, const std::string& dir, uid_t uid, gid_t gid) {
  std::string git_dir = dir + "/.git";
  if (::chmod(dir.c_str(), 0755) != 0) return Error::Sys("chmod(" + Quote(dir) + ")", errno);
  KILN_TRY(MakeGitDir(git_dir, repo.commit));
  KILN_TRY(Checkout(dir, repo.mirror_path, repo.commit));
  KILN_TRY(ChownAll(dir, uid, gid));
  return LinkObjects(repo.mirror_path, git_dir, uid, gid);
}

}  // namespace

Result<std::string> Cache::Tree(const Resolved& repo, uid_t uid, gid_t gid) {
  InitLibgit2();
  git_oid oid;
  if (!IsFullSha(repo.commit) || git_oid_fromstr(&oid, repo.commit.c_str()) != 0 ||
      OidHex(oid) != repo.commit) {
    return Error::Invalid("commit " + Quote(repo.commit) + " is not a lowercase 40-hex name");
  }
  std::string dir = root_ + "/trees";
  std::string name = repo.commit + "-" + std::to_string(uid);
  std::string path = dir + "/" + name;

  // A tree exists only once complete (it is renamed into place), so finding
  // it needs no lock.
  auto cached = [&]() -> Result<bool> {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return false;
      return Error::Sys("lstat(" + Quote(path) + ")", errno);
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != uid || st.st_gid != gid) {
      return Error::Invalid("cached tree " + Quote(path) + " is not a directory owned by " +
                            std::to_string(uid) + ":" + std::to_string(gid));
    }
    return true;
  };
  {
    KILN_ASSIGN_OR_RETURN(bool hit, cached());
    if (hit) return path;
  }
  KILN_TRY(MakeDirs(root_));
  KILN_TRY(MakeDir(dir, 0700));
  KILN_ASSIGN_OR_RETURN(FileLock lock,
                        FileLock::Acquire(path + ".lock", FileLock::Mode::kExclusive));
  {
    KILN_ASSIGN_OR_RETURN(bool hit, cached());  // built while this caller waited
    if (hit) return path;
  }
  std::string temp_prefix = "." + name + ".tmp-";
  KILN_TRY(RemoveStale(dir, temp_prefix));
  KILN_ASSIGN_OR_RETURN(std::string tmp, MakeTempDir(dir, temp_prefix));
  Cleanup remove_tmp([&] { (void)RemoveTree(tmp); });
  if (auto s = BuildTree(repo, tmp, uid, gid); !s) {
    return s.error().Wrap("building the tree of " + repo.commit);
  }
  KILN_TRY(SyncFs(tmp));
  KILN_TRY(Rename(tmp, path));
  remove_tmp.Dismiss();
  return path;
}

}  // namespace kiln::git
