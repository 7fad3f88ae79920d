// GitHub's webhooks in (docs/github.md): the signature check, the
// translation of a delivery into the forge's Event (forge.h), and the
// receiver behind `POST /webhooks/github` on kiln's HTTP server, which
// answers fast and leaves the work to the pipeline by appending to the inbox.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/forge/api.h"
#include "controller/forge/forge.h"
#include "controller/forge/inbox.h"

namespace kiln::github {

// "sha256=" + lower-case hex HMAC-SHA256 of body keyed with secret: the
// value of X-Hub-Signature-256.
std::string Sign(std::string_view secret, std::string_view body);

// Whether header is Sign(secret, body), compared in constant time
// (CRYPTO_memcmp). An empty secret or a header not of the form
// "sha256=<64 hex>" is never valid.
bool SignatureValid(std::string_view secret, std::string_view body, std::string_view header);

// What a delivery means to kiln.
struct Translated {
  std::string repo;             // "owner/name" (repository.full_name); "" for account-wide events
  int64_t installation_id = 0;  // installation.id, 0 when absent
  std::optional<forge::Event> event;  // nullopt: nothing for the pipeline
  std::string ignored;  // why event is nullopt ("unknown event 'star'", "action 'assigned'")
};

// Maps a GitHub label name of repo to kiln's name for it (the per-repository
// label names of docs/github.md); identity when the repository renames none.
using LabelIn = std::function<std::string(const std::string& repo, const std::string& label)>;

// The delivery (X-GitHub-Event, X-GitHub-Delivery, the parsed body) as an
// Event of forge.h, source "github", delivery = the delivery id, actor =
// sender.login, number = the issue or pull request number:
//   issues               opened | labeled | unlabeled | closed | reopened | edited
//                        -> issue.<action>  (an issue that is a pull request:
//                           pull.<action>); labeled/unlabeled {"label"},
//                           edited {"changes": [field names]}
//   issue_comment        created | edited -> comment.created | comment.edited
//                        {"comment_id", "body", "is_pull"}
//   pull_request         opened | synchronize | labeled | unlabeled | closed |
//                        reopened | edited | ready_for_review -> pull.<action>,
//                        synchronize as pull.synchronized; every one carries
//                        {"head_repo": head.repo.full_name ("" when the fork is
//                        gone), "fork": head_repo != repo, "draft" if sent} and
//                           pull.opened {"head_branch","base_branch","head_sha"},
//                           pull.synchronized {"head_branch","head_sha",
//                                              "before","after" if sent},
//                           pull.reopened, pull.ready_for_review {"head_branch","head_sha"},
//                           pull.labeled/unlabeled {"label"},
//                           pull.closed {"merged", "merged_sha" when merged},
//                           pull.edited {"changes"}
//   pull_request_review  submitted -> review.submitted
//                        {"review_id", "verdict": approve|request_changes|comment,
//                         "commit_sha", "body"}; a dismissed state is ignored
//   pull_request_review_comment  created | edited -> comment.created | comment.edited
//                        {"comment_id", "body", "inline": true, "is_pull": true,
//                         "path", "line" if sent}
// Labels pass through label_in (identity when empty). A null comment or
// review body is "". Other events and actions: Translated without event,
// with the reason in ignored ("ping" for ping). A body that lacks what its
// event and action need (repository.full_name, the number,
// sender.login, ...) or has it with the wrong type is kInvalidArgument naming
// event.action and the JSON path, e.g.
// "issues.opened: 'issue.number' is missing or not a number". Never throws.
Result<Translated> Translate(const std::string& event_type, const std::string& delivery,
                             const nlohmann::json& body, const LabelIn& label_in);

struct ReceiverOptions {
  std::string secret;  // the webhook secret; empty refuses every delivery
  // Whether kiln is configured for repo; deliveries for others are answered
  // 202 and stored nowhere. Empty: every repository is. Not asked for
  // deliveries without a repository (an organisation's or App's ping).
  std::function<bool(const std::string& repo)> configured;
  LabelIn label_in;
  // Called after an event was appended (wakes the pipeline); may be empty.
  std::function<void()> on_event;
};

// The handler of POST /webhooks/github. Answers, in this order:
//   405  a method other than POST
//   401  no secret configured, X-Hub-Signature-256 absent or not the body's
//        signature
//   415  a Content-Type other than application/json (a hook configured for
//        application/x-www-form-urlencoded): the message says to change it.
//        A request without Content-Type is read as JSON.
//   400  X-GitHub-Event or X-GitHub-Delivery absent, a body that is not a
//        JSON object, or one Translate refuses (the message says what)
//   202  ignored: an unconfigured repository (ping included), then an
//        unknown event or action
//   200  "pong" for ping
//   200  a delivery already stored (a redelivery): nothing new happens
//   201  "queued": the event was appended to the inbox, on_event called
//   503  the inbox could not be written (GitHub shows the delivery as failed
//        and it can be redelivered)
// Bodies are JSON {"message": "..."}. Signature checking happens before
// any parsing.
class Receiver {
 public:
  Receiver(ReceiverOptions options, forge::Inbox& inbox);
  forge::ApiResponse Handle(const forge::ApiRequest& request);

 private:
  ReceiverOptions options_;
  forge::Inbox& inbox_;
};

}  // namespace kiln::github
