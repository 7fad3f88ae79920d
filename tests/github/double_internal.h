// The GitHub double's insides, shared by its .cc files: the in-memory state
// (one Repo per repository, issues and pull requests in one numbered map),
// GitHubDouble::Impl, and the helpers for crypto, processes and time.
// Everything in Impl marked "mu held" expects the caller to hold mu.
#pragma once

#include <openssl/evp.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/github/double.h"

namespace kiln::testing {

namespace ghd {

using json = nlohmann::json;

// One HTTP request as the handlers see it (header names lower-cased).
struct Call {
  std::string method;
  std::string target;  // path and query as sent
  std::string path;    // without the query (and without /api/v3 for the REST API)
  std::map<std::string, std::string> query;
  std::vector<std::pair<std::string, std::string>> query_order;  // as sent, for Link URLs
  std::map<std::string, std::string> headers;
  std::string body;
};

struct Reply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// GitHub's JSON answers: a body; an error {"message", "documentation_url"};
// a 422 "Validation Failed" with its errors (an array).
inline constexpr char kRestDocs[] = "https://docs.github.com/rest";
inline Reply Json(int status, const json& body) { return Reply{status, {}, body.dump()}; }
inline Reply Error(int status, const std::string& message, const char* docs = kRestDocs) {
  return Json(status, {{"message", message}, {"documentation_url", docs}});
}
inline Reply Invalid(const json& errors, const char* docs = kRestDocs) {
  return Json(422,
              {{"message", "Validation Failed"}, {"errors", errors}, {"documentation_url", docs}});
}

// Who is calling: kind is one of Request::auth's values, or "god" for Get().
struct Caller {
  std::string kind;
  std::string login;
  std::string jwt_error;  // why a JWT was refused
};

struct Label {
  int64_t id = 0;
  std::string name, color, description;
};

struct IssueComment {
  int64_t id = 0;
  int64_t number = 0;
  std::string user, body, created_at, updated_at;
};

struct ReviewComment {
  int64_t id = 0;
  int64_t review_id = 0;
  std::string path, side, start_side, body, user, commit_id, created_at, diff_hunk;
  int line = 0;
  int start_line = 0;  // 0: a single-line comment
};

struct Review {
  int64_t id = 0;
  std::string user, body, state, commit_id, submitted_at;
};

// An issue, or a pull request when is_pull (they share the number sequence).
struct Issue {
  int64_t id = 0;
  int64_t pull_id = 0;
  int64_t number = 0;
  bool is_pull = false;
  std::string title, body, user, state = "open", created_at, updated_at, closed_at;
  std::vector<std::string> labels;  // names, in the order added
  // Pull requests only.
  std::string head, base, head_sha;
  bool draft = false;
  std::vector<Review> reviews;
  std::vector<ReviewComment> review_comments;
};

struct Status {
  int64_t id = 0;
  std::string sha, state, target_url, description, context, creator, created_at;
};

struct Repo {
  int64_t id = 0;
  std::string owner, name, bare;  // bare: path of the bare repository
  std::vector<Label> labels;
  std::map<int64_t, Issue> issues;
  int64_t next_number = 1;
  std::vector<IssueComment> comments;
  std::vector<Status> statuses;
  std::map<std::string, std::string> collaborators;  // login -> admin|maintain|write|triage|read
  // Branch name -> sha as last read from bare; reset after every push.
  std::optional<std::map<std::string, std::string>> branches;
  std::string full_name() const { return owner + "/" + name; }
};

// --- Time, randomness, encodings (double_crypto.cc) ---
int64_t NowUnix();
std::string Iso(int64_t unix_seconds);
std::string NowIso();
std::string RandomAlnum(size_t n);
std::string RandomHex(size_t bytes);
std::string Uuid();
std::string Hmac(const EVP_MD* md, const std::string& key, const std::string& data);  // hex
std::string Base64Decode(const std::string& in, bool url);                            // "" on error
std::string UrlDecode(const std::string& in, bool plus_is_space = true);  // false: paths
std::string UrlEncode(const std::string& in);

// Writes ca.pem, server.pem, server.key and app.pem under dir. Throws.
struct TlsFiles {
  std::string ca, cert, key, app_key;
};
TlsFiles MakeTlsFiles(const std::string& dir);
// The App key's public half, for Verify Jwt. Throws.
std::shared_ptr<EVP_PKEY> LoadPublicKey(const std::string& private_pem_file);
// "" when jwt is a valid App JWT for app_id, else why not.
std::string VerifyJwt(EVP_PKEY* key, const std::string& jwt, int64_t app_id, int64_t now);

// --- Processes (double_git.cc) ---
struct ProcResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs argv with env (empty: this process's environment), input on stdin.
ProcResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
               const std::string& input = "");
// git ARGS..., throwing std::runtime_error with its stderr when it fails.
std::string Git(const std::vector<std::string>& args);
// Parsed `git diff` hunks: path -> lines in hunks on each side.
struct DiffLines {
  struct Hunk {
    std::set<int> left, right;
  };
  std::set<int> left, right;
  std::vector<Hunk> hunks;  // each hunk's own lines: a range must lie inside one
  std::string first_hunk;   // a diff_hunk for review comments
};
std::map<std::string, DiffLines> ParseDiff(const std::string& diff);

// A webhook delivery and how to send it again.
struct StoredDelivery {
  GitHubDouble::Delivery d;
  std::string sha1;  // X-Hub-Signature; "" not sent
};

}  // namespace ghd

struct GitHubDouble::Impl {
  using json = ghd::json;
  GitHubDoubleOptions opt;
  ghd::TlsFiles tls;
  std::shared_ptr<EVP_PKEY> app_public;
  uint16_t port = 0;
  int64_t reset_at = 0;  // x-ratelimit-reset

  mutable std::mutex mu;
  // --- State (mu) ---
  std::map<std::string, ghd::Repo> repos;  // by full name
  std::map<std::string, int64_t> user_ids;
  std::map<std::string, std::set<std::string>> teams;  // "org/slug" -> logins
  std::map<std::string, int64_t> tokens;               // installation token -> expiry
  int64_t next_id = 1000;
  int64_t used = 0;  // requests answered, for x-ratelimit-*
  std::vector<Fault> faults;
  std::vector<Request> requests;

  // --- Server (server.cc) ---
  struct Server;
  Impl();
  ~Impl();  // out of line: Server is complete only in double_server.cc
  std::unique_ptr<Server> server;
  std::atomic<bool> stopping{false};
  void StartServer();
  void StopServer();
  void ServeConnection(int fd);
  ghd::Reply Dispatch(ghd::Call& call, std::string* auth_kind);

  // --- REST (rest.cc, pulls.cc); mu held ---
  ghd::Caller Authenticate(const ghd::Call& call);
  ghd::Reply HandleApi(const ghd::Call& call, const ghd::Caller& caller);
  ghd::Reply HandleRepoApi(const ghd::Call& call, const ghd::Caller& caller,
                           const std::vector<std::string>& seg);
  ghd::Reply HandlePulls(const ghd::Call& call, const ghd::Caller& caller, ghd::Repo& repo,
                         const std::vector<std::string>& seg);
  ghd::Reply Paginate(const ghd::Call& call, const json& items);
  ghd::Reply CreatePull(ghd::Repo& repo, const std::string& user, const json& req);
  ghd::Reply CreateReview(ghd::Repo& repo, ghd::Issue& pull, const std::string& user,
                          const json& req);
  ghd::Reply EditPull(ghd::Repo& repo, ghd::Issue& pull, const std::string& user, const json& req);
  ghd::Reply EditIssue(ghd::Repo& repo, ghd::Issue& issue, const std::string& user,
                       const json& req);

  // --- State changes shared by REST and the test-side methods; mu held ---
  int64_t NextId() { return next_id++; }
  int64_t Now() const { return opt.now_s ? opt.now_s() : ghd::NowUnix(); }
  ghd::Repo* FindRepo(const std::string& full_name);
  ghd::Repo& RepoOrThrow(const std::string& full_name);
  ghd::Issue& IssueOrThrow(ghd::Repo& repo, int64_t number);
  int64_t OpenIssueLocked(ghd::Repo& repo, const std::string& user, const std::string& title,
                          const std::string& body);
  ghd::Label& EnsureLabel(ghd::Repo& repo, const std::string& name);
  void AddLabelLocked(ghd::Repo& repo, ghd::Issue& issue, const std::string& user,
                      const std::string& name);
  bool RemoveLabelLocked(ghd::Repo& repo, ghd::Issue& issue, const std::string& user,
                         const std::string& name);
  ghd::IssueComment& CommentLocked(ghd::Repo& repo, ghd::Issue& issue, const std::string& user,
                                   const std::string& body);
  // Queues issues.<action>, or pull_request.<action> for a pull request, with
  // extra merged into the payload.
  // Sets the title and body req gives (strings that differ); returns
  // GitHub's "changes" of an edited event ({"title": {"from": old}, ...}).
  json ApplyTitleAndBody(ghd::Issue& item, const json& req);
  void IssueEvent(ghd::Repo& repo, ghd::Issue& issue, const std::string& action,
                  const std::string& user, json extra = json::object());
  void SetStateLocked(ghd::Repo& repo, ghd::Issue& issue, const std::string& user,
                      const std::string& state);
  std::string BranchShaLocked(ghd::Repo& repo, const std::string& branch);
  // After refs of repo changed (a push): push and pull_request.synchronize hooks.
  void RefsChanged(ghd::Repo& repo, const std::map<std::string, std::string>& before,
                   const std::map<std::string, std::string>& after, const std::string& pusher);

  // --- JSON objects in GitHub's shapes (json.cc); mu held ---
  std::string web_base() const;  // https://127.0.0.1:PORT
  std::string api_base() const;  // .../api/v3
  int64_t UserId(const std::string& login);
  json UserJson(const std::string& login);
  json RepoJson(const ghd::Repo& repo, const std::string& viewer);
  json LabelJson(const ghd::Repo& repo, const ghd::Label& label);
  json LabelsJson(ghd::Repo& repo, const ghd::Issue& issue);
  json IssueJson(ghd::Repo& repo, const ghd::Issue& issue);
  // full: with the counts and merge state that GitHub leaves out of lists.
  json PullJson(ghd::Repo& repo, const ghd::Issue& pull, bool full = true);
  json CommentJson(ghd::Repo& repo, const ghd::IssueComment& c);
  json ReviewJson(ghd::Repo& repo, const ghd::Issue& pull, const ghd::Review& r);
  json ReviewCommentJson(ghd::Repo& repo, const ghd::Issue& pull, const ghd::ReviewComment& c);
  json StatusJson(ghd::Repo& repo, const ghd::Status& s);
  std::string Association(const ghd::Repo& repo, const std::string& login) const;

  // --- git (git.cc) ---
  std::map<std::string, std::string> Branches(const std::string& bare);  // name -> sha
  ghd::Reply ServeGit(const ghd::Call& call, const std::string& remote_user,
                      const std::string& repo_name);

  // --- Webhooks (hooks.cc) ---
  std::vector<ghd::StoredDelivery> deliveries;  // mu
  std::deque<size_t> pending;                   // indices into deliveries; mu
  bool sending = false;                         // mu
  bool hooks_stopping = false;                  // mu
  std::condition_variable hooks_cv;
  std::thread sender;
  // Queues a delivery of event with payload plus repository, sender and
  // installation; mu held.
  void QueueHook(const std::string& event, json payload, ghd::Repo& repo,
                 const std::string& sender_login);
  void SenderLoop();
  ghd::StoredDelivery Send(ghd::StoredDelivery d) const;  // no lock needed
};

}  // namespace kiln::testing
