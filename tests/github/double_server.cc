// The double's HTTPS server: Beast over an OpenSSL stream, one thread per
// connection with keep-alive; it authenticates each request, applies injected
// faults, routes /api/v3 to the REST handlers and /{owner}/{name}.git/ to
// git http-backend, adds GitHub's rate-limit headers and records the answer.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <regex>

#include "tests/github/double_internal.h"

namespace kiln::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using ghd::Call;
using ghd::Caller;
using ghd::Reply;

struct GitHubDouble::Impl::Server {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::ssl::context ssl{asio::ssl::context::tls_server};
  std::thread accept_thread;
  std::mutex mu;  // guards fds and threads
  std::vector<int> fds;
  std::vector<std::thread> threads;
};

namespace {

constexpr size_t kBodyLimit = 100u << 20;  // packs can be large

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void SplitTarget(Call& call) {
  size_t q = call.target.find('?');
  call.path = call.target.substr(0, q);
  if (q == std::string::npos) return;
  std::string query = call.target.substr(q + 1);
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string::npos) amp = query.size();
    std::string kv = query.substr(start, amp - start);
    if (!kv.empty()) {
      size_t eq = kv.find('=');
      std::string k = ghd::UrlDecode(kv.substr(0, eq));
      std::string v = eq == std::string::npos ? "" : ghd::UrlDecode(kv.substr(eq + 1));
      call.query[k] = v;
      call.query_order.emplace_back(k, v);
    }
    start = amp + 1;
  }
}

}  // namespace

GitHubDouble::Impl::Impl() = default;
GitHubDouble::Impl::~Impl() = default;

void GitHubDouble::Impl::StartServer() {
  server = std::make_unique<Server>();
  server->ssl.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3);
  server->ssl.use_certificate_chain_file(tls.cert);
  server->ssl.use_private_key_file(tls.key, asio::ssl::context::pem);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  server->acceptor.open(ep.protocol());
  server->acceptor.set_option(asio::socket_base::reuse_address(true));
  server->acceptor.bind(ep);
  server->acceptor.listen();
  port = server->acceptor.local_endpoint().port();
  server->accept_thread = std::thread([this] {
    while (!stopping) {
      boost::system::error_code ec;
      tcp::socket sock(server->io);
      server->acceptor.accept(sock, ec);
      if (ec || stopping) break;
      sock.set_option(tcp::no_delay(true), ec);
      int fd = sock.release(ec);
      std::lock_guard<std::mutex> lock(server->mu);
      server->fds.push_back(fd);
      server->threads.emplace_back([this, fd] { ServeConnection(fd); });
    }
  });
}

void GitHubDouble::Impl::StopServer() {
  if (!server || stopping.exchange(true)) return;
  // shutdown() wakes the threads blocked in accept() and read().
  ::shutdown(server->acceptor.native_handle(), SHUT_RDWR);
  if (server->accept_thread.joinable()) server->accept_thread.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(server->mu);
    for (int fd : server->fds) ::shutdown(fd, SHUT_RDWR);
    threads.swap(server->threads);
  }
  for (auto& t : threads) t.join();
  boost::system::error_code ec;
  server->acceptor.close(ec);
}

void GitHubDouble::Impl::ServeConnection(int fd) {
  asio::io_context io;
  beast::ssl_stream<tcp::socket> stream(io, server->ssl);
  boost::system::error_code ec;
  stream.next_layer().assign(tcp::v4(), fd, ec);
  if (!ec) stream.handshake(asio::ssl::stream_base::server, ec);
  beast::flat_buffer buf;
  while (!ec && !stopping) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    http::read(stream, buf, parser, ec);
    if (ec) break;
    auto req = parser.release();
    Call call;
    call.method = std::string(req.method_string());
    call.target = std::string(req.target());
    for (const auto& h : req) call.headers[Lower(std::string(h.name_string()))] = h.value();
    call.body = std::move(req.body());
    std::string auth;
    Reply reply;
    try {
      reply = Dispatch(call, &auth);
    } catch (const std::exception& e) {  // a git command failed: answer, do not terminate
      reply = Reply{500, {{"content-type", "text/plain"}}, std::string(e.what()) + "\n"};
    }
    http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
    for (const auto& [k, v] : reply.headers) res.insert(k, v);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(reply.body);
    res.prepare_payload();
    http::write(stream, res, ec);
    if (!res.keep_alive()) break;
  }
  // No TLS close_notify: a peer that went away would block it.
  boost::system::error_code ignored;
  stream.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
  std::lock_guard<std::mutex> lock(server->mu);
  auto& fds = server->fds;
  fds.erase(std::remove(fds.begin(), fds.end(), fd), fds.end());
  stream.next_layer().close(ignored);
}

Caller GitHubDouble::Impl::Authenticate(const Call& call) {
  auto it = call.headers.find("authorization");
  if (it == call.headers.end()) return {"none", "", ""};
  const std::string& v = it->second;
  size_t space = v.find(' ');
  std::string scheme = Lower(v.substr(0, space));
  std::string token = space == std::string::npos ? "" : v.substr(space + 1);
  while (!token.empty() && token.front() == ' ') token.erase(0, 1);
  if (scheme != "bearer" && scheme != "token") return {"bad", "", ""};
  if (std::count(token.begin(), token.end(), '.') == 2 && token.rfind("eyJ", 0) == 0) {
    std::string why = ghd::VerifyJwt(app_public.get(), token, opt.app_id, Now());
    if (why.empty()) return {"jwt", "", ""};
    return {"bad", "", why};
  }
  auto t = tokens.find(token);
  if (t != tokens.end()) {
    if (t->second > Now()) return {"installation", opt.app_slug + "[bot]", ""};
    return {"bad", "", ""};
  }
  if (!opt.static_token.empty() && token == opt.static_token) {
    return {"static", opt.static_token_user, ""};
  }
  return {"bad", "", ""};
}

Reply GitHubDouble::Impl::Dispatch(Call& call, std::string* auth_kind) {
  SplitTarget(call);
  Reply reply;
  static const std::regex kGitPath(R"(^/([^/]+)/([^/]+)\.git(/.*)$)");
  std::smatch m;
  bool api = call.path == "/api/v3" || call.path.rfind("/api/v3/", 0) == 0;
  if (api) {
    call.path = call.path.substr(7);
    std::lock_guard<std::mutex> lock(mu);
    Caller caller = Authenticate(call);
    *auth_kind = caller.kind;
    bool faulted = false;
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      if ((!it->method.empty() && it->method != call.method) ||
          !std::regex_match(call.path, std::regex(it->path_regex))) {
        continue;
      }
      reply.status = it->status;
      reply.body = it->body.is_null() ? "" : it->body.dump();
      for (const auto& [k, v] : it->headers) reply.headers.emplace_back(k, v);
      if (--it->times <= 0) faults.erase(it);
      faulted = true;
      break;
    }
    if (!faulted) {
      try {
        reply = HandleApi(call, caller);
      } catch (const std::exception& e) {
        reply = ghd::Json(500, {{"message", std::string("github double: ") + e.what()}});
      }
    }
    ++used;
    int64_t remaining = std::max<int64_t>(0, 5000 - used);
    std::string request_id = ghd::RandomHex(2) + ":" + ghd::RandomHex(3) + ":" + ghd::RandomHex(4) +
                             ":" + ghd::RandomHex(4);
    // A fault's own headers (say x-ratelimit-remaining: 0) take the place of these.
    std::vector<std::pair<std::string, std::string>> standard = {
        {"content-type", "application/json; charset=utf-8"},
        {"x-ratelimit-limit", "5000"},
        {"x-ratelimit-remaining", std::to_string(remaining)},
        {"x-ratelimit-reset", std::to_string(reset_at)},
        {"x-ratelimit-used", std::to_string(used)},
        {"x-ratelimit-resource", "core"},
        {"x-github-api-version-selected", "2022-11-28"},
        {"x-github-request-id", request_id}};
    for (auto& [name, value] : standard) {
      bool set = std::any_of(reply.headers.begin(), reply.headers.end(),
                             [&](const auto& h) { return Lower(h.first) == name; });
      if (!set) reply.headers.emplace_back(name, value);
    }
  } else if (std::regex_match(call.path, m, kGitPath)) {
    std::string repo_name = m[1].str() + "/" + m[2].str();
    std::string user;
    {
      std::lock_guard<std::mutex> lock(mu);
      *auth_kind = "none";
      auto it = call.headers.find("authorization");
      if (it != call.headers.end()) {
        *auth_kind = "bad";
        if (Lower(it->second.substr(0, 6)) == "basic ") {
          std::string pair = ghd::Base64Decode(it->second.substr(6), false);
          size_t colon = pair.find(':');
          std::string password = colon == std::string::npos ? "" : pair.substr(colon + 1);
          Call as_token;
          as_token.headers["authorization"] = "token " + password;
          Caller c = Authenticate(as_token);
          if (c.kind == "installation" || c.kind == "static") {
            *auth_kind = c.kind;
            user = c.login;
          }
        }
      }
    }
    if (user.empty()) {
      reply.status = 401;
      reply.headers.emplace_back("www-authenticate", "Basic realm=\"GitHub\"");
      reply.headers.emplace_back("content-type", "text/plain");
      reply.body =
          "Invalid username or token. Password authentication is not supported for Git "
          "operations.\n";
    } else {
      reply = ServeGit(call, user, repo_name);
    }
  } else {
    *auth_kind = "none";
    reply.status = 404;
    reply.headers.emplace_back("content-type", "text/plain");
    reply.body = "Not Found\n";
  }
  std::lock_guard<std::mutex> lock(mu);
  requests.push_back({call.method, call.target, *auth_kind, reply.status, api ? reply.body : ""});
  return reply;
}

}  // namespace kiln::testing
