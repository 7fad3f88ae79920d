// Connecting to an upstream: resolve once, check every address the name
// resolved to, connect only to those (no second lookup a DNS answer could
// change), then the TLS handshake for https gateways. Failures are answered
// here: 403 for a private address, 502 for an unreachable or unverifiable
// upstream, 504 when connect_timeout_ms passes.
#include "controller/proxy/connection.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

#include "controller/proxy/rules.h"

namespace kiln::proxy {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

void Connection::Dial(const Target& target, bool check_addresses, asio::ssl::context* tls,
                      std::function<void()> then) {
  upstream_.emplace(client_.get_executor(), tls);
  upstream_buffer_.clear();
  connect_timed_out_ = false;
  connect_timer_.expires_after(Ms(endpoint_->policy().connect_timeout_ms));
  connect_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->closed_) return;
    self->connect_timed_out_ = true;
    self->resolver_.cancel();
    self->upstream_->Close();
  });
  auto flags = tcp::resolver::numeric_service;
  if (target.ip_literal) flags |= tcp::resolver::numeric_host;
  resolver_.async_resolve(
      target.host, std::to_string(target.port), flags,
      [self = shared_from_this(), target, check_addresses, then = std::move(then)](
          error_code ec, const tcp::resolver::results_type& results) mutable {
        if (self->closed_) return;
        if (ec) {
          if (self->connect_timed_out_) {
            return self->Fail(http::status::gateway_timeout,
                              "resolving '" + target.host + "' timed out");
          }
          return self->Fail(http::status::bad_gateway,
                            "cannot resolve '" + target.host + "': " + ec.message());
        }
        self->OnResolved(target, check_addresses, results, std::move(then));
      });
}

void Connection::OnResolved(const Target& target, bool check_addresses,
                            const tcp::resolver::results_type& results,
                            std::function<void()> then) {
  if (check_addresses) {
    for (const auto& entry : results) {
      asio::ip::address address = entry.endpoint().address();
      if (IsPublicAddress(address)) continue;
      connect_timer_.cancel();
      std::string what = "'" + target.host + "' resolves to " + address.to_string() +
                         ", a loopback, private, link-local or multicast address";
      return Deny(what + " (matched " + record_.reason + ")",
                  what + "; refused: only a rule naming the IP address itself allows it (" +
                      record_.reason + " names the host)");
    }
  }
  asio::async_connect(
      upstream_->socket(), results,
      [self = shared_from_this(), target, then = std::move(then)](error_code ec,
                                                                  const tcp::endpoint&) mutable {
        if (self->closed_) return;
        if (ec) {
          if (self->connect_timed_out_) {
            return self->Fail(http::status::gateway_timeout,
                              "connecting to '" + ToString(target) + "' timed out after " +
                                  std::to_string(self->endpoint_->policy().connect_timeout_ms) +
                                  " ms");
          }
          return self->Fail(http::status::bad_gateway,
                            "cannot connect to '" + ToString(target) + "': " + ec.message());
        }
        self->OnConnected(target, std::move(then));
      });
}

void Connection::OnConnected(const Target& target, std::function<void()> then) {
  // What the proxy relays goes out as it comes: no wait for a delayed ACK
  // between a request's head and its body.
  error_code ignored;
  upstream_->socket().set_option(tcp::no_delay(true), ignored);
  auto* tls = upstream_->tls();
  if (tls == nullptr) {
    connect_timer_.cancel();
    return then();
  }
  // SNI names hosts only; an IP literal is checked against the certificate's IP SANs.
  if (!target.ip_literal &&
      SSL_set_tlsext_host_name(tls->native_handle(), target.host.c_str()) != 1) {
    return Fail(http::status::bad_gateway, "TLS: cannot set SNI '" + target.host + "'");
  }
  tls->set_verify_mode(asio::ssl::verify_peer);
  tls->set_verify_callback(asio::ssl::host_name_verification(target.host));
  tls->async_handshake(asio::ssl::stream_base::client, [self = shared_from_this(), target,
                                                        then = std::move(then)](error_code ec) {
    if (self->closed_) return;
    if (ec) {
      if (self->connect_timed_out_) {
        return self->Fail(http::status::gateway_timeout,
                          "TLS handshake with '" + ToString(target) + "' timed out");
      }
      return self->Fail(http::status::bad_gateway,
                        "TLS handshake with '" + ToString(target) + "' failed: " + ec.message());
    }
    self->connect_timer_.cancel();
    then();
  });
}

}  // namespace kiln::proxy
