// GitHub's webhooks in: signature, translation into forge events, receiver.
//
// Every field a mapping reads goes through Fields, which checks presence and
// type and names the JSON path when either is wrong, so nothing here throws on
// a hostile or truncated body.
#include "controller/github/webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "base/clock.h"
#include "base/digest.h"

namespace kiln::github {
namespace {

using nlohmann::json;

constexpr std::string_view kSignaturePrefix = "sha256=";
constexpr size_t kSignatureHexLength = 64;  // SHA-256: 32 bytes

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// The typed, path-named reads of one delivery's body. what is "issues.opened",
// the prefix of every error.
class Fields {
 public:
  Fields(std::string what, const json& root) : what_(std::move(what)), root_(root) {}

  // The value at a dotted path ("pull_request.head.sha"), or nullptr when a
  // step is missing or not an object.
  const json* Find(std::string_view path) const {
    const json* node = &root_;
    while (!path.empty()) {
      size_t dot = path.find('.');
      std::string key(path.substr(0, dot));
      path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
      if (!node->is_object()) return nullptr;
      auto it = node->find(key);
      if (it == node->end()) return nullptr;
      node = &*it;
    }
    return node;
  }

  Result<std::string> String(std::string_view path) const {
    const json* v = Find(path);
    if (v == nullptr || !v->is_string()) return Missing(path, "a string");
    return v->get<std::string>();
  }
  Result<int64_t> Int(std::string_view path) const {
    const json* v = Find(path);
    if (v == nullptr || !v->is_number_integer()) return Missing(path, "a number");
    return v->get<int64_t>();
  }
  Result<bool> Bool(std::string_view path) const {
    const json* v = Find(path);
    if (v == nullptr || !v->is_boolean()) return Missing(path, "a boolean");
    return v->get<bool>();
  }
  // A string that GitHub may send as null (a comment's or review's body):
  // "" then, but a number or object is still refused.
  Result<std::string> Text(std::string_view path) const {
    const json* v = Find(path);
    if (v != nullptr && v->is_null()) return std::string();
    return String(path);
  }
  // Present and a string, or nothing: the optional extras of a payload.
  std::optional<std::string> OptString(std::string_view path) const {
    const json* v = Find(path);
    if (v == nullptr || !v->is_string()) return std::nullopt;
    return v->get<std::string>();
  }
  bool Has(std::string_view path) const { return Find(path) != nullptr; }
  // "<what>: '<path>' <message>".
  Error Invalid(std::string_view path, std::string_view message) const {
    return Error::Invalid(what_ + ": " + Quote(path) + " " + std::string(message));
  }

 private:
  Error Missing(std::string_view path, std::string_view type) const {
    return Invalid(path, "is missing or not " + std::string(type));
  }

  std::string what_;
  const json& root_;
};

bool OneOf(const std::string& s, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

// The event's common part: source, delivery, repo, number, actor.
Result<forge::Event> Base(const Fields& f, const std::string& kind, const std::string& delivery,
                          std::string_view number_path) {
  forge::Event e;
  e.source = "github";
  e.delivery = delivery;
  e.kind = kind;
  KILN_ASSIGN_OR_RETURN(e.repo, f.String("repository.full_name"));
  KILN_ASSIGN_OR_RETURN(e.number, f.Int(number_path));
  KILN_ASSIGN_OR_RETURN(e.actor, f.String("sender.login"));
  return e;
}

Result<std::string> Label(const Fields& f, const std::string& repo, const LabelIn& label_in) {
  KILN_ASSIGN_OR_RETURN(std::string name, f.String("label.name"));
  return label_in ? label_in(repo, name) : name;
}

// {"changes": ["title", "body"]}: which fields an edit touched.
json Changes(const Fields& f) {
  json names = json::array();
  if (const json* c = f.Find("changes"); c != nullptr && c->is_object()) {
    for (const auto& [key, value] : c->items()) names.push_back(key);
  }
  return names;
}

// issues: issue.<action>, or pull.<action> for the issue side of a pull request.
Result<forge::Event> FromIssues(const Fields& f, const std::string& action,
                                const std::string& delivery, const LabelIn& label_in) {
  std::string prefix = f.Has("issue.pull_request") ? "pull." : "issue.";
  KILN_ASSIGN_OR_RETURN(forge::Event e, Base(f, prefix + action, delivery, "issue.number"));
  if (action == "labeled" || action == "unlabeled") {
    KILN_ASSIGN_OR_RETURN(e.payload["label"], Label(f, e.repo, label_in));
  } else if (action == "edited") {
    e.payload["changes"] = Changes(f);
  }
  return e;
}

// issue_comment and pull_request_review_comment: comment.<action>.
Result<forge::Event> FromComment(const Fields& f, const std::string& action,
                                 const std::string& delivery, bool inline_comment) {
  std::string_view number_path = inline_comment ? "pull_request.number" : "issue.number";
  KILN_ASSIGN_OR_RETURN(forge::Event e, Base(f, "comment." + action, delivery, number_path));
  KILN_ASSIGN_OR_RETURN(e.payload["comment_id"], f.Int("comment.id"));
  KILN_ASSIGN_OR_RETURN(e.payload["body"], f.Text("comment.body"));
  if (inline_comment) {
    e.payload["inline"] = true;
    e.payload["is_pull"] = true;
    if (auto path = f.OptString("comment.path")) e.payload["path"] = *path;
    if (const json* line = f.Find("comment.line"); line != nullptr && line->is_number_integer()) {
      e.payload["line"] = line->get<int64_t>();
    }
    // A reply in a review thread names the thread's first comment.
    if (const json* to = f.Find("comment.in_reply_to_id");
        to != nullptr && to->is_number_integer()) {
      e.payload["in_reply_to"] = to->get<int64_t>();
    }
  } else {
    e.payload["is_pull"] = f.Has("issue.pull_request");
  }
  return e;
}

// pull_request: pull.<action> ("synchronize" becomes "synchronized", as the
// local forge names it), with where the head comes from.
Result<forge::Event> FromPull(const Fields& f, const std::string& action,
                              const std::string& delivery, const LabelIn& label_in) {
  std::string kind = action == "synchronize" ? "synchronized" : action;
  KILN_ASSIGN_OR_RETURN(forge::Event e, Base(f, "pull." + kind, delivery, "pull_request.number"));
  json& p = e.payload;
  // head.repo is null once a fork is deleted: a fork all the same.
  std::string head_repo = f.OptString("pull_request.head.repo.full_name").value_or("");
  p["head_repo"] = head_repo;
  p["fork"] = head_repo != e.repo;
  if (const json* draft = f.Find("pull_request.draft"); draft != nullptr && draft->is_boolean()) {
    p["draft"] = draft->get<bool>();
  }
  if (action == "opened" || action == "synchronize" || action == "reopened" ||
      action == "ready_for_review") {
    KILN_ASSIGN_OR_RETURN(p["head_branch"], f.String("pull_request.head.ref"));
    KILN_ASSIGN_OR_RETURN(p["head_sha"], f.String("pull_request.head.sha"));
  }
  if (action == "opened") {
    KILN_ASSIGN_OR_RETURN(p["base_branch"], f.String("pull_request.base.ref"));
  } else if (action == "synchronize") {
    if (auto before = f.OptString("before")) p["before"] = *before;
    if (auto after = f.OptString("after")) p["after"] = *after;
  } else if (action == "labeled" || action == "unlabeled") {
    KILN_ASSIGN_OR_RETURN(p["label"], Label(f, e.repo, label_in));
  } else if (action == "closed") {
    KILN_ASSIGN_OR_RETURN(bool merged, f.Bool("pull_request.merged"));
    p["merged"] = merged;
    if (merged) {
      KILN_ASSIGN_OR_RETURN(p["merged_sha"], f.String("pull_request.merge_commit_sha"));
    }
  } else if (action == "edited") {
    p["changes"] = Changes(f);
  }
  return e;
}

// pull_request_review submitted: review.submitted, or why not.
Result<std::optional<forge::Event>> FromReview(const Fields& f, const std::string& delivery,
                                               std::string* ignored) {
  KILN_ASSIGN_OR_RETURN(std::string state, f.String("review.state"));
  std::transform(state.begin(), state.end(), state.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  std::string verdict;
  if (state == "approved") {
    verdict = "approve";
  } else if (state == "changes_requested") {
    verdict = "request_changes";
  } else if (state == "commented") {
    verdict = "comment";
  } else {
    *ignored = "review state " + Quote(state);
    return std::optional<forge::Event>();
  }
  KILN_ASSIGN_OR_RETURN(forge::Event e,
                        Base(f, "review.submitted", delivery, "pull_request.number"));
  KILN_ASSIGN_OR_RETURN(e.payload["review_id"], f.Int("review.id"));
  e.payload["verdict"] = verdict;
  KILN_ASSIGN_OR_RETURN(e.payload["commit_sha"], f.String("review.commit_id"));
  KILN_ASSIGN_OR_RETURN(e.payload["body"], f.Text("review.body"));
  return std::optional<forge::Event>(std::move(e));
}

// pull_request_review dismissed: review.dismissed, the review and its author.
Result<forge::Event> FromDismissed(const Fields& f, const std::string& delivery) {
  KILN_ASSIGN_OR_RETURN(forge::Event e,
                        Base(f, "review.dismissed", delivery, "pull_request.number"));
  KILN_ASSIGN_OR_RETURN(e.payload["review_id"], f.Int("review.id"));
  KILN_ASSIGN_OR_RETURN(e.payload["author"], f.String("review.user.login"));
  return e;
}

// pull_request_review_thread resolved/unresolved: review_thread.<action>,
// with the ids of the thread's comments.
Result<forge::Event> FromThread(const Fields& f, const std::string& action,
                                const std::string& delivery) {
  KILN_ASSIGN_OR_RETURN(forge::Event e,
                        Base(f, "review_thread." + action, delivery, "pull_request.number"));
  const json* comments = f.Find("thread.comments");
  if (comments == nullptr || !comments->is_array()) {
    return f.Invalid("thread.comments", "is missing or not an array of comments");
  }
  json ids = json::array();
  for (const json& c : *comments) {
    if (!c.is_object() || !c.contains("id") || !c["id"].is_number_integer()) {
      return f.Invalid("thread.comments", "holds a comment without a numeric id");
    }
    ids.push_back(c["id"].get<int64_t>());
  }
  e.payload["comment_ids"] = std::move(ids);
  return e;
}

Result<Translated> TranslateObject(const std::string& event_type, const std::string& delivery,
                                   const json& body, const LabelIn& label_in) {
  Translated out;
  Fields top(event_type, body);
  out.repo = top.OptString("repository.full_name").value_or("");
  if (const json* id = top.Find("installation.id"); id != nullptr && id->is_number_integer()) {
    out.installation_id = id->get<int64_t>();
  }

  bool known = OneOf(event_type, {"issues", "issue_comment", "pull_request", "pull_request_review",
                                  "pull_request_review_comment", "pull_request_review_thread"});
  if (!known) {
    out.ignored = event_type == "ping" ? "ping" : "unknown event " + Quote(event_type);
    return out;
  }
  KILN_ASSIGN_OR_RETURN(std::string action, top.String("action"));
  Fields f(event_type + "." + action, body);
  auto ignore = [&]() {
    out.ignored = event_type + " action " + Quote(action);
    return out;
  };

  if (event_type == "issues") {
    if (!OneOf(action, {"opened", "labeled", "unlabeled", "closed", "reopened", "edited"})) {
      return ignore();
    }
    KILN_ASSIGN_OR_RETURN(out.event, FromIssues(f, action, delivery, label_in));
  } else if (event_type == "issue_comment" || event_type == "pull_request_review_comment") {
    if (!OneOf(action, {"created", "edited"})) return ignore();
    KILN_ASSIGN_OR_RETURN(
        out.event, FromComment(f, action, delivery, event_type == "pull_request_review_comment"));
  } else if (event_type == "pull_request") {
    if (!OneOf(action, {"opened", "synchronize", "labeled", "unlabeled", "closed", "reopened",
                        "edited", "ready_for_review"})) {
      return ignore();
    }
    KILN_ASSIGN_OR_RETURN(out.event, FromPull(f, action, delivery, label_in));
  } else if (event_type == "pull_request_review_thread") {
    if (!OneOf(action, {"resolved", "unresolved"})) return ignore();
    KILN_ASSIGN_OR_RETURN(out.event, FromThread(f, action, delivery));
  } else if (action == "dismissed") {  // pull_request_review
    KILN_ASSIGN_OR_RETURN(out.event, FromDismissed(f, delivery));
  } else {
    if (action != "submitted") return ignore();
    KILN_ASSIGN_OR_RETURN(out.event, FromReview(f, delivery, &out.ignored));
  }
  if (out.event) out.repo = out.event->repo;
  return out;
}

forge::ApiResponse Reply(int status, const std::string& message) {
  forge::ApiResponse r;
  r.status = status;
  r.body = json{{"message", message}}.dump();
  return r;
}

const std::string* Header(const forge::ApiRequest& request, const std::string& name) {
  auto it = request.headers.find(name);
  return it == request.headers.end() ? nullptr : &it->second;
}

// The media type of a Content-Type value, lower-cased, without parameters.
std::string MediaType(const std::string& content_type) {
  std::string type = content_type.substr(0, content_type.find(';'));
  type.erase(0, type.find_first_not_of(" \t"));
  type.erase(type.find_last_not_of(" \t") + 1);
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return type;
}

}  // namespace

std::string Sign(std::string_view secret, std::string_view body) {
  static const char kNone = 0;  // HMAC wants a non-null key even when it is empty
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  const void* key = secret.empty() ? &kNone : secret.data();
  const auto* data = reinterpret_cast<const unsigned char*>(body.empty() ? &kNone : body.data());
  if (HMAC(EVP_sha256(), key, static_cast<int>(secret.size()), data, body.size(), mac.data(),
           &len) == nullptr) {
    return "";  // matches no header: SignatureValid refuses
  }
  return std::string(kSignaturePrefix) +
         Hex(std::string_view(reinterpret_cast<const char*>(mac.data()), len));
}

bool SignatureValid(std::string_view secret, std::string_view body, std::string_view header) {
  if (secret.empty()) return false;
  if (header.size() != kSignaturePrefix.size() + kSignatureHexLength) return false;
  if (header.substr(0, kSignaturePrefix.size()) != kSignaturePrefix) return false;
  std::string_view hex = header.substr(kSignaturePrefix.size());
  if (!std::all_of(hex.begin(), hex.end(), IsLowerHex)) return false;
  std::string expected = Sign(secret, body);
  return expected.size() == header.size() &&
         CRYPTO_memcmp(expected.data(), header.data(), header.size()) == 0;
}

Result<Translated> Translate(const std::string& event_type, const std::string& delivery,
                             const nlohmann::json& body, const LabelIn& label_in) {
  if (!body.is_object()) return Error::Invalid(event_type + ": the body is not a JSON object");
  try {
    return TranslateObject(event_type, delivery, body, label_in);
  } catch (const std::exception& e) {  // json's, or label_in's: a 400, never a crash
    return Error::Invalid(event_type + ": " + e.what());
  }
}

// What makes a delivery the same event as another, whatever its
// X-GitHub-Delivery (which GitHub does not sign, so a captured delivery can
// be resent under a new one): the object that a once-only action created,
// else the signed body's bytes. A replay is then stored once, and so acted
// on once.
std::string Fingerprint(const forge::Event& e, std::string_view body) {
  const std::string object = e.repo + " #" + std::to_string(e.number);
  if (e.kind == "comment.created" && e.payload.contains("comment_id")) {
    // Issue comments and inline review comments have ids of their own.
    const char* which = e.payload.value("inline", false) ? " review comment " : " comment ";
    return e.kind + " " + object + which + e.payload["comment_id"].dump();
  }
  if (e.kind == "review.submitted" && e.payload.contains("review_id")) {
    return e.kind + " " + object + " review " + e.payload["review_id"].dump();
  }
  if (e.kind == "issue.opened" || e.kind == "pull.opened") return e.kind + " " + object;
  return "sha256:" + Hex(Sha256Of(body));
}

Receiver::Receiver(ReceiverOptions options, forge::Inbox& inbox)
    : options_(std::move(options)), inbox_(inbox) {}

forge::ApiResponse Receiver::Handle(const forge::ApiRequest& request) {
  if (request.method != "POST") {
    forge::ApiResponse r = Reply(405, "method " + request.method + " not allowed: POST only");
    r.headers.emplace_back("Allow", "POST");
    return r;
  }
  const std::string* signature = Header(request, "x-hub-signature-256");
  if (options_.secret.empty()) {
    return Reply(401, "no webhook secret is configured: every delivery is refused");
  }
  if (signature == nullptr) return Reply(401, "X-Hub-Signature-256 is missing");
  if (!SignatureValid(options_.secret, request.body, *signature)) {
    return Reply(401, "X-Hub-Signature-256 does not match the body (is the webhook secret right?)");
  }
  if (const std::string* type = Header(request, "content-type");
      type != nullptr && MediaType(*type) != "application/json") {
    return Reply(415, "content type " + Quote(*type) +
                          " is not supported: set the webhook's content type to application/json");
  }
  const std::string* event_type = Header(request, "x-github-event");
  if (event_type == nullptr || event_type->empty()) return Reply(400, "X-GitHub-Event is missing");
  const std::string* delivery = Header(request, "x-github-delivery");
  if (delivery == nullptr || delivery->empty()) return Reply(400, "X-GitHub-Delivery is missing");

  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Reply(400, "the body is not valid JSON");
  if (!body.is_object()) return Reply(400, "the body is not a JSON object");
  Result<Translated> t = Translate(*event_type, *delivery, body, options_.label_in);
  if (!t.ok()) return Reply(400, t.error().message());

  if (!t->repo.empty() && options_.configured && !options_.configured(t->repo)) {
    return Reply(202, "ignored: repository " + Quote(t->repo) + " is not configured for kiln");
  }
  if (*event_type == "ping") return Reply(200, "pong");
  if (!t->event) return Reply(202, "ignored: " + t->ignored);

  t->event->fingerprint = Fingerprint(*t->event, request.body);
  Result<bool> appended = inbox_.Append(*t->event, NowMs());
  if (!appended.ok()) {
    return Reply(503, "storing delivery " + *delivery + ": " + appended.error().message());
  }
  if (!*appended) {
    return Reply(200, "duplicate delivery " + *delivery + ": this event was already received (" +
                          t->event->fingerprint + ")");
  }
  if (options_.on_event) options_.on_event();
  return Reply(201, "queued");
}

}  // namespace kiln::github
