// What the controller writes to and reads from repositories beyond a run's
// workspace: a run's changes as a commit (built from the workspace as data,
// never following a link the agent planted), pushes of such commits to a
// forge, files read at a commit (companion skills, .kiln/kiln.yml, spec
// files), the patch between two commits, and the lines of a patch a review
// may comment on.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "controller/git/git.h"

namespace kiln::git {

struct Signature {
  std::string name = "kiln";
  std::string email = "kiln@localhost";
  int64_t time_s = 0;  // seconds since the epoch; 0: now
};

// Commits files (the changes Collect found in workspace) on top of parent
// (40 hex) in the repository at repo_path (a run's mirror) and points
// keep_ref ("refs/kiln/runs/<id>"; anything outside refs/kiln/ is refused) at
// the new commit, so that it survives until pushed: mirror fetches never
// prune or overwrite refs/kiln/. Returns the new commit's 40-hex sha.
//
// The tree is parent's tree with only the listed paths changed. Of each
// FileChange, path, status ('D': removed; a path parent lacks is ignored),
// new_mode (0: refused) and old_path (removed when set) are used; content
// and mode are read from workspace now, never following a link: every
// directory on the way is opened O_NOFOLLOW (a path whose directory is a
// symlink is an error naming it), a symlink is stored as a link (0120000)
// holding its target text, a regular file as 0100755 when its owner may
// execute it, else 0100644. Sockets, FIFOs, devices and directories are
// errors naming the path, as are paths no tree may hold ("..", "/x", ".git"
// components) and a path listed twice; all paths are checked before anything
// is read. An empty files, or changes that leave parent's tree as it was,
// are errors (nothing to commit). The message is cleaned up as
// `git commit -m` does (no trailing spaces or blank lines, one final
// newline); an empty one is an error. author is also the committer; its
// time_s 0 means now (UTC offset of the host's zone).
//
// Safe to call while Cache::Resolve fetches the same mirror; objects written
// before an error stay in the mirror, unreferenced.
Result<std::string> CommitChanges(const std::string& repo_path, const std::string& parent,
                                  const std::string& workspace,
                                  const std::vector<FileChange>& files, const std::string& message,
                                  const Signature& author, const std::string& keep_ref);

struct PushOptions {
  bool force = false;  // allow a non-fast-forward update of the branch
  std::string token;   // https: sent as HTTP basic auth x-access-token:<token>
};

// Pushes commit (40 hex, present in repo_path) to refs/heads/<branch> at url
// (a path to a bare repository, or a URL libgit2 can push to), from a
// temporary ref refs/kiln/push/<random> of repo_path removed afterwards.
// Other branches of url are never touched. Without force, a non-fast-forward
// update is refused before anything is sent ("...: rejected, not a
// fast-forward: <libgit2>"); with force, url's current branch tip is fetched
// into repo_path first (libgit2 will not replace a commit it does not have).
// The remote's own refusal (a hook, a protected branch) is "...: rejected:
// <its reason>". Every error starts "pushing 'SHA' to branch 'B' of 'URL'".
// An invalid branch name (git's rules; not "HEAD", not starting with '-') is
// kInvalidArgument, an unknown commit kNotFound, the rest kIO. token is sent
// only to https URLs, only to the URL's own host, and only once.
Status Push(const std::string& repo_path, const std::string& commit, const std::string& url,
            const std::string& branch, const PushOptions& options);

// A developer's copy of a run's work (`kiln runs handoff`).
struct HandoffSpec {
  std::string mirror;      // the run's mirror (Cache::Resolve), holding base
  std::string base;        // the run's commit, 40 hex
  std::string change_ref;  // a ref of the mirror holding the run's own commit ("" or absent: none)
  std::string patch;       // the run's diff, applied to base when there is no such commit
  // What the patch holds no content for (binary or too large files, a cut
  // patch): without the run's commit, an error naming them.
  std::vector<std::string> unpatchable;
  std::string origin;   // the repository's URL, set as the copy's `origin`
  std::string branch;   // created at the result and checked out
  std::string message;  // of the commit made from patch
  Signature author;
};

// A new repository at dir (absent, or an empty directory) with origin set,
// the run's commit and its change fetched from the mirror (through a
// temporary ref refs/kiln/handoff/..., removed after), and branch at
// change_ref's commit, or at a commit of patch applied to base (git apply's
// rules: a patch that does not apply is an error naming the path). The
// branch is checked out. Returns the branch's commit.
Result<std::string> Handoff(const std::string& dir, const HandoffSpec& spec);

// The bytes of the regular file path (relative, '/'-separated) in the tree
// of commit (40 hex), read whole into memory; nullopt when the tree has no
// such path (or a file stands where a directory on the way should). A
// directory, a link or a submodule there is an error.
Result<std::optional<std::string>> ReadFileAt(const std::string& repo_path,
                                              const std::string& commit, const std::string& path);

// The names of the entries of directory dir ("" or "." for the root; a
// trailing '/' is fine) in commit's tree, sorted byte by byte; empty when
// there is no such directory (or dir is a file).
Result<std::vector<std::string>> ListDirAt(const std::string& repo_path, const std::string& commit,
                                           const std::string& dir);

// The unified patch from commit base to commit head in repo_path, as
// `git diff base head` prints it with git's defaults: a/ b/ prefixes, 3
// lines of context, renames detected with git's similarity measure (50%,
// at most 1000 candidates), "Binary files ... differ", type changes as a
// deletion then an addition. Object names are abbreviated to 7 hex digits
// (git uses more in repositories of more than about 16,000 objects).
Result<std::string> DiffCommits(const std::string& repo_path, const std::string& base,
                                const std::string& head);

// The best common ancestor of commits a and b (40 hex); kNotFound when their
// histories are unrelated.
Result<std::string> MergeBase(const std::string& repo_path, const std::string& a,
                              const std::string& b);

// The lines of a unified patch that a review comment may anchor to, per path
// (the new path; a deleted file under its old path): RIGHT, the new side's
// line numbers of added and context lines inside hunks; LEFT, the old side's
// line numbers of deleted and context lines. hunks says which lines share a
// hunk: a comment on a range of lines must lie inside one (GitHub refuses a
// range across hunks).
//
// The patch is untrusted: any bytes are accepted and nothing crashes. Paths
// come from the ---/+++ lines (git's C quoting undone, a/ b/ prefixes
// dropped), or from "diff --git" when those are missing and it is
// unambiguous. A hunk header that does not parse (or has numbers above
// 2^40) is skipped with its lines; a hunk shorter than its header says ends
// at the first line that cannot belong to it. Only lines actually present
// are reported, so the result never outgrows the patch.
//
// One hunk's lines on each side, first to last (0 and 0 when it shows none
// of that side): within a hunk the lines of a side are consecutive.
struct HunkSpan {
  int64_t left_first = 0, left_last = 0;
  int64_t right_first = 0, right_last = 0;
};
struct CommentableLines {
  std::map<std::string, std::set<int64_t>> right;
  std::map<std::string, std::set<int64_t>> left;
  // Per path (the keys of right and left), its hunks in the patch's order.
  std::map<std::string, std::vector<HunkSpan>> hunks;
};
CommentableLines ParseHunks(std::string_view patch);

// Why a review comment cannot anchor in lines: on path, from start_line on
// start_side (0: a comment on line alone) to line on side (sides are "LEFT",
// anything else is RIGHT). "" when it can: both ends are lines of path's
// diff and, for a range, one hunk holds both. Otherwise a reason for a
// person: "the line is not in the diff", "the range spans more than one
// hunk of the diff; ...". Which end comes first is not checked here
// (forge::validate::CommentRange does).
std::string WhyNotAnchored(const CommentableLines& lines, const std::string& path,
                           int64_t start_line, std::string_view start_side, int64_t line,
                           std::string_view side);

}  // namespace kiln::git
