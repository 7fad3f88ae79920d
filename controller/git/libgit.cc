#include "controller/git/libgit.h"

#include <functional>
#include <mutex>

#include "controller/git/git.h"

namespace kiln::git {

void InitLibgit2() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

std::string LastGitMessage() {
  const git_error* e = git_error_last();
  return e != nullptr && e->message != nullptr ? e->message : "unknown error";
}

Error GitError(std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += LastGitMessage();
  return Error(Error::Code::kIO, std::move(msg));
}

Result<RepoPtr> OpenBare(const std::string& path) {
  git_repository* repo = nullptr;
  if (git_repository_open_bare(&repo, path.c_str()) != 0) {
    return GitError("opening repository " + Quote(path));
  }
  return RepoPtr(repo);
}

Result<TreePtr> CommitTree(git_repository* repo, const std::string& commit) {
  git_oid oid;
  if (!IsFullSha(commit) || git_oid_fromstr(&oid, commit.c_str()) != 0) {
    return Error::Invalid("commit " + Quote(commit) + " is not a 40-hex object name");
  }
  git_commit* c = nullptr;
  if (git_commit_lookup(&c, repo, &oid) != 0) {
    return Error(Error::Code::kNotFound, "commit " + Quote(commit) + ": " + LastGitMessage());
  }
  CommitPtr owner(c);
  git_tree* tree = nullptr;
  if (git_commit_tree(&tree, c) != 0) return GitError("tree of commit " + Quote(commit));
  return TreePtr(tree);
}

std::string OidHex(const git_oid& oid) {
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, &oid);
  return hex;
}

bool IsFullSha(std::string_view s) {
  if (s.size() != GIT_OID_HEXSZ) return false;
  for (char c : s) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

std::string HttpsOrigin(std::string_view url) {
  constexpr std::string_view kHttps = "https://";
  if (url.substr(0, kHttps.size()) != kHttps) return "";
  size_t slash = url.find('/', kHttps.size());
  return std::string(url.substr(0, slash));
}

Status WithToken(const std::function<Result<std::string>(bool renew)>& token_for,
                 const std::function<Status(const std::string& token)>& step) {
  KILN_ASSIGN_OR_RETURN(std::string token, token_for(false));
  Status st = step(token);
  if (st.ok() || st.error().message().find(kTokenRefused) == std::string::npos) return st;
  KILN_ASSIGN_OR_RETURN(token, token_for(true));
  return step(token);
}

int TokenCredentials(git_credential** out, const char* url, const char* /*username_from_url*/,
                     unsigned int allowed_types, void* payload) {
  auto* auth = static_cast<TokenAuth*>(payload);
  if (auth->token.empty() || auth->origin.empty() || url == nullptr ||
      HttpsOrigin(url) != auth->origin || !(allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT)) {
    return GIT_PASSTHROUGH;
  }
  if (auth->sent) {
    git_error_set_str(GIT_ERROR_NET, kTokenRefused);
    return GIT_EAUTH;
  }
  auth->sent = true;
  return git_credential_userpass_plaintext_new(out, "x-access-token", auth->token.c_str());
}

}  // namespace kiln::git
