// Git's smart HTTP protocol for the local forge's repositories, on kiln
// serve's listener (docs/web.md): `git clone http://HOST/OWNER/NAME.git`
// works, through Debian's `git http-backend` run as a CGI. The forge's users
// authenticate with HTTP basic auth, their API token as the password. Every
// user may fetch; any user may push a branch, but a repository's default
// branch only its maintainers. A push that moves branches records the
// forge's `push` events, as a push through the forge does.
#pragma once

#include <string>
#include <string_view>

#include "controller/forge/api.h"

namespace kiln::web {

class GitHttp {
 public:
  GitHttp(std::string store_path, std::string repos_dir)
      : store_path_(std::move(store_path)), repos_dir_(std::move(repos_dir)) {}

  // Whether path is a git request: /OWNER/NAME.git/info/refs,
  // /OWNER/NAME.git/git-upload-pack, /OWNER/NAME.git/git-receive-pack.
  static bool Matches(std::string_view path);

  // Answers a git request by user (authenticated by the caller), its body
  // read and its reply written as they come: a push or a clone's pack of
  // any size goes through a pipe to and from git http-backend, never whole
  // in memory. A push is bounded by kMaxPush.
  void Stream(const forge::ApiRequest& head, const std::string& user, forge::Exchange& exchange);

  static constexpr uint64_t kMaxPush = uint64_t{2} << 30;  // 2 GiB, as GitHub's

 private:
  std::string store_path_;
  std::string repos_dir_;
};

}  // namespace kiln::web
