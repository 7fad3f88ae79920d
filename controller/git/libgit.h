// libgit2 inside kiln_git: one-time initialisation, RAII owners for the
// objects it hands out, and its last error as a kiln::Error.
#pragma once

#include <git2.h>
#include <git2/sys/repository.h>

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace kiln::git {

// Initialises libgit2 once per process (thread-safe); it is never shut down,
// so objects may outlive any caller.
void InitLibgit2();

// The message of libgit2's last error on this thread, or "unknown error".
std::string LastGitMessage();

// "<what>: <libgit2 message>".
Error GitError(std::string_view what);

template <auto Free>
struct GitFree {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

using RepoPtr = std::unique_ptr<git_repository, GitFree<git_repository_free>>;
using RemotePtr = std::unique_ptr<git_remote, GitFree<git_remote_free>>;
using ObjectPtr = std::unique_ptr<git_object, GitFree<git_object_free>>;
using CommitPtr = std::unique_ptr<git_commit, GitFree<git_commit_free>>;
using TreePtr = std::unique_ptr<git_tree, GitFree<git_tree_free>>;
using BlobPtr = std::unique_ptr<git_blob, GitFree<git_blob_free>>;
using OdbPtr = std::unique_ptr<git_odb, GitFree<git_odb_free>>;

// Opens the bare repository at path (a mirror).
Result<RepoPtr> OpenBare(const std::string& path);

// The tree of commit (40 hex) in repo.
Result<TreePtr> CommitTree(git_repository* repo, const std::string& commit);

std::string OidHex(const git_oid& oid);

// True for 40 hex digits (a full SHA-1 object name).
bool IsFullSha(std::string_view s);

// "https://host[:port]" of an https URL, "" for anything else.
std::string HttpsOrigin(std::string_view url);

// What TokenCredentials reports when the remote asks again for credentials
// after the token was sent: the token was refused (WithToken renews it).
constexpr char kTokenRefused[] = "the token was refused";

// A token for one remote, sent as HTTP basic auth x-access-token:<token>
// (GitHub's form) by TokenCredentials.
struct TokenAuth {
  std::string origin;  // HttpsOrigin of the remote's URL
  std::string token;   // "" sends nothing
  bool sent = false;
};

// libgit2's credentials callback; payload is a TokenAuth*. The token goes
// only to the https origin of the remote (not to a host a redirect names)
// and only once per connection: a token refused once is refused again, and
// libgit2 would ask forever. Reset sent before a new connection.
int TokenCredentials(git_credential** out, const char* url, const char* username_from_url,
                     unsigned int allowed_types, void* payload);

}  // namespace kiln::git
