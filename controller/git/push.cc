// Push: a commit of a mirror to a branch of a forge's repository. The commit
// is pushed from a temporary ref (refs/kiln/push/<random>, removed after), so
// that the push names a ref whatever the mirror's branches are; the remote's
// verdict on the branch is read from its per-ref status.
#include <sys/random.h>
#include <sys/stat.h>

#include <cerrno>
#include <memory>
#include <string>
#include <string_view>

#include "controller/git/files.h"
#include "controller/git/libgit.h"
#include "controller/git/write.h"

namespace kiln::git {
namespace {

using ReferencePtr = std::unique_ptr<git_reference, GitFree<git_reference_free>>;

// The payload of every callback: the token's state first.
struct PushState : TokenAuth {
  std::string refname;  // refs/heads/<branch>
  bool reported = false;
  std::string rejection;  // the remote's reason, when it refused the update
};

int UpdateReference(const char* refname, const char* status, void* payload) {
  auto* state = static_cast<PushState*>(static_cast<TokenAuth*>(payload));
  if (refname == nullptr || state->refname != refname) return 0;
  state->reported = true;
  if (status != nullptr) state->rejection = status;
  return 0;
}

Result<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t done = 0;
  while (done < bytes) {
    ssize_t n = ::getrandom(raw.data() + done, bytes - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Sys("getrandom", errno);
    done += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

}  // namespace

Status Push(const std::string& repo_path, const std::string& commit, const std::string& url,
            const std::string& branch, const PushOptions& options) {
  InitLibgit2();
  const std::string refname = "refs/heads/" + branch;
  const std::string what =
      "pushing " + Quote(commit) + " to branch " + Quote(branch) + " of " + Quote(url);
  int valid = 0;
  // git itself refuses branches named "HEAD" or starting with '-' (they
  // read as options or as the symbolic ref).
  if (branch.empty() || branch[0] == '-' || branch == "HEAD" ||
      git_reference_name_is_valid(&valid, refname.c_str()) != 0 || !valid) {
    return Error::Invalid(what + ": not a valid branch name");
  }
  git_oid id;
  if (!IsFullSha(commit) || git_oid_fromstr(&id, commit.c_str()) != 0) {
    return Error::Invalid(what + ": not a 40-hex commit name");
  }
  auto opened = OpenBare(repo_path);
  if (!opened.ok()) return opened.error().Wrap(what);
  RepoPtr repo = std::move(opened).value();
  git_commit* c = nullptr;
  if (git_commit_lookup(&c, repo.get(), &id) != 0) {
    return Error(Error::Code::kNotFound, what + ": " + LastGitMessage());
  }
  git_commit_free(c);

  KILN_ASSIGN_OR_RETURN(std::string suffix, RandomHex(16));
  const std::string temp_ref = "refs/kiln/push/" + suffix;
  git_reference* r = nullptr;
  if (git_reference_create(&r, repo.get(), temp_ref.c_str(), &id, /*force=*/0, "kiln: push") != 0) {
    return GitError(what + ": creating " + Quote(temp_ref));
  }
  ReferencePtr ref(r);
  Cleanup remove_temp([&] { (void)git_reference_remove(repo.get(), temp_ref.c_str()); });

  // libgit2 calls a missing local path an "unsupported URL protocol".
  struct stat st;
  if (!url.empty() && url[0] == '/' && ::stat(url.c_str(), &st) != 0) {
    return Error::Sys(what + ": stat(" + Quote(url) + ")", errno);
  }
  git_remote* rm = nullptr;
  if (git_remote_create_anonymous(&rm, repo.get(), url.c_str()) != 0) return GitError(what);
  RemotePtr remote(rm);

  PushState state;
  state.origin = HttpsOrigin(url);
  state.token = options.token;
  state.refname = refname;
  git_push_options opts;
  git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
  opts.callbacks.credentials = TokenCredentials;
  opts.callbacks.push_update_reference = UpdateReference;
  opts.callbacks.payload = static_cast<TokenAuth*>(&state);
  if (options.force) {
    // libgit2 refuses even a forced update of a remote branch whose commit
    // is not in the repository: fetch it first (into a temporary ref too, so
    // nothing else of the mirror moves). A branch the remote lacks fetches
    // nothing.
    const std::string theirs_ref = temp_ref + "-theirs";
    Cleanup remove_theirs([&] { (void)git_reference_remove(repo.get(), theirs_ref.c_str()); });
    std::string fetch_spec = "+" + refname + ":" + theirs_ref;
    char* fetch_specs[] = {fetch_spec.data()};
    git_strarray fetch_refspecs{fetch_specs, 1};
    git_fetch_options fetch;
    git_fetch_options_init(&fetch, GIT_FETCH_OPTIONS_VERSION);
    fetch.callbacks = opts.callbacks;
    fetch.prune = GIT_FETCH_NO_PRUNE;
    fetch.update_fetchhead = 0;
    fetch.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    if (git_remote_fetch(remote.get(), &fetch_refspecs, &fetch, "kiln: push") != 0) {
      return GitError(what + ": fetching the branch");
    }
    state.sent = false;  // a new connection may ask again
  }
  std::string spec = (options.force ? "+" : "") + temp_ref + ":" + refname;
  char* specs[] = {spec.data()};
  git_strarray refspecs{specs, 1};
  // libgit2 refuses a non-fast-forward update itself, before sending
  // anything (also when the remote's commit is not in the repository, which
  // then cannot be an ancestor); a remote's refusal (its hooks, protected
  // branches) comes back as the branch's status.
  int rc = git_remote_push(remote.get(), &refspecs, &opts);
  if (rc == GIT_ENONFASTFORWARD) {
    return Error(Error::Code::kIO, what + ": rejected, not a fast-forward: " + LastGitMessage());
  }
  if (rc != 0) return GitError(what);
  if (!state.rejection.empty()) {
    return Error(Error::Code::kIO, what + ": rejected: " + state.rejection);
  }
  if (!state.reported) {
    return Error(Error::Code::kIO, what + ": the remote reported nothing on the branch");
  }
  return Ok();
}

}  // namespace kiln::git
