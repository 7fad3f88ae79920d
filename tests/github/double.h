// A GitHub double for the adapter's tests: a real HTTPS server on loopback
// that implements the REST v3 endpoints kiln uses with GitHub's JSON shapes,
// status codes and headers, serves git over smart HTTP through
// `git http-backend` with token auth, and sends webhook deliveries with real
// X-Hub-Signature-256 signatures, as github.com does when something changes
// (including the changes kiln itself makes through the API or git).
//
// State lives in memory (issues, pull requests, comments, labels, reviews,
// statuses, collaborators, teams, tokens) plus one bare repository per
// repository under dir. Thread-safe: the server thread, the delivery thread
// and the test's calls share one mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::testing {

struct GitHubDoubleOptions {
  std::string dir;  // working directory (created): bare repos, TLS files, keys
  // Deliveries go here ("http://127.0.0.1:PORT/webhooks/github"); "": recorded, not sent.
  std::string webhook_url;
  std::string webhook_secret;  // signs deliveries
  int64_t app_id = 4242;
  std::string app_slug = "kiln-factory";       // its bot user is "kiln-factory[bot]"
  int64_t installation_id = 77;                // one installation, on every repository
  int64_t token_ttl_s = 3600;                  // life of an installation access token
  std::string static_token;                    // a fine-grained token, when not empty ...
  std::string static_token_user = "kiln-bot";  // ... acting as this user
  int max_per_page = 100;                      // the cap on per_page; smaller forces pagination
  // The clock of installation tokens and App JWTs, in Unix seconds: a test
  // that moves kiln's clock moves this one with it. Default: the real one.
  std::function<int64_t()> now_s;
};

class GitHubDouble {
 public:
  // Listens on 127.0.0.1 with a certificate for 127.0.0.1 signed by a CA it
  // makes (ca_file()); makes the App's RSA key (app_key_file()). Throws
  // std::runtime_error when it cannot start.
  static std::unique_ptr<GitHubDouble> Start(GitHubDoubleOptions options);
  ~GitHubDouble();
  GitHubDouble(const GitHubDouble&) = delete;
  GitHubDouble& operator=(const GitHubDouble&) = delete;

  std::string api_url() const;  // "https://127.0.0.1:PORT/api/v3" (GHE style)
  std::string git_url(const std::string& repo) const;  // "https://127.0.0.1:PORT/owner/name.git"
  std::string ca_file() const;       // PEM of the CA that signed the server's cert
  std::string app_key_file() const;  // PEM private key of the App
  std::string bot_login() const;     // "kiln-factory[bot]"

  // --- What people do on github.com; each sends its webhook(s). ---
  // A repository "owner/name" whose main branch is source's HEAD (source: a
  // local git repository). owner gets admin.
  void CreateRepo(const std::string& full_name, const std::string& source);
  // permission: admin | maintain | write | triage | read
  void AddCollaborator(const std::string& repo, const std::string& user,
                       const std::string& permission);
  void AddTeamMember(const std::string& org, const std::string& team_slug, const std::string& user);
  int64_t OpenIssue(const std::string& repo, const std::string& user, const std::string& title,
                    const std::string& body);
  // Pushes branch of the local repository source to repo (as git would, as
  // the repository's owner, forced), sending push and, for an open pull
  // request on it, pull_request.synchronize.
  void PushBranch(const std::string& repo, const std::string& source, const std::string& branch);
  int64_t OpenPull(const std::string& repo, const std::string& user, const std::string& title,
                   const std::string& body, const std::string& head, const std::string& base);
  // Adds the label (made on the fly if the repository lacks it), as GitHub does.
  void AddLabel(const std::string& repo, int64_t number, const std::string& user,
                const std::string& label);
  void RemoveLabel(const std::string& repo, int64_t number, const std::string& user,
                   const std::string& label);
  int64_t Comment(const std::string& repo, int64_t number, const std::string& user,
                  const std::string& body);
  // event: APPROVE | REQUEST_CHANGES | COMMENT, on the pull request's head.
  int64_t Review(const std::string& repo, int64_t number, const std::string& user,
                 const std::string& event, const std::string& body);
  void Close(const std::string& repo, int64_t number, const std::string& user);

  // --- What is there now, as the REST API would answer a GET of path
  // (e.g. "/repos/o/r/issues/1/comments"), every page joined. Throws when
  // the answer is not 200. ---
  nlohmann::json Get(const std::string& path);
  std::string BranchSha(const std::string& repo, const std::string& branch);  // "" when none

  // --- Faults ---
  struct Fault {
    std::string method;  // "POST"; "" any
    std::string
        path_regex;  // matched against the path without query, e.g. "/repos/[^/]+/[^/]+/pulls"
    int status = 500;
    nlohmann::json body;                         // sent as the response body
    std::map<std::string, std::string> headers;  // e.g. {"retry-after", "1"}
    int times = 1;                               // how many matching requests get it
  };
  void Inject(Fault fault);
  // Every installation token issued so far is expired from now on (401).
  void ExpireTokens();

  // --- Records ---
  struct Request {
    std::string method;
    std::string target;  // path and query as sent
    std::string auth;    // "jwt", "installation", "static", "none", "bad"
    int status = 0;
    std::string body;
  };
  std::vector<Request> Requests() const;

  struct Delivery {
    std::string id;     // X-GitHub-Delivery
    std::string event;  // X-GitHub-Event
    std::string action;
    std::string body;  // as sent
    std::string signature;
    int status = 0;  // kiln's answer (0: not sent yet / no webhook_url / unreachable)
    std::string response;
  };
  std::vector<Delivery> Deliveries() const;
  // Waits until every queued delivery was sent (or timeout); false on timeout.
  bool WaitDeliveries(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Sends delivery id again with the same id, body and signature (GitHub's
  // "Redeliver"); returns it with the new answer. Recorded as one more
  // delivery with that id, as GitHub lists a redelivery.
  Delivery Redeliver(const std::string& id);
  // Sends anything: for bad signatures and bodies. Returns the answer (also
  // recorded in Deliveries()).
  Delivery SendRaw(const std::string& event, const std::string& id, const std::string& body,
                   const std::string& signature);

 private:
  struct Impl;
  explicit GitHubDouble(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::testing
