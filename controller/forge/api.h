// The local forge's HTTP API (docs/api.md): GitHub's REST routes and JSON
// shapes under /api/v1 for repositories, issues, comments, labels, pull
// requests, their files and diffs, reviews (pending ones too), review
// comments, merges and commit statuses; a member a route does not take or
// cannot honour is refused (422), never ignored. Every request carries
// "Authorization: Bearer <token>" (tokens from `kiln forge user add`); the
// token's user is the acting user of what the request does.
//
// Api is the routing and the work, request in, response out, without
// sockets (unit-tested as such); ApiServer puts it on a TCP port with
// Boost.Beast.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "controller/forge/local.h"
#include "controller/forge/users.h"
#include "controller/forge/wire.h"

namespace kiln::forge {

struct ApiRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // path and query: "/api/v1/repos/a/b/issues?state=all"
  std::string authorization;  // the Authorization header, as sent
  std::string body;
  std::map<std::string, std::string> headers;  // every header; names lower-cased
};

// The open end of a response that stays open (server-sent events): what is
// written reaches the client in order, after the response's head.
class Stream {
 public:
  virtual ~Stream() = default;
  // Queues bytes for the client; safe from any thread. False once the
  // stream is closed: the client went, fell more than 4 MiB behind, or the
  // server stopped. Nothing is sent after that.
  virtual bool Write(std::string bytes) = 0;
  virtual bool open() const = 0;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
  std::string body;
  // When set, the response stays open: the server sends the head and body,
  // then calls open_stream with the stream (on the server's thread), and
  // the connection carries nothing else. A stream has no deadline; the
  // server notices a client that leaves.
  std::function<void(std::shared_ptr<Stream>)> open_stream;
};

// A request taken over by a streamed route (ApiServer::StreamedRoute): its
// body read, and its reply written, a piece at a time, on a worker, each
// read and write within the server's 30 s. Not safe across threads.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // The body's next piece, at most max bytes; "" at its end. An error when
  // the client stalls, leaves or sends what is not HTTP.
  virtual Result<std::string> ReadBody(size_t max) = 0;
  // A whole reply; only before Begin.
  virtual Status Reply(const ApiResponse& response) = 0;
  // A reply of unknown length: its head (status, type, headers; the body
  // ignored), then its body in pieces (chunked), then its end. A reply
  // left without End is cut off, and the client sees it as broken.
  virtual Status Begin(const ApiResponse& head) = 0;
  virtual Status Write(std::string_view piece) = 0;
  virtual Status End() = 0;
};

// The API token an Authorization header carries, as GitHub takes one:
// "Bearer T", "token T", or HTTP basic auth with T as the password (any
// user name); "" for none.
std::string TokenOf(std::string_view authorization);

// s %XX-escaped but for RFC 3986's unreserved characters and those in keep
// (for a query GitHub's links keep ",:"; for a path segment ":@").
std::string PercentEncode(std::string_view s, std::string_view keep);

// %XX escapes (and '+' as a space when plus_is_space) decoded; nullopt for a
// malformed escape.
std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space);
// "a=1&b=x+y" (a query, or a form's body) as names and values; nullopt when
// an escape is malformed.
std::optional<std::map<std::string, std::string>> ParseQuery(std::string_view query);

// Not thread-safe: the server calls Handle from one worker.
class Api {
 public:
  // bot: the pipeline's forge user (pipeline.bot), whose token, should one
  // exist, is refused: an API caller must not act as the author of kiln's
  // pull requests. web_url: the web view's base URL (config::WebUrl), where
  // html_url points; api_url: where this API is served, for url and the
  // other links ("": web_url + "/api/v1", as `kiln serve` serves it).
  static Result<std::unique_ptr<Api>> Open(std::string store_path, std::string repos_dir,
                                           std::string bot, std::string_view web_url,
                                           std::string_view api_url = "");

  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  ApiResponse Handle(const ApiRequest& request);

 private:
  Api(std::string store_path, std::string repos_dir, std::string bot, wire::Links links,
      std::unique_ptr<Users> users)
      : store_path_(std::move(store_path)),
        repos_dir_(std::move(repos_dir)),
        bot_(std::move(bot)),
        links_(std::move(links)),
        users_(std::move(users)) {}

  // The forge acting as user, opened on first use and kept.
  Result<Local*> ForgeFor(const std::string& user);

  const std::string store_path_;
  const std::string repos_dir_;
  const std::string bot_;
  const wire::Links links_;
  std::unique_ptr<Users> users_;
  std::map<std::string, std::unique_ptr<Local>> forges_;
};

// HTTP/1.1 with keep-alive on listen ("host:port"; port 0 picks a free one),
// one io thread for the sockets and `workers` threads that call the handler.
// A request must arrive within 30 s of the connection or of the previous
// response, its body is at most body_limit bytes (413 otherwise; a streamed
// route's has no limit here), and a response must be taken within 30 s; a
// stalled client is disconnected.
class ApiServer {
 public:
  // Called on a worker thread: with one worker, one request at a time.
  using Handler = std::function<ApiResponse(const ApiRequest&)>;
  static constexpr uint64_t kDefaultBodyLimit = 1 << 20;

  // Requests too large to hold (a git push, a clone's reply): wants says,
  // from a request's head alone (no body; on the server's thread, so
  // quickly), whether handle takes it over. handle then runs on a worker of
  // the streamed routes' own (4: more wait their turn, the pages do not)
  // with the request's body unread, reads and replies through the Exchange,
  // and the connection closes after it (what the client still sends read
  // and dropped for up to 5 s first). No body_limit applies; an exception
  // out of handle is a 500 when nothing was sent yet.
  struct StreamedRoute {
    std::function<bool(const ApiRequest& head)> wants;
    std::function<void(const ApiRequest& head, Exchange& exchange)> handle;
  };

  static Result<std::unique_ptr<ApiServer>> Start(const std::string& listen, Handler handler,
                                                  uint64_t body_limit = kDefaultBodyLimit,
                                                  int workers = 1, StreamedRoute streamed = {});
  // The local forge's API (Api) alone; web_url and api_url as Api::Open's
  // ("" api_url: http://<listen>/api/v1).
  static Result<std::unique_ptr<ApiServer>> Start(const std::string& listen, std::string store_path,
                                                  std::string repos_dir, std::string bot,
                                                  std::string_view web_url,
                                                  std::string_view api_url = "");
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  uint16_t port() const;

 private:
  struct Impl;
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::forge
