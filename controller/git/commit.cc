// CommitChanges: a run's changes as a commit on top of its parent in the
// mirror. The workspace is read as untrusted data, the way Collect reads it
// (scan.h): every directory on the way is opened with O_NOFOLLOW, a symlink
// becomes a link entry holding its target text, a regular file is opened
// O_NOFOLLOW and checked to be regular after opening, and anything else is
// refused. The tree is the parent's tree with only the listed paths changed.
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <set>
#include <string_view>
#include <vector>

#include "controller/git/libgit.h"
#include "controller/git/scan.h"
#include "controller/git/write.h"

namespace kiln::git {
namespace {

constexpr std::string_view kKeepPrefix = "refs/kiln/";

using SignaturePtr = std::unique_ptr<git_signature, GitFree<git_signature_free>>;
using ReferencePtr = std::unique_ptr<git_reference, GitFree<git_reference_free>>;
using OdbStreamPtr = std::unique_ptr<git_odb_stream, GitFree<git_odb_stream_free>>;

// A path as a tree stores it: relative, '/'-separated, no empty, "." or ".."
// component, no ".git" entry (git refuses those in any letter case).
Status CheckPath(const std::string& path) {
  auto bad = [&](std::string_view why) {
    return Error::Invalid("committing " + Quote(path) + ": " + std::string(why));
  };
  if (path.empty()) return Error::Invalid("committing an empty path");
  if (path.find('\0') != std::string::npos) return bad("the path holds a NUL byte");
  std::string_view rest = path;
  for (;;) {
    size_t slash = rest.find('/');
    std::string_view c = rest.substr(0, slash);
    if (c.empty() || c == "." || c == "..") return bad("not a relative path in the repository");
    if (c.size() == 4 && ::strncasecmp(c.data(), ".git", 4) == 0) return bad("a .git entry");
    if (slash == std::string_view::npos) return Ok();
    rest.remove_prefix(slash + 1);
  }
}

// Streams size bytes of fd into the object database as a blob, without
// holding the file in memory.
Result<git_oid> WriteBlob(git_odb* odb, int fd, uint64_t size, const std::string& path) {
  git_odb_stream* s = nullptr;
  if (git_odb_open_wstream(&s, odb, size, GIT_OBJECT_BLOB) != 0) {
    return GitError("writing the blob of " + Quote(path));
  }
  OdbStreamPtr stream(s);
  KILN_TRY(ReadExactly(fd, size, path, [&](const char* data, size_t n) -> Status {
    if (git_odb_stream_write(s, data, n) != 0)
      return GitError("writing the blob of " + Quote(path));
    return Ok();
  }));
  git_oid oid;
  if (git_odb_stream_finalize_write(&oid, s) != 0) {
    return GitError("writing the blob of " + Quote(path));
  }
  return oid;
}

// The workspace's entry at path as a tree update: a regular file's bytes
// (0100755 when its owner may execute it, as git decides, else 0100644) or a
// symlink's target text (0120000). The blob is written to odb.
Result<git_tree_update> ReadEntry(git_repository* repo, git_odb* odb, int root_fd,
                                  const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  // O_NOFOLLOW on every component: a directory replaced by a link to /etc
  // fails here, naming the link.
  auto parent = OpenBeneath(root_fd, dir, O_RDONLY | O_DIRECTORY);
  if (!parent.ok()) {
    int err = parent.error().sys_errno();
    const char* why = err == ENOENT                    ? "a directory on its path is missing"
                      : err == ENOTDIR || err == ELOOP ? "a directory on its path is a symlink "
                                                         "(never followed) or a file"
                                                       : "opening its directory";
    return parent.error().Wrap("committing " + Quote(path) + ": " + why);
  }
  struct stat st;
  if (::fstatat(parent->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return Error::Sys("committing " + Quote(path) + ": lstat(" + Quote(path) + ")", errno);
  }
  git_tree_update u{};
  u.action = GIT_TREE_UPDATE_UPSERT;
  if (S_ISLNK(st.st_mode)) {
    KILN_ASSIGN_OR_RETURN(std::string target, ReadLinkAt(parent->get(), name.c_str(), path, st));
    if (git_blob_create_from_buffer(&u.id, repo, target.data(), target.size()) != 0) {
      return GitError("writing the link " + Quote(path));
    }
    u.filemode = GIT_FILEMODE_LINK;
    return u;
  }
  if (S_ISDIR(st.st_mode)) {
    return Error::Invalid("committing " + Quote(path) + ": it is a directory in the workspace");
  }
  if (!S_ISREG(st.st_mode)) {
    return Error::Invalid("committing " + Quote(path) +
                          ": a socket, FIFO or device cannot be committed");
  }
  struct stat opened;
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(parent->get(), name.c_str(), path, &opened));
  u.filemode = (opened.st_mode & S_IXUSR) ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
  KILN_ASSIGN_OR_RETURN(u.id,
                        WriteBlob(odb, fd.get(), static_cast<uint64_t>(opened.st_size), path));
  return u;
}

// base with updates applied; base itself when there are none.
Result<TreePtr> UpdateTree(git_repository* repo, TreePtr base,
                           const std::vector<git_tree_update>& updates) {
  if (updates.empty()) return base;
  git_oid id;
  if (git_tree_create_updated(&id, repo, base.get(), updates.size(), updates.data()) != 0) {
    return GitError("building the commit's tree");
  }
  git_tree* tree = nullptr;
  if (git_tree_lookup(&tree, repo, &id) != 0) return GitError("reading the commit's tree");
  return TreePtr(tree);
}

Result<SignaturePtr> MakeSignature(const Signature& who) {
  git_signature* sig = nullptr;
  int rc = who.time_s == 0 ? git_signature_now(&sig, who.name.c_str(), who.email.c_str())
                           : git_signature_new(&sig, who.name.c_str(), who.email.c_str(),
                                               static_cast<git_time_t>(who.time_s), 0);
  if (rc != 0) return GitError("signature " + Quote(who.name + " <" + who.email + ">"));
  return SignaturePtr(sig);
}

// The message as `git commit -m` stores it: trailing whitespace and blank
// lines at either end dropped, runs of blank lines collapsed, one final
// newline. '#' lines are kept (no editor template to strip).
Result<std::string> CleanMessage(const std::string& message) {
  git_buf buf = GIT_BUF_INIT;
  if (git_message_prettify(&buf, message.c_str(), /*strip_comments=*/0, '#') != 0) {
    return GitError("commit message");
  }
  std::string out(buf.ptr, buf.size);
  git_buf_dispose(&buf);
  if (out.empty()) return Error::Invalid("committing: the commit message is empty");
  return out;
}

}  // namespace

Result<std::string> CommitChanges(const std::string& repo_path, const std::string& parent,
                                  const std::string& workspace,
                                  const std::vector<FileChange>& files, const std::string& message,
                                  const Signature& author, const std::string& keep_ref) {
  InitLibgit2();
  if (files.empty()) {
    return Error::Invalid("committing on " + Quote(parent) + ": no changes to commit");
  }
  int valid = 0;
  if (keep_ref.compare(0, kKeepPrefix.size(), kKeepPrefix) != 0 ||
      git_reference_name_is_valid(&valid, keep_ref.c_str()) != 0 || !valid) {
    return Error::Invalid("committing: keep ref " + Quote(keep_ref) +
                          " is not a valid ref name under refs/kiln/");
  }
  // Every path is checked before anything is read or written.
  std::set<std::string_view> seen;
  for (const FileChange& f : files) {
    KILN_TRY(CheckPath(f.path));
    if (!f.old_path.empty()) KILN_TRY(CheckPath(f.old_path));
    if (!seen.insert(f.path).second) {
      return Error::Invalid("committing " + Quote(f.path) + ": listed twice");
    }
    if (f.status != 'D' && f.new_mode == 0) {
      return Error::Invalid("committing " + Quote(f.path) +
                            ": a socket, FIFO or device cannot be committed");
    }
  }
  KILN_ASSIGN_OR_RETURN(std::string clean_message, CleanMessage(message));
  KILN_ASSIGN_OR_RETURN(SignaturePtr sig, MakeSignature(author));

  auto opened = OpenBare(repo_path);
  if (!opened.ok()) return opened.error().Wrap("committing on " + Quote(parent));
  RepoPtr repo = std::move(opened).value();
  auto parent_tree = CommitTree(repo.get(), parent);
  if (!parent_tree.ok()) {
    return parent_tree.error().Wrap("committing on " + Quote(parent) + " in " + Quote(repo_path));
  }
  TreePtr base = std::move(parent_tree).value();
  git_oid parent_id;
  git_oid_fromstr(&parent_id, parent.c_str());  // CommitTree checked it
  git_commit* pc = nullptr;
  if (git_commit_lookup(&pc, repo.get(), &parent_id) != 0) {
    return GitError("commit " + Quote(parent));
  }
  CommitPtr parent_commit(pc);
  git_odb* o = nullptr;
  if (git_repository_odb(&o, repo.get()) != 0) return GitError("object database");
  OdbPtr odb(o);

  // The workspace root itself is the caller's path; below it nothing is
  // followed.
  UniqueFd root(::open(workspace.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return Error::Sys("open(" + Quote(workspace) + ")", errno);

  // Removals first, then additions on the result: git_tree_create_updated
  // cannot replace a file by a directory (or back) in one pass, and removing
  // a directory's last file removes the directory.
  std::vector<git_tree_update> removals, upserts;
  // A path the parent does not have needs no removal (and libgit2 would
  // refuse it).
  std::set<std::string_view> removing;
  auto remove = [&](const std::string& path) {
    if (!removing.insert(path).second) return;
    git_tree_entry* e = nullptr;
    if (git_tree_entry_bypath(&e, base.get(), path.c_str()) != 0) return;
    git_tree_entry_free(e);
    git_tree_update u{};
    u.action = GIT_TREE_UPDATE_REMOVE;
    u.path = path.c_str();
    removals.push_back(u);
  };
  for (const FileChange& f : files) {
    // A rename, once Collect reports them, leaves its old path.
    if (!f.old_path.empty() && f.old_path != f.path) remove(f.old_path);
    if (f.status == 'D') {
      remove(f.path);
      continue;
    }
    KILN_ASSIGN_OR_RETURN(git_tree_update u, ReadEntry(repo.get(), odb.get(), root.get(), f.path));
    u.path = f.path.c_str();
    upserts.push_back(u);
  }
  git_oid base_id = *git_tree_id(base.get());
  KILN_ASSIGN_OR_RETURN(TreePtr removed, UpdateTree(repo.get(), std::move(base), removals));
  KILN_ASSIGN_OR_RETURN(TreePtr tree, UpdateTree(repo.get(), std::move(removed), upserts));
  if (git_oid_equal(git_tree_id(tree.get()), &base_id)) {
    return Error::Invalid("committing on " + Quote(parent) +
                          ": the changes leave the parent's tree as it was");
  }

  git_oid id;
  const git_commit* parents[] = {parent_commit.get()};
  if (git_commit_create(&id, repo.get(), nullptr, sig.get(), sig.get(), nullptr,
                        clean_message.c_str(), tree.get(), 1, parents) != 0) {
    return GitError("creating a commit on " + Quote(parent) + " in " + Quote(repo_path));
  }
  git_reference* ref = nullptr;
  if (git_reference_create(&ref, repo.get(), keep_ref.c_str(), &id, /*force=*/1,
                           "kiln: run commit") != 0) {
    return GitError("pointing " + Quote(keep_ref) + " at " + Quote(OidHex(id)));
  }
  ReferencePtr owner(ref);
  return OidHex(id);
}

}  // namespace kiln::git
