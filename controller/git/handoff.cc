// Handoff: a run's work as a developer's own repository: a clone holding only
// what it needs (the run's commit and its change), a branch, a checkout.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/clock.h"
#include "controller/git/files.h"
#include "controller/git/libgit.h"
#include "controller/git/write.h"

namespace kiln::git {
namespace {

using ReferencePtr = std::unique_ptr<git_reference, GitFree<git_reference_free>>;
using DiffPtr = std::unique_ptr<git_diff, GitFree<git_diff_free>>;
using IndexPtr = std::unique_ptr<git_index, GitFree<git_index_free>>;
using SignaturePtr = std::unique_ptr<git_signature, GitFree<git_signature_free>>;

// Where the fetch puts the two commits in the copy, removed after.
constexpr char kBase[] = "refs/kiln/handoff/base";
constexpr char kChange[] = "refs/kiln/handoff/change";

// The mirror's refs for the fetch, removed however the fetch went.
class TempRefs {
 public:
  explicit TempRefs(git_repository* mirror) : mirror_(mirror) {}
  ~TempRefs() {
    for (const auto& name : names_) git_reference_remove(mirror_, name.c_str());
  }
  Status Add(const std::string& name, const git_oid& oid) {
    git_reference* ref = nullptr;
    if (git_reference_create(&ref, mirror_, name.c_str(), &oid, 1, "kiln: handoff") != 0) {
      return GitError("creating " + name + " in the mirror");
    }
    git_reference_free(ref);
    names_.push_back(name);
    return Ok();
  }

 private:
  git_repository* mirror_;
  std::vector<std::string> names_;
};

Result<git_oid> Oid(git_repository* repo, const std::string& rev, const std::string& what) {
  git_object* obj = nullptr;
  if (git_revparse_single(&obj, repo, rev.c_str()) != 0) return GitError(what);
  ObjectPtr owned(obj);
  git_object* peeled = nullptr;
  if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) != 0) return GitError(what);
  git_oid oid = *git_object_id(peeled);
  git_object_free(peeled);
  return oid;
}

// patch applied to base's tree, committed on top of base.
Result<git_oid> CommitPatch(git_repository* repo, const git_oid& base, const HandoffSpec& spec) {
  git_commit* parent_raw = nullptr;
  if (git_commit_lookup(&parent_raw, repo, &base) != 0) return GitError("reading the run's commit");
  CommitPtr parent(parent_raw);
  git_tree* tree_raw = nullptr;
  if (git_commit_tree(&tree_raw, parent.get()) != 0) return GitError("reading the run's tree");
  TreePtr tree(tree_raw);
  git_diff* diff_raw = nullptr;
  if (git_diff_from_buffer(&diff_raw, spec.patch.data(), spec.patch.size()) != 0) {
    return GitError("reading the run's diff");
  }
  DiffPtr diff(diff_raw);
  git_index* index_raw = nullptr;
  if (git_apply_to_tree(&index_raw, repo, tree.get(), diff.get(), nullptr) != 0) {
    return GitError("applying the run's diff to its commit");
  }
  IndexPtr index(index_raw);
  git_oid tree_oid;
  if (git_index_write_tree_to(&tree_oid, index.get(), repo) != 0) {
    return GitError("writing the change's tree");
  }
  git_tree* new_tree_raw = nullptr;
  if (git_tree_lookup(&new_tree_raw, repo, &tree_oid) != 0) return GitError("reading the tree");
  TreePtr new_tree(new_tree_raw);
  git_signature* sig_raw = nullptr;
  int rc = spec.author.time_s > 0
               ? git_signature_new(&sig_raw, spec.author.name.c_str(), spec.author.email.c_str(),
                                   spec.author.time_s, 0)
               : git_signature_now(&sig_raw, spec.author.name.c_str(), spec.author.email.c_str());
  if (rc != 0) return GitError("the commit's author");
  SignaturePtr sig(sig_raw);
  const git_commit* parents[] = {parent.get()};
  git_oid out;
  if (git_commit_create(&out, repo, nullptr, sig.get(), sig.get(), nullptr, spec.message.c_str(),
                        new_tree.get(), 1, parents) != 0) {
    return GitError("committing the change");
  }
  return out;
}

}  // namespace

Result<std::string> Handoff(const std::string& dir, const HandoffSpec& spec) {
  InitLibgit2();
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) &&
      (!std::filesystem::is_directory(dir, ec) || !std::filesystem::is_empty(dir, ec))) {
    return Error::Invalid(Quote(dir) + " exists and is not empty");
  }
  KILN_ASSIGN_OR_RETURN(RepoPtr mirror, OpenBare(spec.mirror));
  KILN_ASSIGN_OR_RETURN(git_oid base,
                        Oid(mirror.get(), spec.base, "the run's commit " + spec.base));
  // The refs are per call: two handoffs of one mirror do not meet.
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(NowMs());
  TempRefs refs(mirror.get());
  KILN_TRY(refs.Add("refs/kiln/handoff/" + tag + "/base", base));
  bool have_change = false;
  if (!spec.change_ref.empty()) {
    git_oid change;
    if (git_reference_name_to_id(&change, mirror.get(), spec.change_ref.c_str()) == 0) {
      KILN_TRY(refs.Add("refs/kiln/handoff/" + tag + "/change", change));
      have_change = true;
    }
  }
  if (!have_change && !spec.unpatchable.empty()) {
    std::string names;
    for (const auto& n : spec.unpatchable) names += (names.empty() ? "" : ", ") + n;
    return Error::Invalid("the run's diff does not hold all of its change (" + names +
                          ") and its repository's mirror keeps no commit of it (" +
                          spec.change_ref + ")");
  }
  git_repository* raw = nullptr;
  if (git_repository_init(&raw, dir.c_str(), 0) != 0) return GitError("creating " + Quote(dir));
  RepoPtr repo(raw);
  auto fail = [&](Error e) {
    repo.reset();
    (void)RemoveTree(dir);
    return e;
  };
  git_remote* remote_raw = nullptr;
  if (git_remote_create_anonymous(&remote_raw, repo.get(), spec.mirror.c_str()) != 0) {
    return fail(GitError("fetching from the mirror"));
  }
  RemotePtr remote(remote_raw);
  std::string base_spec = "+refs/kiln/handoff/" + tag + "/base:" + kBase;
  std::string change_spec = "+refs/kiln/handoff/" + tag + "/change:" + kChange;
  std::vector<char*> specs = {base_spec.data()};
  if (have_change) specs.push_back(change_spec.data());
  git_strarray refspecs{specs.data(), specs.size()};
  git_fetch_options fetch;
  git_fetch_options_init(&fetch, GIT_FETCH_OPTIONS_VERSION);
  if (git_remote_fetch(remote.get(), &refspecs, &fetch, "kiln: handoff") != 0) {
    return fail(GitError("fetching the run's commit from the mirror"));
  }
  git_oid head;
  if (have_change) {
    if (git_reference_name_to_id(&head, repo.get(), kChange) != 0) {
      return fail(GitError("reading the run's commit"));
    }
  } else if (spec.patch.empty()) {
    head = base;  // the run changed nothing: the branch is its commit
  } else {
    auto made = CommitPatch(repo.get(), base, spec);
    if (!made) return fail(made.error());
    head = *made;
  }
  git_commit* tip_raw = nullptr;
  if (git_commit_lookup(&tip_raw, repo.get(), &head) != 0)
    return fail(GitError("the branch's tip"));
  CommitPtr tip(tip_raw);
  git_reference* branch = nullptr;
  if (git_branch_create(&branch, repo.get(), spec.branch.c_str(), tip.get(), 0) != 0) {
    return fail(GitError("creating branch " + Quote(spec.branch)));
  }
  ReferencePtr branch_ref(branch);
  for (const char* name : {kBase, kChange}) git_reference_remove(repo.get(), name);
  if (git_repository_set_head(repo.get(), git_reference_name(branch)) != 0) {
    return fail(GitError("checking out " + Quote(spec.branch)));
  }
  git_checkout_options co;
  git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
  co.checkout_strategy = GIT_CHECKOUT_FORCE;
  if (git_checkout_head(repo.get(), &co) != 0) {
    return fail(GitError("checking out " + Quote(spec.branch)));
  }
  if (!spec.origin.empty()) {
    git_remote* origin = nullptr;
    if (git_remote_create(&origin, repo.get(), "origin", spec.origin.c_str()) != 0) {
      return fail(GitError("setting origin to " + Quote(spec.origin)));
    }
    git_remote_free(origin);
  }
  return OidHex(head);
}

}  // namespace kiln::git
