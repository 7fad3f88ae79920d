// CONNECT host:port: after the allowlist and address checks, "200 Connection
// established", then bytes both ways until both sides are done. A side that
// closes its sending half has that propagated (shutdown) to the other side,
// so protocols that half-close still work.
#include "controller/proxy/connection.h"

#include <boost/asio/write.hpp>

#include "controller/proxy/rules.h"

namespace kiln::proxy {

namespace asio = boost::asio;
namespace http = boost::beast::http;

void Connection::ServeConnect() {
  Result<Target> target = ParseHostPort(request_->get().target());
  if (target.ok() && target->port == 0) {
    target = Error::Invalid("missing port in " + Quote(request_->get().target()));
  }
  if (!target.ok()) {
    record_.reason = "bad CONNECT target: " + target.error().message();
    return Reply(http::status::bad_request, "CONNECT needs host:port: " + target.error().message());
  }
  if (!Authorize(*target)) return;
  bool check = !endpoint_->policy().allow_private_addresses && !target->ip_literal;
  Dial(*target, check, nullptr, [this] {
    // A client may send its first bytes (a TLS ClientHello) right behind the
    // CONNECT head; they are in client_buffer_ and go first.
    static constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection established\r\n\r\n";
    record_.status = 200;
    response_started_ = true;
    asio::async_write(client_, asio::buffer(kEstablished),
                      [self = shared_from_this()](error_code ec, size_t) {
                        if (self->closed_) return;
                        if (ec) return self->Close();
                        self->Touch();
                        self->StartTunnel();
                      });
  });
}

void Connection::StartTunnel() {
  size_t early = client_buffer_.size();
  if (early == 0) {
    pumps_running_ = 2;
    Pump(/*to_client=*/false);
    Pump(/*to_client=*/true);
    return;
  }
  asio::async_write(upstream_->socket(), client_buffer_.data(),
                    [self = shared_from_this()](error_code ec, size_t n) {
                      self->CountSent(n);
                      if (self->closed_) return;
                      if (ec) return self->Close();
                      self->client_buffer_.consume(n);
                      self->StartTunnel();
                    });
}

void Connection::Pump(bool to_client) {
  auto& buffer = to_client ? down_ : up_;
  auto on_read = [self = shared_from_this(), to_client, &buffer](error_code ec, size_t n) {
    if (self->closed_) return;
    if (ec == asio::error::eof) {
      // Propagate the half-close; this direction is done.
      error_code ignored;
      if (to_client) {
        self->client_.shutdown(asio::socket_base::shutdown_send, ignored);
      } else {
        self->upstream_->socket().shutdown(asio::socket_base::shutdown_send, ignored);
      }
      if (--self->pumps_running_ == 0) self->Close();
      return;
    }
    if (ec) return self->Close();
    self->Touch();
    auto on_written = [self, to_client](error_code ec, size_t n) {
      // Counted even when cut short: n is what did reach the other side.
      to_client ? self->CountReceived(n) : self->CountSent(n);
      if (self->closed_) return;
      if (ec) return self->Close();
      self->Touch();
      self->Pump(to_client);
    };
    if (to_client) {
      asio::async_write(self->client_, asio::buffer(buffer.data(), n), std::move(on_written));
    } else {
      asio::async_write(self->upstream_->socket(), asio::buffer(buffer.data(), n),
                        std::move(on_written));
    }
  };
  if (to_client) {
    upstream_->socket().async_read_some(asio::buffer(buffer), std::move(on_read));
  } else {
    client_.async_read_some(asio::buffer(buffer), std::move(on_read));
  }
}

}  // namespace kiln::proxy
