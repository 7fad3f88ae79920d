#include "controller/git/bare.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>

#include "controller/git/libgit.h"

namespace kiln::git::bare {
namespace {

using git::GitError;
using git::GitFree;

using ReferencePtr = std::unique_ptr<git_reference, GitFree<git_reference_free>>;
using SignaturePtr = std::unique_ptr<git_signature, GitFree<git_signature_free>>;
using TreeBuilderPtr = std::unique_ptr<git_treebuilder, GitFree<git_treebuilder_free>>;
using IndexPtr = std::unique_ptr<git_index, GitFree<git_index_free>>;
using ConflictIterPtr =
    std::unique_ptr<git_index_conflict_iterator, GitFree<git_index_conflict_iterator_free>>;

Result<git::RepoPtr> OpenRepo(const std::string& path) {
  git::InitLibgit2();
  return git::OpenBare(path);
}

Result<git_oid> ParseOid(const std::string& path, const std::string& sha) {
  git_oid oid;
  if (!git::IsFullSha(sha) || git_oid_fromstr(&oid, sha.c_str()) != 0) {
    return Error::Invalid("repository " + Quote(path) + ": " + Quote(sha) +
                          " is not a 40-hex commit sha");
  }
  return oid;
}

Result<git::CommitPtr> LookupCommit(git_repository* repo, const std::string& path,
                                    const git_oid& oid) {
  git_commit* c = nullptr;
  if (git_commit_lookup(&c, repo, &oid) != 0) {
    return Error(Error::Code::kNotFound, "repository " + Quote(path) + ": commit " +
                                             Quote(git::OidHex(oid)) + ": " +
                                             git::LastGitMessage());
  }
  return git::CommitPtr(c);
}

Result<std::optional<git_oid>> BranchOid(git_repository* repo, const std::string& path,
                                         const std::string& branch) {
  git_oid oid;
  int rc = git_reference_name_to_id(&oid, repo, ("refs/heads/" + branch).c_str());
  if (rc == GIT_ENOTFOUND) return std::optional<git_oid>();
  if (rc != 0) return GitError("repository " + Quote(path) + ": reading branch " + Quote(branch));
  return std::optional<git_oid>(oid);
}

Result<SignaturePtr> NewSignature(const Identity& who) {
  git_signature* sig = nullptr;
  if (git_signature_now(&sig, who.name.c_str(), who.email.c_str()) != 0) {
    return GitError("signature for " + Quote(who.name));
  }
  return SignaturePtr(sig);
}

// Writes the tree of the directory dir (absolute) and returns it, or nullopt
// when it would be empty (git stores no empty directories).
Result<std::optional<git_oid>> WriteTree(git_repository* repo, const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Error::Sys("opendir(" + Quote(dir) + ")", errno);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != ".." && name != ".git") names.push_back(name);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Error::Sys("readdir(" + Quote(dir) + ")", err);
  std::sort(names.begin(), names.end());

  git_treebuilder* raw = nullptr;
  if (git_treebuilder_new(&raw, repo, nullptr) != 0) return GitError("creating a tree");
  TreeBuilderPtr builder(raw);
  for (const std::string& name : names) {
    const std::string full = dir + "/" + name;
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0) return Error::Sys("lstat(" + Quote(full) + ")", errno);
    git_oid oid;
    git_filemode_t mode;
    if (S_ISDIR(st.st_mode)) {
      KILN_ASSIGN_OR_RETURN(std::optional<git_oid> sub, WriteTree(repo, full));
      if (!sub) continue;
      oid = *sub;
      mode = GIT_FILEMODE_TREE;
    } else if (S_ISREG(st.st_mode)) {
      if (git_blob_create_from_disk(&oid, repo, full.c_str()) != 0) {
        return GitError("storing " + Quote(full));
      }
      mode = (st.st_mode & 0111) != 0 ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(full.c_str(), target.data(), target.size());
      if (n < 0) return Error::Sys("readlink(" + Quote(full) + ")", errno);
      target.resize(static_cast<size_t>(n));
      if (git_blob_create_from_buffer(&oid, repo, target.data(), target.size()) != 0) {
        return GitError("storing the link " + Quote(full));
      }
      mode = GIT_FILEMODE_LINK;
    } else {
      return Error::Invalid("importing " + Quote(full) +
                            ": not a regular file, directory or symlink");
    }
    if (git_treebuilder_insert(nullptr, builder.get(), name.c_str(), &oid, mode) != 0) {
      return GitError("adding " + Quote(full) + " to its tree");
    }
  }
  if (git_treebuilder_entrycount(builder.get()) == 0) return std::optional<git_oid>();
  git_oid tree;
  if (git_treebuilder_write(&tree, builder.get()) != 0) {
    return GitError("writing the tree of " + Quote(dir));
  }
  return std::optional<git_oid>(tree);
}

// The tree of no files.
Result<git_oid> EmptyTree(git_repository* repo) {
  git_treebuilder* raw = nullptr;
  if (git_treebuilder_new(&raw, repo, nullptr) != 0) return GitError("creating a tree");
  TreeBuilderPtr builder(raw);
  git_oid tree;
  if (git_treebuilder_write(&tree, builder.get()) != 0) return GitError("writing an empty tree");
  return tree;
}

}  // namespace

bool ValidBranch(const std::string& name) {
  if (name.empty() || name == "HEAD" || name.front() == '-') return false;
  git::InitLibgit2();
  int valid = 0;
  if (git_reference_name_is_valid(&valid, ("refs/heads/" + name).c_str()) != 0) return false;
  return valid != 0;
}

Status Init(const std::string& path, const std::string& branch) {
  git::InitLibgit2();
  git_repository_init_options opts;
  git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
  opts.flags =
      GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
  opts.initial_head = branch.c_str();
  git_repository* repo = nullptr;
  if (git_repository_init_ext(&repo, path.c_str(), &opts) != 0) {
    return GitError("creating the bare repository " + Quote(path));
  }
  git_repository_free(repo);
  return Ok();
}

bool IsRepository(const std::string& dir) {
  git::InitLibgit2();
  git_repository* repo = nullptr;
  if (git_repository_open_ext(&repo, dir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) {
    return false;
  }
  git_repository_free(repo);
  return true;
}

Result<std::string> ImportFiles(const std::string& path, const std::string& dir,
                                const std::string& branch, const Identity& who,
                                const std::string& message) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  KILN_ASSIGN_OR_RETURN(std::optional<git_oid> tree_oid, WriteTree(repo.get(), dir));
  if (!tree_oid) {
    KILN_ASSIGN_OR_RETURN(tree_oid, EmptyTree(repo.get()));
  }
  git_tree* raw_tree = nullptr;
  if (git_tree_lookup(&raw_tree, repo.get(), &*tree_oid) != 0) {
    return GitError("repository " + Quote(path) + ": reading the imported tree");
  }
  git::TreePtr tree(raw_tree);
  KILN_ASSIGN_OR_RETURN(SignaturePtr sig, NewSignature(who));
  git_oid commit;
  const std::string ref = "refs/heads/" + branch;
  if (git_commit_create(&commit, repo.get(), ref.c_str(), sig.get(), sig.get(), nullptr,
                        message.c_str(), tree.get(), 0, nullptr) != 0) {
    return GitError("repository " + Quote(path) + ": committing the files of " + Quote(dir));
  }
  return git::OidHex(commit);
}

Result<Imported> ImportRepository(const std::string& path, const std::string& source) {
  git::InitLibgit2();
  git_repository* raw_src = nullptr;
  if (git_repository_open_ext(&raw_src, source.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) !=
      0) {
    return GitError("opening the repository " + Quote(source));
  }
  git::RepoPtr src(raw_src);
  Imported out;
  if (git_repository_head_detached(src.get()) != 1) {
    git_reference* head = nullptr;
    if (git_reference_lookup(&head, src.get(), "HEAD") == 0) {
      ReferencePtr owner(head);
      if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
        std::string target = git_reference_symbolic_target(head);
        if (target.rfind("refs/heads/", 0) == 0) out.head_branch = target.substr(11);
      }
    }
  }
  // The source's git directory, which the local transport reads.
  const std::string url = git_repository_path(src.get());

  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  git_remote* raw_remote = nullptr;
  if (git_remote_create_anonymous(&raw_remote, repo.get(), url.c_str()) != 0) {
    return GitError("importing " + Quote(source));
  }
  git::RemotePtr remote(raw_remote);
  char heads[] = "+refs/heads/*:refs/heads/*";
  char tags[] = "+refs/tags/*:refs/tags/*";
  char* specs[] = {heads, tags};
  git_strarray refspecs = {specs, 2};
  git_fetch_options fetch;
  git_fetch_options_init(&fetch, GIT_FETCH_OPTIONS_VERSION);
  fetch.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;  // the refspec takes them all
  if (git_remote_fetch(remote.get(), &refspecs, &fetch, "import") != 0) {
    return GitError("importing the branches of " + Quote(source) + " into " + Quote(path));
  }
  git_branch_iterator* raw_it = nullptr;
  if (git_branch_iterator_new(&raw_it, repo.get(), GIT_BRANCH_LOCAL) != 0) {
    return GitError("listing the branches of " + Quote(path));
  }
  std::unique_ptr<git_branch_iterator, GitFree<git_branch_iterator_free>> it(raw_it);
  for (;;) {
    git_reference* ref = nullptr;
    git_branch_t type;
    int rc = git_branch_next(&ref, &type, it.get());
    if (rc == GIT_ITEROVER) break;
    if (rc != 0) return GitError("listing the branches of " + Quote(path));
    ReferencePtr owner(ref);
    const char* name = nullptr;
    if (git_branch_name(&name, ref) == 0) out.branches.push_back(name);
  }
  std::sort(out.branches.begin(), out.branches.end());
  return out;
}

Status SetHead(const std::string& path, const std::string& branch) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  if (git_repository_set_head(repo.get(), ("refs/heads/" + branch).c_str()) != 0) {
    return GitError("repository " + Quote(path) + ": pointing HEAD to " + Quote(branch));
  }
  return Ok();
}

Result<std::optional<std::string>> BranchSha(const std::string& path, const std::string& branch) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  KILN_ASSIGN_OR_RETURN(std::optional<git_oid> oid, BranchOid(repo.get(), path, branch));
  if (!oid) return std::optional<std::string>();
  return std::optional<std::string>(git::OidHex(*oid));
}

Result<std::map<std::string, std::string>> Branches(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  git_branch_iterator* it = nullptr;
  if (git_branch_iterator_new(&it, repo.get(), GIT_BRANCH_LOCAL) != 0) {
    return GitError("repository " + Quote(path) + ": listing branches");
  }
  std::unique_ptr<git_branch_iterator, git::GitFree<git_branch_iterator_free>> owned(it);
  std::map<std::string, std::string> out;
  git_reference* ref = nullptr;
  git_branch_t type;
  while (git_branch_next(&ref, &type, it) == 0) {
    const char* name = nullptr;
    if (git_branch_name(&name, ref) == 0 && git_reference_target(ref) != nullptr) {
      out[name] = git::OidHex(*git_reference_target(ref));
    }
    git_reference_free(ref);
  }
  return out;
}

Result<bool> HasCommit(const std::string& path, const std::string& sha) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  KILN_ASSIGN_OR_RETURN(git_oid oid, ParseOid(path, sha));
  git_commit* c = nullptr;
  if (git_commit_lookup(&c, repo.get(), &oid) != 0) return false;
  git_commit_free(c);
  return true;
}

Result<bool> IsAncestor(const std::string& path, const std::string& ancestor,
                        const std::string& descendant) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  KILN_ASSIGN_OR_RETURN(git_oid a, ParseOid(path, ancestor));
  KILN_ASSIGN_OR_RETURN(git_oid d, ParseOid(path, descendant));
  if (git_oid_equal(&a, &d)) return true;
  int rc = git_graph_descendant_of(repo.get(), &d, &a);
  if (rc < 0) {
    return GitError("repository " + Quote(path) + ": is " + Quote(ancestor) + " an ancestor of " +
                    Quote(descendant));
  }
  return rc == 1;
}

Result<int64_t> CountCommits(const std::string& path, const std::string& base,
                             const std::string& head) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  KILN_ASSIGN_OR_RETURN(git_oid b, ParseOid(path, base));
  KILN_ASSIGN_OR_RETURN(git_oid h, ParseOid(path, head));
  size_t ahead = 0, behind = 0;
  if (git_graph_ahead_behind(&ahead, &behind, repo.get(), &h, &b) != 0) {
    return GitError("repository " + Quote(path) + ": counting the commits of " + Quote(head) +
                    " not in " + Quote(base));
  }
  return static_cast<int64_t>(ahead);
}

Result<bool> MergesCleanly(const std::string& path, const std::string& base,
                           const std::string& head) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  KILN_ASSIGN_OR_RETURN(git_oid b, ParseOid(path, base));
  KILN_ASSIGN_OR_RETURN(git_oid h, ParseOid(path, head));
  KILN_ASSIGN_OR_RETURN(git::CommitPtr ours, LookupCommit(repo.get(), path, b));
  KILN_ASSIGN_OR_RETURN(git::CommitPtr theirs, LookupCommit(repo.get(), path, h));
  git_merge_options opts;
  git_merge_options_init(&opts, GIT_MERGE_OPTIONS_VERSION);
  git_index* raw_index = nullptr;
  if (git_merge_commits(&raw_index, repo.get(), ours.get(), theirs.get(), &opts) != 0) {
    return GitError("repository " + Quote(path) + ": merging " + Quote(head) + " into " +
                    Quote(base));
  }
  IndexPtr index(raw_index);
  return git_index_has_conflicts(index.get()) == 0;
}

Result<std::optional<std::string>> EntrySha(const std::string& path, const std::string& commit,
                                            const std::string& file) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  KILN_TRY(ParseOid(path, commit));
  KILN_ASSIGN_OR_RETURN(git::TreePtr tree, git::CommitTree(repo.get(), commit));
  git_tree_entry* raw = nullptr;
  int rc = git_tree_entry_bypath(&raw, tree.get(), file.c_str());
  if (rc == GIT_ENOTFOUND) return std::optional<std::string>();
  if (rc != 0) {
    return GitError("repository " + Quote(path) + ": " + Quote(file) + " at " + Quote(commit));
  }
  std::unique_ptr<git_tree_entry, GitFree<git_tree_entry_free>> entry(raw);
  return std::optional<std::string>(git::OidHex(*git_tree_entry_id(entry.get())));
}

namespace {

using RevwalkPtr = std::unique_ptr<git_revwalk, GitFree<git_revwalk_free>>;

// The paths a merged index leaves in conflict, for the error.
std::string ConflictPaths(git_index* index) {
  std::string list;
  git_index_conflict_iterator* raw_it = nullptr;
  if (git_index_conflict_iterator_new(&raw_it, index) == 0) {
    ConflictIterPtr it(raw_it);
    const git_index_entry *ancestor, *our, *their;
    while (git_index_conflict_next(&ancestor, &our, &their, it.get()) == 0) {
      const git_index_entry* any = our ? our : their ? their : ancestor;
      if (any != nullptr) list += (list.empty() ? "" : ", ") + std::string(any->path);
    }
  }
  return list;
}

// The tree an index without conflicts makes, written to the object database.
Result<git::TreePtr> WriteIndexTree(git_repository* repo, git_index* index,
                                    const std::string& what) {
  git_oid tree_oid;
  if (git_index_write_tree_to(&tree_oid, index, repo) != 0) {
    return GitError("writing the tree of " + what);
  }
  git_tree* raw_tree = nullptr;
  if (git_tree_lookup(&raw_tree, repo, &tree_oid) != 0)
    return GitError("reading the tree of " + what);
  return git::TreePtr(raw_tree);
}

// The commits of head since base, oldest first, each replayed on the last
// (git_cherrypick_commit): their authors and messages kept, who the
// committer. Returns the last; a merge among them or a conflict is an error.
Result<git_oid> Replay(git_repository* repo, const std::string& path, const git_oid& base,
                       const git_oid& head, const std::string& what, const Identity& who) {
  git_revwalk* raw_walk = nullptr;
  if (git_revwalk_new(&raw_walk, repo) != 0) return GitError("walking the commits of " + what);
  RevwalkPtr walk(raw_walk);
  git_revwalk_sorting(walk.get(), GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
  if (git_revwalk_push(walk.get(), &head) != 0 || git_revwalk_hide(walk.get(), &base) != 0) {
    return GitError("walking the commits of " + what);
  }
  KILN_ASSIGN_OR_RETURN(SignaturePtr committer, NewSignature(who));
  git_oid onto = base;
  git_oid next;
  while (git_revwalk_next(&next, walk.get()) == 0) {
    KILN_ASSIGN_OR_RETURN(git::CommitPtr commit, LookupCommit(repo, path, next));
    if (git_commit_parentcount(commit.get()) > 1) {
      return Error::Invalid("rebasing " + what + ": commit " + git::OidHex(next).substr(0, 12) +
                            " is a merge; only a linear history is rebased; nothing was changed");
    }
    KILN_ASSIGN_OR_RETURN(git::CommitPtr parent, LookupCommit(repo, path, onto));
    git_merge_options opts;
    git_merge_options_init(&opts, GIT_MERGE_OPTIONS_VERSION);
    git_index* raw_index = nullptr;
    if (git_cherrypick_commit(&raw_index, repo, commit.get(), parent.get(), 0, &opts) != 0) {
      return GitError("rebasing " + what + ": replaying " + git::OidHex(next).substr(0, 12));
    }
    IndexPtr index(raw_index);
    if (git_index_has_conflicts(index.get())) {
      return Error::Invalid("rebasing " + what + ": commit " + git::OidHex(next).substr(0, 12) +
                            " conflicts in: " + ConflictPaths(index.get()) +
                            "; nothing was changed");
    }
    KILN_ASSIGN_OR_RETURN(git::TreePtr tree, WriteIndexTree(repo, index.get(), what));
    const git_commit* parents[] = {parent.get()};
    if (git_commit_create(&onto, repo, nullptr, git_commit_author(commit.get()), committer.get(),
                          nullptr, git_commit_message(commit.get()), tree.get(), 1, parents) != 0) {
      return GitError("rebasing " + what + ": writing the replayed commit");
    }
  }
  return onto;
}

}  // namespace

Result<MergePlan> PlanMerge(const std::string& path, const std::string& base,
                            const std::string& head, const std::string& message,
                            const Identity& who, MergeStyle style) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  KILN_ASSIGN_OR_RETURN(std::optional<git_oid> base_oid, BranchOid(repo.get(), path, base));
  if (!base_oid) return Error::NotFound("base branch " + Quote(base) + " does not exist");
  KILN_ASSIGN_OR_RETURN(std::optional<git_oid> head_oid, BranchOid(repo.get(), path, head));
  if (!head_oid) return Error::NotFound("head branch " + Quote(head) + " does not exist");
  MergePlan plan;
  plan.base_sha = git::OidHex(*base_oid);
  plan.head_sha = git::OidHex(*head_oid);
  const std::string what = Quote(head) + " into " + Quote(base);

  git_oid mb;
  int rc = git_merge_base(&mb, repo.get(), &*base_oid, &*head_oid);
  if (rc == GIT_ENOTFOUND) {
    return Error::Invalid("branches " + Quote(base) + " and " + Quote(head) +
                          " have no common history");
  }
  if (rc != 0) return GitError("merge base of " + Quote(base) + " and " + Quote(head));
  plan.merge_base = git::OidHex(mb);
  if (git_oid_equal(&mb, &*head_oid)) {
    plan.up_to_date = true;
    plan.result_sha = plan.base_sha;
    return plan;
  }
  const bool can_fast_forward = git_oid_equal(&mb, &*base_oid);
  if (can_fast_forward && style == MergeStyle::kFastForwardOrMerge) {
    plan.fast_forward = true;
    plan.result_sha = plan.head_sha;
    return plan;
  }
  if (style == MergeStyle::kRebase) {
    KILN_ASSIGN_OR_RETURN(git_oid last, Replay(repo.get(), path, *base_oid, *head_oid, what, who));
    plan.result_sha = git::OidHex(last);
    return plan;
  }

  KILN_ASSIGN_OR_RETURN(git::CommitPtr ours, LookupCommit(repo.get(), path, *base_oid));
  KILN_ASSIGN_OR_RETURN(git::CommitPtr theirs, LookupCommit(repo.get(), path, *head_oid));
  // The tree the base gets: the head's when the base has not moved, else
  // the merge of both.
  git::TreePtr tree;
  if (can_fast_forward) {
    git_tree* raw_tree = nullptr;
    if (git_commit_tree(&raw_tree, theirs.get()) != 0)
      return GitError("reading the tree of " + what);
    tree.reset(raw_tree);
  } else {
    git_merge_options opts;
    git_merge_options_init(&opts, GIT_MERGE_OPTIONS_VERSION);
    git_index* raw_index = nullptr;
    if (git_merge_commits(&raw_index, repo.get(), ours.get(), theirs.get(), &opts) != 0) {
      return GitError("merging " + what);
    }
    IndexPtr index(raw_index);
    if (git_index_has_conflicts(index.get())) {
      return Error::Invalid("merging " + what + " conflicts in: " + ConflictPaths(index.get()) +
                            "; nothing was changed");
    }
    KILN_ASSIGN_OR_RETURN(tree, WriteIndexTree(repo.get(), index.get(), "the merge of " + what));
  }
  KILN_ASSIGN_OR_RETURN(SignaturePtr sig, NewSignature(who));
  // A merge commit has both as parents; a squash, the base alone.
  const git_commit* parents[] = {ours.get(), theirs.get()};
  const size_t count = style == MergeStyle::kSquash ? 1 : 2;
  git_oid merged;
  if (git_commit_create(&merged, repo.get(), nullptr, sig.get(), sig.get(), nullptr,
                        message.c_str(), tree.get(), count, parents) != 0) {
    return GitError("creating the commit merging " + what);
  }
  plan.result_sha = git::OidHex(merged);
  return plan;
}

Status MoveBranch(const std::string& path, const std::string& branch, const std::string& new_sha,
                  const std::string& expected_old, const std::string& log_message) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  KILN_ASSIGN_OR_RETURN(git_oid target, ParseOid(path, new_sha));
  KILN_ASSIGN_OR_RETURN(git_oid old, ParseOid(path, expected_old));
  git_reference* ref = nullptr;
  int rc = git_reference_create_matching(&ref, repo.get(), ("refs/heads/" + branch).c_str(),
                                         &target, /*force=*/1, &old, log_message.c_str());
  if (rc == GIT_EMODIFIED) {
    return Error::Invalid("branch " + Quote(branch) + " moved from " + expected_old.substr(0, 12) +
                          " while merging; nothing was changed, try again");
  }
  if (rc != 0) return GitError("repository " + Quote(path) + ": moving branch " + Quote(branch));
  git_reference_free(ref);
  return Ok();
}

Status DeleteBranch(const std::string& path, const std::string& branch) {
  KILN_ASSIGN_OR_RETURN(git::RepoPtr repo, OpenRepo(path));
  git_reference* ref = nullptr;
  int rc = git_reference_lookup(&ref, repo.get(), ("refs/heads/" + branch).c_str());
  if (rc == GIT_ENOTFOUND) return Error::NotFound("there is no branch " + Quote(branch));
  if (rc != 0) return GitError("repository " + Quote(path) + ": branch " + Quote(branch));
  rc = git_reference_delete(ref);
  git_reference_free(ref);
  if (rc != 0) return GitError("repository " + Quote(path) + ": deleting branch " + Quote(branch));
  return Ok();
}

}  // namespace kiln::git::bare
