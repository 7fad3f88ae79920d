// DiffCommits: the patch between two commits as `git diff base head` prints
// it. libgit2 writes nearly the same text; three differences are made up for
// here, so that the patch is byte for byte git's:
//   - rename similarity: git's measure (diffcore-delta.c: bytes in common,
//     counted over spans that end at a newline or after 64 bytes) instead of
//     libgit2's sampled hashes, so the same pairs are renames and the
//     "similarity index" is the same number;
//   - git ends a ---/+++ label holding a space with a tab;
//   - a type change (file <-> symlink) is a deletion then an addition.
#include <algorithm>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "controller/git/libgit.h"
#include "controller/git/write.h"

namespace kiln::git {
namespace {

using DiffPtr = std::unique_ptr<git_diff, GitFree<git_diff_free>>;
using PatchPtr = std::unique_ptr<git_patch, GitFree<git_patch_free>>;

// git's constants: a score out of kMaxScore, spans hashed modulo kHashBase,
// binary when a NUL is in the first kFirstFewBytes.
constexpr uint64_t kMaxScore = 60000;
constexpr uint32_t kHashBase = 107927;
constexpr size_t kFirstFewBytes = 8000;

// A blob as git's rename detection sees it: its size and, per span hash,
// how many bytes its spans with that hash hold.
struct SpanSignature {
  uint64_t size = 0;
  std::vector<std::pair<uint32_t, uint64_t>> spans;  // sorted by hash
};

// diffcore-delta.c's hash_chars.
SpanSignature Sign(const char* buf, size_t size) {
  bool text = std::memchr(buf, 0, std::min(size, kFirstFewBytes)) == nullptr;
  std::unordered_map<uint32_t, uint64_t> counts;
  uint32_t accum1 = 0, accum2 = 0, n = 0;
  for (size_t i = 0; i < size; ++i) {
    uint32_t c = static_cast<unsigned char>(buf[i]);
    uint32_t old1 = accum1;
    // A CR before an LF is not counted in text.
    if (text && c == '\r' && i + 1 < size && buf[i + 1] == '\n') continue;
    accum1 = (accum1 << 7) ^ (accum2 >> 25);
    accum2 = (accum2 << 7) ^ (old1 >> 25);
    accum1 += c;
    if (++n < 64 && c != '\n') continue;
    counts[(accum1 + accum2 * 0x61) % kHashBase] += n;
    n = 0;
    accum1 = accum2 = 0;
  }
  if (n > 0) counts[(accum1 + accum2 * 0x61) % kHashBase] += n;
  SpanSignature sig;
  sig.size = size;
  sig.spans.assign(counts.begin(), counts.end());
  std::sort(sig.spans.begin(), sig.spans.end());
  return sig;
}

int BufferSignature(void** out, const git_diff_file* /*file*/, const char* buf, size_t size,
                    void* /*payload*/) {
  *out = nullptr;
  if (buf == nullptr || size == static_cast<size_t>(-1)) return 0;  // not compared
  *out = new SpanSignature(Sign(buf, size));
  return 0;
}

// Only blobs are compared here (tree to tree); a file in a work tree is not.
int FileSignature(void** out, const git_diff_file* /*file*/, const char* /*path*/,
                  void* /*payload*/) {
  *out = nullptr;
  return 0;
}

void FreeSignature(void* sig, void* /*payload*/) { delete static_cast<SpanSignature*>(sig); }

// diffcore-rename.c's estimate_similarity, as a percentage the way git
// prints it: bytes in common over the larger size.
int Similarity(int* score, void* a, void* b, void* /*payload*/) {
  const auto* src = static_cast<const SpanSignature*>(a);
  const auto* dst = static_cast<const SpanSignature*>(b);
  uint64_t max_size = std::max(src->size, dst->size);
  *score = 0;
  if (src->size == 0 || dst->size == 0) return 0;
  uint64_t common = 0;
  auto s = src->spans.begin(), d = dst->spans.begin();
  while (s != src->spans.end() && d != dst->spans.end()) {
    if (s->first < d->first) {
      ++s;
    } else if (d->first < s->first) {
      ++d;
    } else {
      common += std::min(s->second, d->second);
      ++s;
      ++d;
    }
  }
  uint64_t git_score = common * kMaxScore / max_size;
  *score = static_cast<int>(git_score * 100 / kMaxScore);
  return 0;
}

// git's tab after a ---/+++ label that holds a space, in the header of one
// file's section (before its first hunk or "Binary files" line).
void TabAfterLabelsWithSpaces(std::string* section) {
  size_t pos = 0;
  while (pos < section->size()) {
    size_t nl = section->find('\n', pos);
    if (nl == std::string::npos) return;
    std::string_view line(section->data() + pos, nl - pos);
    if (line.substr(0, 2) == "@@" || line.substr(0, 12) == "Binary files") return;
    bool label = line.substr(0, 4) == "--- " || line.substr(0, 4) == "+++ ";
    if (label && line.find(' ', 4) != std::string_view::npos) {
      section->insert(nl, 1, '\t');
      ++nl;
    }
    pos = nl + 1;
  }
}

struct Section {
  git_delta_t status;
  std::string path;
  std::string text;
};

}  // namespace

Result<std::string> DiffCommits(const std::string& repo_path, const std::string& base,
                                const std::string& head) {
  InitLibgit2();
  const std::string what = "diff of " + Quote(base) + ".." + Quote(head);
  KILN_ASSIGN_OR_RETURN(RepoPtr repo, OpenBare(repo_path));
  KILN_ASSIGN_OR_RETURN(TreePtr old_tree, CommitTree(repo.get(), base));
  KILN_ASSIGN_OR_RETURN(TreePtr new_tree, CommitTree(repo.get(), head));
  git_diff_options opts;
  git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
  opts.context_lines = 3;
  opts.id_abbrev = 7;
  git_diff* d = nullptr;
  if (git_diff_tree_to_tree(&d, repo.get(), old_tree.get(), new_tree.get(), &opts) != 0) {
    return GitError(what);
  }
  DiffPtr diff(d);
  // `git diff` detects renames (diff.renames is true by default since git
  // 2.9) among at most diff.renameLimit (1000) files.
  git_diff_similarity_metric metric{FileSignature, BufferSignature, FreeSignature, Similarity,
                                    nullptr};
  git_diff_find_options find;
  git_diff_find_options_init(&find, GIT_DIFF_FIND_OPTIONS_VERSION);
  find.flags = GIT_DIFF_FIND_RENAMES;
  find.rename_threshold = 50;
  find.rename_limit = 1000;
  find.metric = &metric;
  if (git_diff_find_similar(diff.get(), &find) != 0) return GitError(what);

  std::vector<Section> sections;
  size_t count = git_diff_num_deltas(diff.get());
  for (size_t i = 0; i < count; ++i) {
    git_patch* p = nullptr;
    if (git_patch_from_diff(&p, diff.get(), i) != 0) return GitError(what);
    if (p == nullptr) continue;
    PatchPtr patch(p);
    git_buf buf = GIT_BUF_INIT;
    if (git_patch_to_buf(&buf, p) != 0) return GitError(what);
    const git_diff_delta* delta = git_patch_get_delta(p);
    Section s{delta->status, delta->new_file.path, std::string(buf.ptr, buf.size)};
    git_buf_dispose(&buf);
    TabAfterLabelsWithSpaces(&s.text);
    sections.push_back(std::move(s));
  }
  // A type change is split in two deltas of one path; git prints the
  // deletion first.
  for (size_t i = 0; i + 1 < sections.size(); ++i) {
    if (sections[i].status == GIT_DELTA_ADDED && sections[i + 1].status == GIT_DELTA_DELETED &&
        sections[i].path == sections[i + 1].path) {
      std::swap(sections[i], sections[i + 1]);
      ++i;
    }
  }
  std::string out;
  for (const Section& s : sections) out += s.text;
  return out;
}

}  // namespace kiln::git
