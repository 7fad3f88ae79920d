// Cache::Resolve: the bare mirror of a repository, cloned on first use and
// fetched when a revision is not in it, one flock(2) lock per mirror.
#include <sys/stat.h>

#include <cerrno>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/digest.h"
#include "controller/git/files.h"
#include "controller/git/git.h"
#include "controller/git/libgit.h"

namespace kiln::git {
namespace {

// Every ref of the origin under the same name: branches, tags, notes, and
// whatever a forge keeps under refs/ (pull request heads). The remote's
// configured refspec; fetches pass narrower ones (FetchRefspecs).
constexpr char kMirrorRefspec[] = "+refs/*:refs/*";
constexpr char kRemote[] = "origin";
// The controller's own refs in a mirror (commits of runs kept until pushed):
// never fetched into, never pruned.
constexpr std::string_view kKilnNamespace = "refs/kiln";

Error Unreachable(const std::string& url, const std::string& why) {
  return Error(Error::Code::kIO, "repository " + Quote(url) + " is unreachable: " + why);
}

Error RevisionNotFound(const std::string& url, const std::string& rev) {
  return Error::NotFound("revision " + Quote(rev) + " not found in " + Quote(url));
}

// A revision written as an object name (full or abbreviated): found locally,
// it names the same commit whatever the origin did since.
bool LooksLikeSha(const std::string& rev) {
  if (rev.size() < GIT_OID_MINPREFIXLEN || rev.size() > GIT_OID_HEXSZ) return false;
  for (char c : rev) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

// The commit rev names in repo (peeling tags), or nullopt if it names none.
Result<std::optional<std::string>> LookupCommit(git_repository* repo, const std::string& rev) {
  git_object* obj = nullptr;
  int rc = git_revparse_single(&obj, repo, rev.c_str());
  if (rc == GIT_ENOTFOUND || rc == GIT_EAMBIGUOUS || rc == GIT_EINVALIDSPEC) {
    return std::optional<std::string>();
  }
  if (rc != 0) return GitError("resolving " + Quote(rev));
  ObjectPtr named(obj);
  git_object* commit = nullptr;
  rc = git_object_peel(&commit, named.get(), GIT_OBJECT_COMMIT);
  // A tag of a tree or blob, or a tree or blob named directly: not a commit.
  if (rc == GIT_EPEEL || rc == GIT_EINVALIDSPEC || rc == GIT_ENOTFOUND) {
    return std::optional<std::string>();
  }
  if (rc != 0) return GitError("peeling " + Quote(rev));
  ObjectPtr owner(commit);
  return std::optional<std::string>(OidHex(*git_object_id(commit)));
}

// Points the mirror's HEAD where the origin's HEAD points, so that "HEAD"
// resolves to the origin's default branch. heads is the origin's ref list.
Status FollowRemoteHead(git_repository* repo, const git_remote_head** heads, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (std::string_view(heads[i]->name) != "HEAD") continue;
    git_reference* ref = nullptr;
    const char* target = heads[i]->symref_target;
    if (target != nullptr && git_reference_lookup(&ref, repo, target) == 0) {
      git_reference_free(ref);
      if (git_repository_set_head(repo, target) != 0) return GitError("setting HEAD");
    } else if (git_repository_set_head_detached(repo, &heads[i]->oid) != 0) {
      return GitError("setting HEAD");
    }
    return Ok();
  }
  return Ok();
}

// The refspec covering name's namespace: "+refs/<ns>/*:refs/<ns>/*", or the
// name itself for a ref directly under refs/. Nothing for refs/kiln/, names
// outside refs/ (HEAD) and names no refspec can hold.
std::optional<std::string> NamespaceRefspec(std::string_view name) {
  constexpr std::string_view kRefs = "refs/";
  if (name.substr(0, kRefs.size()) != kRefs) return std::nullopt;
  size_t slash = name.find('/', kRefs.size());
  std::string pattern(name.substr(0, slash));
  if (pattern == kKilnNamespace) return std::nullopt;
  // A name no ref may have ("refs/tags/v1^{}" is fine: its namespace is).
  int valid = 0;
  std::string probe = slash == std::string_view::npos ? pattern : pattern + "/x";
  if (git_reference_name_is_valid(&valid, probe.c_str()) != 0 || !valid) return std::nullopt;
  if (slash != std::string_view::npos) pattern += "/*";
  std::string spec = "+" + pattern + ":" + pattern;
  git_refspec* parsed = nullptr;
  if (git_refspec_parse(&parsed, spec.c_str(), /*is_fetch=*/1) != 0) return std::nullopt;
  git_refspec_free(parsed);
  return spec;
}

// The refspecs of a fetch: one per namespace that the origin (heads, its ref
// list) or the mirror has, refs/kiln/ excepted. libgit2 1.5 has no negative
// refspecs ("^refs/kiln/*"), and with "+refs/*:refs/*" a pruning fetch would
// delete the controller's refs (the origin has none) and the origin's
// refs/kiln/* would overwrite them. The mirror's own namespaces are listed
// so that one the origin dropped entirely is still pruned.
Result<std::vector<std::string>> FetchRefspecs(git_repository* repo, const git_remote_head** heads,
                                               size_t count) {
  // Always some refspecs: an empty list would make libgit2 use the remote's
  // configured "+refs/*:refs/*".
  std::set<std::string> specs = {"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"};
  for (size_t i = 0; i < count; ++i) {
    if (auto spec = NamespaceRefspec(heads[i]->name)) specs.insert(std::move(*spec));
  }
  git_strarray local{};
  if (git_reference_list(&local, repo) != 0) return GitError("listing the mirror's refs");
  for (size_t i = 0; i < local.count; ++i) {
    if (auto spec = NamespaceRefspec(local.strings[i])) specs.insert(std::move(*spec));
  }
  git_strarray_dispose(&local);
  return std::vector<std::string>(specs.begin(), specs.end());
}

// Fetches every ref of the origin into the mirror, pruning refs the origin
// deleted; refs/kiln/ is left alone (FetchRefspecs).
Status Fetch(git_repository* repo, const std::string& url, const std::string& token) {
  TokenAuth auth{HttpsOrigin(url), token};
  git_remote_callbacks callbacks;
  git_remote_init_callbacks(&callbacks, GIT_REMOTE_CALLBACKS_VERSION);
  callbacks.credentials = TokenCredentials;
  callbacks.payload = &auth;
  git_remote* r = nullptr;
  if (git_remote_lookup(&r, repo, kRemote) != 0) return GitError("mirror of " + Quote(url));
  RemotePtr remote(r);
  // Connected first for the origin's ref list; git_remote_fetch reuses the
  // connection.
  if (git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &callbacks, nullptr, nullptr) != 0) {
    return Unreachable(url, LastGitMessage());
  }
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  if (git_remote_ls(&heads, &count, remote.get()) != 0) return GitError("listing " + Quote(url));
  KILN_ASSIGN_OR_RETURN(std::vector<std::string> specs, FetchRefspecs(repo, heads, count));
  std::vector<char*> spec_ptrs;
  for (std::string& s : specs) spec_ptrs.push_back(s.data());
  git_strarray refspecs{spec_ptrs.data(), spec_ptrs.size()};
  git_fetch_options opts;
  git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
  opts.prune = GIT_FETCH_PRUNE;  // within the refspecs passed only
  opts.update_fetchhead = 0;
  // The refspecs name refs/tags/* already; no separate tag following.
  opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  opts.callbacks = callbacks;
  auth.sent = false;  // the fetch may open a connection of its own
  if (git_remote_fetch(remote.get(), &refspecs, &opts, "kiln: fetch") != 0) {
    return Unreachable(url, LastGitMessage());
  }
  // The ref list of the connection just closed, as git_clone uses it.
  if (git_remote_ls(&heads, &count, remote.get()) != 0) return GitError("listing " + Quote(url));
  return FollowRemoteHead(repo, heads, count);
}

// Clones url into a new bare mirror at path: built in a temporary directory
// beside it and renamed into place, so a failed or interrupted clone leaves
// no mirror behind. Called under the mirror's lock.
Status CloneMirror(const std::string& url, const std::string& token, const std::string& dir,
                   const std::string& path, const std::string& temp_prefix) {
  KILN_TRY(RemoveStale(dir, temp_prefix));
  KILN_ASSIGN_OR_RETURN(std::string tmp, MakeTempDir(dir, temp_prefix));
  Cleanup remove_tmp([&] { (void)RemoveTree(tmp); });
  git_repository_init_options init;
  git_repository_init_options_init(&init, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
  init.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_NO_REINIT;
  git_repository* r = nullptr;
  if (git_repository_init_ext(&r, tmp.c_str(), &init) != 0) {
    return GitError("creating mirror " + Quote(tmp));
  }
  RepoPtr repo(r);
  git_remote* remote = nullptr;
  if (git_remote_create_with_fetchspec(&remote, repo.get(), kRemote, url.c_str(), kMirrorRefspec) !=
      0) {
    // An URL libgit2 cannot even parse is as unreachable as a dead host.
    return Unreachable(url, LastGitMessage());
  }
  git_remote_free(remote);
  KILN_TRY(Fetch(repo.get(), url, token));
  repo.reset();
  KILN_TRY(SyncFs(tmp));
  KILN_TRY(Rename(tmp, path));
  remove_tmp.Dismiss();
  return Ok();
}

}  // namespace

Cache::Cache(std::string root) : root_(std::move(root)) {}

Status SetCaFile(const std::string& path) {
  InitLibgit2();
  if (git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, path.c_str(), nullptr) != 0) {
    return GitError("trusting the CA bundle " + Quote(path));
  }
  return Ok();
}

Result<Resolved> Cache::Resolve(const std::string& url, const std::string& rev) {
  InitLibgit2();
  std::string dir = root_ + "/mirrors";
  KILN_TRY(MakeDirs(root_));
  KILN_TRY(MakeDir(dir, 0700));
  std::string key = Sha256Hex(url).substr(0, 24);
  Resolved out{url, dir + "/" + key + ".git", "", false};
  // A network step with the URL's token, bought only when a step needs it.
  auto with_token = [&](const std::function<Status(const std::string& token)>& step) -> Status {
    if (!tokens_ || HttpsOrigin(url).empty()) return step("");
    return WithToken([&](bool renew) { return tokens_(url, renew); }, step);
  };
  KILN_ASSIGN_OR_RETURN(FileLock lock,
                        FileLock::Acquire(dir + "/" + key + ".lock", FileLock::Mode::kExclusive));

  struct stat st;
  if (::stat(out.mirror_path.c_str(), &st) != 0) {
    if (errno != ENOENT) return Error::Sys("stat(" + Quote(out.mirror_path) + ")", errno);
    KILN_TRY(with_token([&](const std::string& token) {
      return CloneMirror(url, token, dir, out.mirror_path, key + ".git.tmp-");
    }));
    out.fetched = true;
  }
  KILN_ASSIGN_OR_RETURN(RepoPtr repo, OpenBare(out.mirror_path));
  // Branches, tags and HEAD move: they are looked up at the origin every
  // time. An object name found locally needs no network.
  if (!out.fetched && LooksLikeSha(rev)) {
    KILN_ASSIGN_OR_RETURN(std::optional<std::string> commit, LookupCommit(repo.get(), rev));
    if (commit) {
      out.commit = *commit;
      return out;
    }
  }
  if (!out.fetched) {
    KILN_TRY(with_token([&](const std::string& token) { return Fetch(repo.get(), url, token); }));
    KILN_TRY(SyncFs(out.mirror_path));
    out.fetched = true;
  }
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> commit, LookupCommit(repo.get(), rev));
  if (!commit) return RevisionNotFound(url, rev);
  out.commit = *commit;
  return out;
}

}  // namespace kiln::git
