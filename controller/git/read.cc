// Reading a repository at commits, without a checkout: a file's bytes, a
// directory's names, the merge base of two commits.
#include <algorithm>
#include <memory>
#include <string_view>

#include "controller/git/libgit.h"
#include "controller/git/write.h"

namespace kiln::git {
namespace {

using TreeEntryPtr = std::unique_ptr<git_tree_entry, GitFree<git_tree_entry_free>>;

// A path in a tree: relative, '/'-separated, no empty, "." or ".." component.
bool IsTreePath(std::string_view path) {
  if (path.empty() || path.find('\0') != std::string_view::npos) return false;
  for (;;) {
    size_t slash = path.find('/');
    std::string_view c = path.substr(0, slash);
    if (c.empty() || c == "." || c == "..") return false;
    if (slash == std::string_view::npos) return true;
    path.remove_prefix(slash + 1);
  }
}

// The entry at path in tree; null when there is none (or a file is where a
// directory on the way should be).
Result<TreeEntryPtr> EntryAt(const git_tree* tree, const std::string& path,
                             const std::string& what) {
  git_tree_entry* e = nullptr;
  int rc = git_tree_entry_bypath(&e, tree, path.c_str());
  if (rc == GIT_ENOTFOUND) return TreeEntryPtr();
  if (rc != 0) return GitError(what);
  return TreeEntryPtr(e);
}

Result<git_oid> CommitId(const std::string& commit, const std::string& what) {
  git_oid id;
  if (!IsFullSha(commit) || git_oid_fromstr(&id, commit.c_str()) != 0) {
    return Error::Invalid(what + ": " + Quote(commit) + " is not a 40-hex commit name");
  }
  return id;
}

}  // namespace

Result<std::optional<std::string>> ReadFileAt(const std::string& repo_path,
                                              const std::string& commit, const std::string& path) {
  InitLibgit2();
  const std::string what = "reading " + Quote(path) + " at " + Quote(commit);
  if (!IsTreePath(path)) return Error::Invalid(what + ": not a relative path in the repository");
  KILN_ASSIGN_OR_RETURN(RepoPtr repo, OpenBare(repo_path));
  KILN_ASSIGN_OR_RETURN(TreePtr tree, CommitTree(repo.get(), commit));
  KILN_ASSIGN_OR_RETURN(TreeEntryPtr entry, EntryAt(tree.get(), path, what));
  if (!entry) return std::optional<std::string>();
  switch (git_tree_entry_filemode(entry.get())) {
    case GIT_FILEMODE_BLOB:
    case GIT_FILEMODE_BLOB_EXECUTABLE:
      break;
    case GIT_FILEMODE_LINK:
      return Error::Invalid(what + ": it is a symlink, not a regular file");
    case GIT_FILEMODE_TREE:
      return Error::Invalid(what + ": it is a directory, not a regular file");
    case GIT_FILEMODE_COMMIT:
      return Error::Invalid(what + ": it is a submodule, not a regular file");
    default:
      return Error(Error::Code::kCorruption, what + ": unknown entry mode");
  }
  git_blob* b = nullptr;
  if (git_blob_lookup(&b, repo.get(), git_tree_entry_id(entry.get())) != 0) return GitError(what);
  BlobPtr blob(b);
  return std::optional<std::string>(std::in_place, static_cast<const char*>(git_blob_rawcontent(b)),
                                    static_cast<size_t>(git_blob_rawsize(b)));
}

Result<std::vector<std::string>> ListDirAt(const std::string& repo_path, const std::string& commit,
                                           const std::string& dir) {
  InitLibgit2();
  const std::string what = "listing " + Quote(dir) + " at " + Quote(commit);
  std::string path = dir;
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path == ".") path.clear();
  if (!path.empty() && !IsTreePath(path)) {
    return Error::Invalid(what + ": not a relative path in the repository");
  }
  KILN_ASSIGN_OR_RETURN(RepoPtr repo, OpenBare(repo_path));
  KILN_ASSIGN_OR_RETURN(TreePtr root, CommitTree(repo.get(), commit));
  TreePtr sub;
  const git_tree* tree = root.get();
  if (!path.empty()) {
    KILN_ASSIGN_OR_RETURN(TreeEntryPtr entry, EntryAt(root.get(), path, what));
    if (!entry || git_tree_entry_type(entry.get()) != GIT_OBJECT_TREE) {
      return std::vector<std::string>();
    }
    git_tree* t = nullptr;
    if (git_tree_lookup(&t, repo.get(), git_tree_entry_id(entry.get())) != 0) {
      return GitError(what);
    }
    sub.reset(t);
    tree = t;
  }
  std::vector<std::string> names;
  size_t count = git_tree_entrycount(tree);
  names.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    names.emplace_back(git_tree_entry_name(git_tree_entry_byindex(tree, i)));
  }
  // Trees order a directory as if its name ended in '/'; callers get plain
  // byte order.
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::string> MergeBase(const std::string& repo_path, const std::string& a,
                              const std::string& b) {
  InitLibgit2();
  const std::string what = "merge base of " + Quote(a) + " and " + Quote(b);
  KILN_ASSIGN_OR_RETURN(git_oid ida, CommitId(a, what));
  KILN_ASSIGN_OR_RETURN(git_oid idb, CommitId(b, what));
  KILN_ASSIGN_OR_RETURN(RepoPtr repo, OpenBare(repo_path));
  git_oid out;
  int rc = git_merge_base(&out, repo.get(), &ida, &idb);
  if (rc == GIT_ENOTFOUND) {
    return Error::NotFound(what + " in " + Quote(repo_path) + ": " + LastGitMessage());
  }
  if (rc != 0) return GitError(what + " in " + Quote(repo_path));
  return OidHex(out);
}

}  // namespace kiln::git
