// Collect: the result of a run as data. The walk (scan.cc) finds what
// changed; this file loads each side within the size caps and writes the
// patch, stopping at max_files and max_patch_bytes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/digest.h"
#include "controller/git/files.h"
#include "controller/git/git.h"
#include "controller/git/libgit.h"
#include "controller/git/patch.h"
#include "controller/git/scan.h"

namespace kiln::git {
namespace {

// The commit's side: the blob, unless it is larger than the cap.
Result<Content> LoadOld(git_repository* repo, const Change& c, const DiffOptions& options) {
  Content out;
  if (c.old_mode == 0) return out;
  git_odb* o = nullptr;
  if (git_repository_odb(&o, repo) != 0) return GitError("object database");
  OdbPtr odb(o);
  size_t size = 0;
  git_object_t type;
  if (git_odb_read_header(&size, &type, odb.get(), &c.old_id) != 0) {
    return GitError("blob of " + Quote(c.path));
  }
  if (size > options.max_file_bytes) {
    out.too_large = true;
    return out;
  }
  git_blob* b = nullptr;
  if (git_blob_lookup(&b, repo, &c.old_id) != 0) return GitError("blob of " + Quote(c.path));
  BlobPtr blob(b);
  out.bytes.assign(static_cast<const char*>(git_blob_rawcontent(b)),
                   static_cast<size_t>(git_blob_rawsize(b)));
  out.binary = LooksBinary(out.bytes);
  return out;
}

// The workspace's side: a link's target, or a regular file read again
// without following anything, unless it is larger than the cap.
Result<Content> LoadNew(int root_fd, const Change& c, const DiffOptions& options) {
  Content out;
  if (c.new_mode == 0) return out;
  if (c.new_mode == kModeLink) {
    out.bytes = c.link_target;
    return out;
  }
  if (c.new_size > options.max_file_bytes) {
    out.too_large = true;
    return out;
  }
  KILN_ASSIGN_OR_RETURN(UniqueFd fd,
                        OpenBeneath(root_fd, c.path, O_RDONLY | O_NONBLOCK | O_NOCTTY));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::Sys("fstat(" + Quote(c.path) + ")", errno);
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != c.new_size) {
    return Error(Error::Code::kIO, Quote(c.path) + " changed while the workspace was read");
  }
  out.bytes.resize(static_cast<size_t>(c.new_size));
  size_t done = 0;
  while (done < out.bytes.size()) {
    ssize_t n = ::pread(fd.get(), out.bytes.data() + done, out.bytes.size() - done,
                        static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Sys("read(" + Quote(c.path) + ")", errno);
    if (n == 0) return Error(Error::Code::kIO, Quote(c.path) + " shrank while it was read");
    done += static_cast<size_t>(n);
  }
  out.binary = LooksBinary(out.bytes);
  return out;
}

}  // namespace

Result<Diff> Collect(const std::string& mirror_path, const std::string& commit,
                     const std::string& workspace, const DiffOptions& options) {
  InitLibgit2();
  // The mirror, opened on its own: the workspace's .git is the agent's.
  KILN_ASSIGN_OR_RETURN(RepoPtr repo, OpenBare(mirror_path));
  KILN_ASSIGN_OR_RETURN(TreePtr tree, CommitTree(repo.get(), commit));
  UniqueFd root(::open(workspace.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return Error::Sys("open(" + Quote(workspace) + ")", errno);
  UniqueFd upper;
  if (!options.upper.empty()) {
    upper = UniqueFd(::open(options.upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!upper.valid()) return Error::Sys("open(" + Quote(options.upper) + ")", errno);
  }
  KILN_ASSIGN_OR_RETURN(std::vector<Change> changes,
                        Scan(repo.get(), tree.get(), root.get(), upper.get()));
  // git's order: by path, byte by byte.
  std::sort(changes.begin(), changes.end(),
            [](const Change& x, const Change& y) { return x.path < y.path; });

  Diff diff;
  diff.files_total = changes.size();
  size_t listed = static_cast<size_t>(std::min<uint64_t>(changes.size(), options.max_files));
  diff.truncated = listed < changes.size();
  bool patch_full = false;
  for (size_t i = 0; i < listed; ++i) {
    const Change& c = changes[i];
    KILN_ASSIGN_OR_RETURN(Content old_side, LoadOld(repo.get(), c, options));
    KILN_ASSIGN_OR_RETURN(Content new_side, LoadNew(root.get(), c, options));
    FileChange f;
    f.path = c.path;
    f.status = c.status;
    f.old_mode = c.old_mode;
    f.new_mode = c.new_mode;
    f.binary = old_side.binary || new_side.binary;
    f.too_large = old_side.too_large || new_side.too_large;
    f.link_target = c.link_target;
    f.size = c.new_size;
    diff.files.push_back(std::move(f));
    if (patch_full) continue;
    std::string section;
    KILN_TRY(AppendPatch(c, old_side, new_side, &section));
    // Whole sections only, in order: the patch holds the first files listed
    // and applies cleanly.
    if (diff.patch.size() + section.size() > options.max_patch_bytes) {
      patch_full = true;
      diff.truncated = true;
      continue;
    }
    diff.patch += section;
  }
  diff.sha256 = Sha256Hex(diff.patch);
  return diff;
}

}  // namespace kiln::git
