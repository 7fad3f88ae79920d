// The local forge's git work on its bare repositories, through libgit2:
// creating one from a directory or another repository, reading branches,
// and merging a pull request (fast-forward, or a merge commit computed in
// memory). Pushes, diffs and merge bases are controller/git/write.h's.
//
// Errors name the repository path and the branch or commit. Every function
// opens the repository itself, so they may run on any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace kiln::git::bare {

struct Identity {
  std::string name;
  std::string email;
};

// Whether name is a valid branch name (refs/heads/<name> is a valid ref).
bool ValidBranch(const std::string& name);

// Creates an empty bare repository at path (its parents too) whose HEAD
// names refs/heads/<branch>. An existing repository at path is an error.
Status Init(const std::string& path, const std::string& branch);

// Whether dir is a git repository itself (a work tree with .git, or a bare
// repository); its parents are not searched.
bool IsRepository(const std::string& dir);

// Commits the files under dir as the first commit of branch in the bare
// repository at path. Regular files keep their executable bit, symlinks are
// stored as links (never followed), empty directories and any ".git" entry
// are left out; other file types (sockets, FIFOs, devices) are an error
// naming the path. Returns the commit's sha.
Result<std::string> ImportFiles(const std::string& path, const std::string& dir,
                                const std::string& branch, const Identity& who,
                                const std::string& message);

struct Imported {
  std::vector<std::string> branches;  // sorted
  std::string head_branch;            // the source's current branch; "" when detached
};

// Fetches every branch and tag of the git repository at source into the
// bare repository at path (committed history only: a work tree's uncommitted
// changes are not part of it).
Result<Imported> ImportRepository(const std::string& path, const std::string& source);

// Points HEAD of the bare repository at path to refs/heads/<branch>.
Status SetHead(const std::string& path, const std::string& branch);

// The commit branch points to, or nullopt when there is no such branch.
Result<std::optional<std::string>> BranchSha(const std::string& path, const std::string& branch);

// Whether sha names a commit in the repository.
Result<bool> HasCommit(const std::string& path, const std::string& sha);

// Every branch of the repository and its commit (40 hex).
Result<std::map<std::string, std::string>> Branches(const std::string& path);

// Whether commit `ancestor` is reachable from `descendant` (a commit is its
// own ancestor).
Result<bool> IsAncestor(const std::string& path, const std::string& ancestor,
                        const std::string& descendant);

// How many commits head has that base lacks (`git rev-list --count
// base..head`); both 40 hex.
Result<int64_t> CountCommits(const std::string& path, const std::string& base,
                             const std::string& head);

// Whether commit head merges into commit base without a conflict (a
// fast-forward does). Moves no ref and writes no commit.
Result<bool> MergesCleanly(const std::string& path, const std::string& base,
                           const std::string& head);

// The object id (40 hex) of the entry at file ('/'-separated) in the tree of
// commit: a blob, a link, a submodule's commit; nullopt when there is none.
Result<std::optional<std::string>> EntrySha(const std::string& path, const std::string& commit,
                                            const std::string& file);

struct MergePlan {
  std::string base_sha;    // the base branch when planned
  std::string head_sha;    // the head branch when planned
  std::string merge_base;  // their best common ancestor
  std::string result_sha;  // what the base branch becomes
  bool fast_forward = false;
  bool up_to_date = false;  // head is already in base: nothing moves
};

// How a merge lands on the base (GitHub's merge_method, and kiln's own
// default).
enum class MergeStyle {
  kFastForwardOrMerge,  // a fast-forward when base is an ancestor of head, else a merge commit
  kMergeCommit,         // a merge commit (parents base, head) always
  kSquash,              // one commit on base (parent base alone) with the merged tree
  kRebase,              // head's commits replayed on base, authors and messages kept
};

// Works out the merge of branch head into branch base without moving any
// ref, as style says; commits are written to the object database only (who
// their committer, and the author of a merge or squash commit; message
// theirs; a rebase keeps each commit's). Conflicts (a rebase: of any
// replayed commit) are an error (kInvalidArgument) naming the conflicting
// paths, and so is a merge commit among the commits a rebase replays;
// nothing is changed then.
Result<MergePlan> PlanMerge(const std::string& path, const std::string& base,
                            const std::string& head, const std::string& message,
                            const Identity& who,
                            MergeStyle style = MergeStyle::kFastForwardOrMerge);

// Moves refs/heads/<branch> from expected_old to new_sha, atomically: when
// the branch no longer points to expected_old (someone pushed meanwhile)
// nothing changes and the error says so.
Status MoveBranch(const std::string& path, const std::string& branch, const std::string& new_sha,
                  const std::string& expected_old, const std::string& log_message);

// Deletes refs/heads/<branch>; kNotFound when there is none.
Status DeleteBranch(const std::string& path, const std::string& branch);

}  // namespace kiln::git::bare
