// The connection to an upstream server: a TCP socket, with TLS on top for
// https gateways. It is itself an AsyncStream, so the HTTP relay code works
// the same over both.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <optional>
#include <utility>

namespace kiln::proxy {

class Upstream {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;

  // tls: nullptr for plain TCP.
  Upstream(executor_type executor, boost::asio::ssl::context* tls) : socket_(executor) {
    if (tls != nullptr) tls_.emplace(socket_, *tls);
  }
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return socket_; }
  // nullptr for plain TCP.
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>* tls() { return tls_ ? &*tls_ : nullptr; }

  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_.async_read_some(buffers, std::forward<Handler>(handler));
    }
  }
  template <typename Buffers, typename Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_.async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

  // Aborts pending operations; the TLS session is not shut down cleanly
  // (the proxy only does this when it gives up on the connection).
  void Close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

 private:
  boost::asio::ip::tcp::socket socket_;
  std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
};

}  // namespace kiln::proxy
