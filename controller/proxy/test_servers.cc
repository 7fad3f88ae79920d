#include "controller/proxy/test_servers.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/read.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace kiln::proxy::testing {

using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

std::function<void(const Request&)> Recorder::Callback() {
  return [this](const Request& request) {
    std::lock_guard lock(mu_);
    requests_.push_back(request);
    cv_.notify_all();
  };
}

std::vector<Request> Recorder::WaitFor(size_t n) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::seconds(10), [&] { return requests_.size() >= n; });
  return requests_;
}

std::vector<Request> Recorder::Snapshot() {
  std::lock_guard lock(mu_);
  return requests_;
}

bool Eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

LoopbackServer::LoopbackServer(std::function<void(tcp::socket&)> serve)
    : serve_(std::move(serve)),
      acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
      port_(acceptor_.local_endpoint().port()) {
  accept_thread_ = std::thread([this] {
    for (;;) {
      error_code ec;
      tcp::socket socket = acceptor_.accept(ec);
      if (ec) return;  // shut down by the destructor
      std::lock_guard lock(mu_);
      open_.push_back(socket.native_handle());
      threads_.emplace_back([this, socket = std::move(socket)]() mutable {
        serve_(socket);
        std::lock_guard lock(mu_);
        std::erase(open_, socket.native_handle());
        error_code ignored;
        socket.close(ignored);
      });
    }
  });
}

LoopbackServer::~LoopbackServer() {
  ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // accept() returns EINVAL
  accept_thread_.join();
  {
    std::lock_guard lock(mu_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
  }
  for (std::thread& t : threads_) t.join();
}

HttpUpstream::HttpUpstream(Handler handler, std::shared_ptr<asio::ssl::context> tls)
    : handler_(std::move(handler)), tls_(std::move(tls)), server_([this](tcp::socket& socket) {
        if (!tls_) return Serve(socket);
        asio::ssl::stream<tcp::socket&> stream(socket, *tls_);
        error_code ec;
        stream.handshake(asio::ssl::stream_base::server, ec);
        if (!ec) Serve(stream);
      }) {}

template <typename Stream>
void HttpUpstream::Serve(Stream& stream) {
  boost::beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> request;
    error_code ec;
    http::read(stream, buffer, request, ec);
    if (ec) return;
    Exchange exchange;
    exchange.request.method = std::string(request.method_string());
    exchange.request.target = std::string(request.target());
    for (const auto& field : request) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      exchange.request.headers[name] = std::string(field.value());
    }
    exchange.request.body = request.body();
    {
      std::lock_guard lock(mu_);
      seen_.push_back(exchange.request);
    }
    exchange.write = [&stream](std::string_view bytes) {
      asio::write(stream, asio::buffer(bytes));
    };
    try {
      if (handler_) {
        handler_(exchange);
      } else {
        exchange.write(Response(200, "hello"));
      }
    } catch (const boost::system::system_error&) {
      return;  // the client went away
    }
    if (!request.keep_alive()) return;
  }
}

std::vector<SeenRequest> HttpUpstream::seen() {
  std::lock_guard lock(mu_);
  return seen_;
}

std::string HttpUpstream::Response(int status, std::string_view body,
                                   std::string_view extra_headers) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra_headers) + "\r\n" + std::string(body);
}

EchoServer::EchoServer(bool firehose)
    : server_([firehose](tcp::socket& socket) {
        error_code ec;
        std::array<char, 16 * 1024> buffer{};
        if (firehose) {
          while (!ec) asio::write(socket, asio::buffer(buffer), ec);
          return;
        }
        for (;;) {
          size_t n = socket.read_some(asio::buffer(buffer), ec);
          if (ec == asio::error::eof) {
            socket.shutdown(tcp::socket::shutdown_send, ec);
            return;
          }
          if (ec) return;
          asio::write(socket, asio::buffer(buffer.data(), n), ec);
          if (ec) return;
        }
      }) {}

TestPki MakePki(const TempDir& dir, const std::string& name) {
  TestPki pki{dir / (name + "-ca.pem"), dir / (name + "-server.pem"), dir / (name + "-server.key")};
  std::string ca_key = dir / (name + "-ca.key");
  std::string csr = dir / (name + "-server.csr");
  std::string ext = dir / (name + "-ext.cnf");
  std::ofstream(ext) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  const std::string ec_key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string commands[] = {
      "openssl req -x509" + ec_key + " -keyout " + ca_key + " -out " + pki.ca_file +
          " -days 2 -subj /CN=kiln-test-" + name + "-ca",
      "openssl req" + ec_key + " -keyout " + pki.key_file + " -out " + csr + " -subj /CN=localhost",
      "openssl x509 -req -in " + csr + " -CA " + pki.ca_file + " -CAkey " + ca_key +
          " -CAcreateserial -days 2 -extfile " + ext + " -out " + pki.cert_file,
  };
  for (const std::string& command : commands) {
    EXPECT_EQ(std::system((command + " >/dev/null 2>&1").c_str()), 0) << command;
  }
  return pki;
}

std::shared_ptr<asio::ssl::context> ServerTls(const TestPki& pki) {
  auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  tls->use_certificate_chain_file(pki.cert_file);
  tls->use_private_key_file(pki.key_file, asio::ssl::context::pem);
  return tls;
}

Client::Client(const std::string& socket_path) : socket_(io_) {
  socket_.connect(asio::local::stream_protocol::endpoint(socket_path));
  timeval timeout{10, 0};  // a stuck proxy fails the test instead of hanging it
  ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
}

void Client::Send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }

void Client::ShutdownSend() { socket_.shutdown(asio::socket_base::shutdown_send); }

std::string Client::ReadAll() {
  std::string out = std::move(pending_);
  pending_.clear();
  std::array<char, 16 * 1024> chunk;
  for (;;) {
    error_code ec;
    size_t n = socket_.read_some(asio::buffer(chunk), ec);
    out.append(chunk.data(), n);
    if (ec) return out;
  }
}

std::string Client::ReadUntil(std::string_view marker) {
  std::array<char, 16 * 1024> chunk;
  while (pending_.find(marker) == std::string::npos) {
    error_code ec;
    size_t n = socket_.read_some(asio::buffer(chunk), ec);
    pending_.append(chunk.data(), n);
    if (ec) break;
  }
  size_t end = pending_.find(marker);
  end = end == std::string::npos ? pending_.size() : end + marker.size();
  std::string out = pending_.substr(0, end);
  pending_.erase(0, end);
  return out;
}

http::response<http::string_body> Client::Call(const http::request<http::string_body>& request) {
  http::write(socket_, request);
  http::response<http::string_body> response;
  auto prepared = buffer_.prepare(pending_.size());
  buffer_.commit(asio::buffer_copy(prepared, asio::buffer(pending_)));
  pending_.clear();
  http::read(socket_, buffer_, response);
  return response;
}

http::response<http::string_body> Client::CallRaw(std::string_view bytes) {
  Send(bytes);
  http::response<http::string_body> response;
  http::read(socket_, buffer_, response);
  return response;
}

}  // namespace kiln::proxy::testing
