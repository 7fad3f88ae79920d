// Repositories for runs, through libgit2: a bare mirror per repository,
// fetched on demand under a per-repository lock; the tree of a commit checked
// out once into a cache; a per-run copy-on-write workspace (an overlay whose
// lower layer is that cache); and the result of a run as data, a diff of the
// workspace against the commit that never follows a link the agent planted.
//
// Layout under the cache root (docs/workspace.md):
//   mirrors/<key>.git        bare mirror; <key> = hex SHA-256 of the URL, first 24 chars
//   mirrors/<key>.lock       flock(2) lock of that mirror
//   trees/<commit>-<uid>/    the commit's tree plus a .git (detached HEAD at the
//                            commit, an index, its own objects), owned by uid:gid
//   trees/<commit>-<uid>.lock
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"

namespace kiln::git {

struct Resolved {
  std::string url;          // as given
  std::string mirror_path;  // the bare mirror
  std::string commit;       // 40 hex
  bool fetched = false;     // this call fetched from the remote
};

// The token to fetch an https URL with ("" for none); kept in the
// controller, sent as HTTP basic auth to that URL's origin only. renew is
// true when the origin refused the token last given for url: the source
// forgets it and returns a fresh one (an installation token revoked early).
using TokenSource = std::function<Result<std::string>(const std::string& url, bool renew)>;

// Runs step, a fetch or push, with the token token_for(false) gives; when
// the remote refuses that token, runs step once more with token_for(true),
// a renewed one.
Status WithToken(const std::function<Result<std::string>(bool renew)>& token_for,
                 const std::function<Status(const std::string& token)>& step);

// Replaces the CAs libgit2 trusts for https remotes with the PEM bundle at
// path (a GitHub Enterprise server with a private CA). Process-wide.
Status SetCaFile(const std::string& path);

class Cache {
 public:
  explicit Cache(std::string root);
  const std::string& root() const { return root_; }

  // Where https fetches get their token from. Set before the first Resolve;
  // not thread-safe against concurrent Resolves.
  void set_tokens(TokenSource tokens) { tokens_ = std::move(tokens); }

  // Makes sure a bare mirror of url (a URL libgit2 can fetch, or a local
  // path) holds rev (a sha, a branch, a tag): clones on first use, fetches
  // when rev is not found locally (a full sha already present needs no
  // fetch), and resolves rev to a commit. rev is a full or abbreviated sha,
  // a branch, a tag (peeled to its commit) or "HEAD" (the origin's default
  // branch); anything git_revparse_single takes works. A sha found in the
  // mirror is used without network; a name (branch, tag, HEAD) moves, so it
  // is always fetched first and names the origin's current commit. Errors:
  //   "repository 'URL' is unreachable: <libgit2 message>"   (Code::kIO)
  //   "revision 'REV' not found in 'URL'"                    (Code::kNotFound)
  // Thread-safe and process-safe: callers of one URL serialise on the
  // mirror's lock, different URLs proceed in parallel.
  Result<Resolved> Resolve(const std::string& url, const std::string& rev);

  // The cached checkout of the commit, owned by uid:gid, created on first use
  // (under its lock; concurrent callers wait and share it). Returns its path.
  // Blobs are written as stored (no CRLF or ident filters). The tree is
  // read-only by convention: runs see it through MountWorkspace's overlay.
  // Its shared pack files stay root-owned, mode 0444.
  Result<std::string> Tree(const Resolved& repo, uid_t uid, gid_t gid);

 private:
  std::string root_;
  TokenSource tokens_;
};

// A per-run workspace: an overlay mounted at merged with the cached tree as
// its lower layer and run_dir/upper for the run's changes. Copy-on-write, so
// mounting costs the same whatever the repository's size.
struct Workspace {
  std::string merged;  // run_dir/workspace
  std::string upper;   // run_dir/upper
  std::string work;    // run_dir/work
};

// Creates run_dir/{upper,work,workspace} and mounts the overlay (root only).
// The upper root is owned by uid:gid, mode 0755, like the tree.
Result<Workspace> MountWorkspace(const std::string& tree, const std::string& run_dir, uid_t uid,
                                 gid_t gid);
// Unmounts (lazily: call it once nothing uses the workspace) and removes
// run_dir's upper, work and workspace.
// Idempotent: missing pieces are not errors.
Status RemoveWorkspace(const std::string& run_dir);

struct DiffOptions {
  uint64_t max_file_bytes = 1 << 20;    // a larger file is listed, its content left out
  uint64_t max_patch_bytes = 16 << 20;  // the patch stops here (truncated = true)
  uint64_t max_files = 10'000;          // files listed; the rest counted only
  // The upper directory of the overlay mounted at the workspace (see
  // Workspace): only the paths it names are compared. "" reads every file.
  std::string upper;
};

struct FileChange {
  std::string path;
  std::string old_path;   // renames: the old path (not detected yet: a rename is a 'D' and an 'A')
  char status = 'M';      // 'A' added, 'M' modified, 'D' deleted, 'T' type changed
  uint32_t old_mode = 0;  // git modes: 0100644, 0100755, 0120000 (symlink), 0 when absent
  uint32_t new_mode = 0;
  bool binary = false;      // a NUL in the first 8000 bytes of either side's content
  bool too_large = false;   // content left out (max_file_bytes); "Binary files differ" in the patch
  std::string link_target;  // new symlinks: the target text, never followed
  uint64_t size = 0;        // new size in bytes (0 for deletions)
};

struct Diff {
  std::string patch;  // unified diff, `git diff --binary`-free: binaries say "Binary files differ"
  std::vector<FileChange> files;
  uint64_t files_total = 0;  // >= files.size() when max_files was hit
  // The patch does not hold every change: max_files or max_patch_bytes was
  // hit. It then holds whole sections of the first files only.
  bool truncated = false;
  std::string sha256;  // hex SHA-256 of patch
};

// The workspace (a directory, read after the sandbox is gone) against the
// commit's tree read from the mirror: tracked changes and untracked files
// that no .gitignore covers. The workspace's own .git is never read (the
// agent may have rewritten it). Symlinks are recorded as links; regular files
// are opened O_NOFOLLOW; hardlinks are regular files; sockets, FIFOs and
// devices are listed with mode 0 and no content. With options.upper, the
// walk follows the overlay's upper directory (git/scan.h) and takes time in
// proportion to what changed; the result is the same.
Result<Diff> Collect(const std::string& mirror_path, const std::string& commit,
                     const std::string& workspace, const DiffOptions& options = {});

}  // namespace kiln::git
