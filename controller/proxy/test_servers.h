// Test support for the proxy tests: loopback upstream servers (HTTP, TLS,
// echo), a test CA made with the openssl CLI, blocking clients that talk to a
// proxy endpoint's unix socket, and a recorder for the endpoint's callback.
#pragma once

#include "tests/support/net.h"
#include "tests/support/temp_dir.h"

#include "controller/proxy/beast.h"  // first: see there

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "controller/proxy/proxy.h"

namespace kiln::proxy::testing {

namespace asio = boost::asio;
namespace http = boost::beast::http;

using TempDir = ::kiln::testing::TempDir;

// Collects what an endpoint reports.
class Recorder {
 public:
  std::function<void(const Request&)> Callback();
  // Waits (up to 10 s) until at least n requests were reported; returns all so far.
  std::vector<Request> WaitFor(size_t n);
  std::vector<Request> Snapshot();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> requests_;
};

// Polls cond every few milliseconds until it holds or timeout passes.
bool Eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

using kiln::testing::FreePort;

// What an upstream server was sent.
struct SeenRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
};

// Accepts on 127.0.0.1:<ephemeral>, serving each connection on its own
// thread. Destruction stops accepting, shuts down the open connections (so
// blocked reads return) and joins every thread.
class LoopbackServer {
 public:
  explicit LoopbackServer(std::function<void(asio::ip::tcp::socket&)> serve);
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;
  uint16_t port() const { return port_; }

 private:
  std::function<void(asio::ip::tcp::socket&)> serve_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<int> open_;  // fds of connections being served
  std::vector<std::thread> threads_;
  std::thread accept_thread_;
};

// One request being answered: write() sends raw bytes to the client.
struct Exchange {
  SeenRequest request;
  std::function<void(std::string_view)> write;
};

// A blocking HTTP/1.1 server on 127.0.0.1 (https when tls is given), a thread
// per connection. handler answers each request (by writing raw bytes); the
// default is "200 OK" with body "hello". It records every request it saw.
class HttpUpstream {
 public:
  using Handler = std::function<void(Exchange&)>;
  explicit HttpUpstream(Handler handler = nullptr,
                        std::shared_ptr<asio::ssl::context> tls = nullptr);
  uint16_t port() const { return server_.port(); }
  std::vector<SeenRequest> seen();

  // A complete response with Content-Length.
  static std::string Response(int status, std::string_view body,
                              std::string_view extra_headers = "");

 private:
  template <typename Stream>
  void Serve(Stream& stream);

  Handler handler_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::mutex mu_;
  std::vector<SeenRequest> seen_;
  LoopbackServer server_;  // last: its threads stop before the rest goes
};

// Echoes every byte back; after the client's end of stream, shuts down its
// sending side. With firehose set it ignores input and sends forever.
class EchoServer {
 public:
  explicit EchoServer(bool firehose = false);
  uint16_t port() const { return server_.port(); }

 private:
  LoopbackServer server_;
};

// A CA and a server certificate for DNS:localhost and IP:127.0.0.1, made by
// the openssl CLI in dir: <name>-ca.pem, <name>-server.pem, <name>-server.key.
struct TestPki {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};
TestPki MakePki(const TempDir& dir, const std::string& name);
std::shared_ptr<asio::ssl::context> ServerTls(const TestPki& pki);

// A blocking client connection to an endpoint's unix socket.
class Client {
 public:
  explicit Client(const std::string& socket_path);
  void Send(std::string_view bytes);
  void ShutdownSend();
  // Reads until the peer closes (or 10 s pass).
  std::string ReadAll();
  // Reads until `marker` has been received; returns everything read.
  std::string ReadUntil(std::string_view marker);
  // Writes request and reads one response.
  http::response<http::string_body> Call(const http::request<http::string_body>& request);
  // Sends raw bytes and reads one response.
  http::response<http::string_body> CallRaw(std::string_view bytes);

 private:
  asio::io_context io_;
  asio::local::stream_protocol::socket socket_;
  boost::beast::flat_buffer buffer_;
  std::string pending_;  // read by ReadUntil past its marker
};

}  // namespace kiln::proxy::testing
