// The local forge in the browser (docs/web.md): its repositories, issues and
// pull requests with labels, comments, inline review comments on the diff,
// reviews and statuses, each linking the runs that acted on it; and the
// forms that comment, label, close or reopen, approve and merge, as the
// signed-in user, with the permissions the forge's API checks.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "controller/store/store.h"
#include "controller/web/html.h"

namespace kiln::web {

// What a forge page answers: a page (status, html) or a redirect.
struct PageReply {
  int status = 200;
  std::string html;
  std::string redirect;  // set: a 303 to it
};

class ForgePages {
 public:
  ForgePages(store::Store& store, std::string store_path, std::string repos_dir)
      : store_(store), store_path_(std::move(store_path)), repos_dir_(std::move(repos_dir)) {}

  // Whether the path's segments name a forge page: /repos, /OWNER/NAME,
  // /OWNER/NAME/issues/N, /OWNER/NAME/pull/N, and their forms' actions.
  static bool Matches(const std::vector<std::string>& segments);

  // clone_base: "http://HOST" as the browser reached kiln, for clone commands.
  PageReply Get(const Viewer& viewer, const std::vector<std::string>& segments,
                const std::map<std::string, std::string>& query, const std::string& clone_base);
  PageReply Post(const Viewer& viewer, const std::vector<std::string>& segments,
                 const std::map<std::string, std::string>& form);

 private:
  store::Store& store_;
  std::string store_path_;
  std::string repos_dir_;
};

}  // namespace kiln::web
