// Forwarding HTTP requests: absolute-form requests (GET http://host/path) and,
// through the same relay, gateway requests. The request head is rewritten
// (hop-by-hop fields dropped, Host set, framing set by the proxy) and bodies
// stream through Beast's buffer_body parsers and serializers a buffer at a
// time in both directions, so large, chunked or event-stream bodies are never
// held whole: each piece read from one side is written to the other before
// the next is read.
#include "controller/proxy/connection.h"

#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <limits>

#include "controller/proxy/rules.h"

namespace kiln::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr uint32_t kMaxResponseHeadBytes = 64 * 1024;

// Fields that describe one hop (RFC 9110 7.6.1), the proxy's own (Proxy-*),
// and those the proxy sets itself (Host, framing, Expect).
bool IsHopByHop(std::string_view name) {
  static constexpr std::string_view kFields[] = {
      "connection", "keep-alive", "te",     "trailer",        "transfer-encoding",
      "upgrade",    "host",       "expect", "content-length",
  };
  for (std::string_view field : kFields) {
    if (beast::iequals(name, field)) return true;
  }
  return name.size() >= 6 && beast::iequals(name.substr(0, 6), "proxy-");
}

void CopyEndToEnd(const http::fields& from, http::fields& to) {
  http::token_list listed(from[http::field::connection]);  // more hop-by-hop fields
  for (const auto& field : from) {
    std::string_view name = field.name_string();
    if (IsHopByHop(name)) continue;
    bool in_connection = false;
    for (const auto& token : listed) in_connection = in_connection || beast::iequals(token, name);
    if (!in_connection) to.insert(name, field.value());
  }
}

std::string HostHeader(const Target& target, bool https) {
  std::string host = ToString(target);  // host:port, IPv6 bracketed
  if (target.port == (https ? 443 : 80)) host.resize(host.rfind(':'));
  return host;
}

}  // namespace

void Connection::ServeAbsolute() {
  Result<Url> url = ParseUrl(request_->get().target());
  if (!url.ok()) {
    record_.reason = "bad URL: " + url.error().message();
    return Reply(http::status::bad_request, url.error().message());
  }
  record_.path = url->path;
  if (!Authorize(url->target)) return;
  PrepareRequest(url->path, url->target, /*https=*/false);
  bool check = !endpoint_->policy().allow_private_addresses && !url->target.ip_literal;
  Dial(url->target, check, nullptr, [this] { SendRequest(); });
}

void Connection::PrepareRequest(std::string target, const Target& upstream, bool https) {
  const auto& in = request_->get();
  request_writer_.reset();
  out_request_ = {};
  out_request_.method_string(in.method_string());
  out_request_.target(target);
  out_request_.version(11);
  CopyEndToEnd(in, out_request_);
  out_request_.set(http::field::host, HostHeader(upstream, https));
  // The parser validated the length; copied as text (reading it as a
  // boost::optional trips GCC 12's -Wmaybe-uninitialized inside Beast 1.74).
  if (in.has_content_length()) {
    out_request_.set(http::field::content_length, in[http::field::content_length]);
  } else if (request_->chunked()) {
    out_request_.chunked(true);
  }
  out_request_.body().data = nullptr;
  out_request_.body().more = true;
}

void Connection::SendRequest() {
  request_writer_.emplace(out_request_);
  http::async_write_header(
      *upstream_, *request_writer_, [self = shared_from_this()](error_code ec, size_t) {
        if (self->closed_) return;
        if (ec) {
          return self->Fail(http::status::bad_gateway, "sending the request: " + ec.message());
        }
        self->Touch();
        // The proxy dropped Expect; the client waiting for it gets its 100 from here.
        if (!self->request_->is_done() && self->request_->get().version() >= 11 &&
            beast::iequals(self->request_->get()[http::field::expect], "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          return asio::async_write(self->client_, asio::buffer(kContinue),
                                   [self](error_code ec, size_t) {
                                     if (self->closed_) return;
                                     if (ec) return self->Close();
                                     self->PumpRequestBody();
                                   });
        }
        self->PumpRequestBody();
      });
}

void Connection::PumpRequestBody() {
  if (request_->is_done()) {
    out_request_.body().data = nullptr;
    out_request_.body().size = 0;
    out_request_.body().more = false;
    return http::async_write(
        *upstream_, *request_writer_, [self = shared_from_this()](error_code ec, size_t) {
          if (self->closed_) return;
          if (ec && ec != http::error::need_buffer) {
            return self->Fail(http::status::bad_gateway, "sending the request: " + ec.message());
          }
          self->ReadResponseHead();
        });
  }
  auto& body = request_->get().body();
  body.data = up_.data();
  body.size = up_.size();
  http::async_read_some(
      client_, client_buffer_, *request_, [self = shared_from_this()](error_code ec, size_t) {
        if (self->closed_) return;
        if (ec && ec != http::error::need_buffer) {
          return self->Fail(http::status::bad_request, "reading the request body: " + ec.message());
        }
        self->Touch();
        size_t got = self->up_.size() - self->request_->get().body().size;
        if (got == 0) return self->PumpRequestBody();
        self->out_request_.body().data = self->up_.data();
        self->out_request_.body().size = got;
        self->out_request_.body().more = true;
        http::async_write(*self->upstream_, *self->request_writer_,
                          [self, got](error_code ec, size_t) {
                            if (self->closed_) return;
                            if (ec && ec != http::error::need_buffer) {
                              return self->Fail(http::status::bad_gateway,
                                                "sending the request body: " + ec.message());
                            }
                            self->Touch();
                            self->CountSent(got);
                            self->PumpRequestBody();
                          });
      });
}

void Connection::ReadResponseHead() {
  response_.emplace();
  response_->header_limit(kMaxResponseHeadBytes);
  // No limit (bodies stream through), but not boost::none: Beast 1.74 compares it wrongly.
  response_->body_limit(std::numeric_limits<uint64_t>::max());
  if (out_request_.method() == http::verb::head) response_->skip(true);
  http::async_read_header(*upstream_, upstream_buffer_, *response_,
                          [self = shared_from_this()](error_code ec, size_t) {
                            if (self->closed_) return;
                            if (ec) {
                              return self->Fail(http::status::bad_gateway,
                                                "reading the response head: " + ec.message());
                            }
                            self->Touch();
                            // Interim responses (100 Continue, 103 Early Hints) are not passed on.
                            if (self->response_->get().result_int() / 100 == 1)
                              return self->ReadResponseHead();
                            self->OnResponseHead();
                          });
}

void Connection::OnResponseHead() {
  const auto& in = response_->get();
  response_writer_.reset();
  out_response_ = {};
  out_response_.result(in.result_int());
  out_response_.reason(in.reason());
  out_response_.version(request_->get().version());
  CopyEndToEnd(in, out_response_);
  if (in.has_content_length()) {
    out_response_.set(http::field::content_length, in[http::field::content_length]);
  } else if (!response_->is_done()) {
    // Unknown length (chunked, or until the upstream closes): chunked to an
    // HTTP/1.1 client, until-close to an HTTP/1.0 one.
    if (out_response_.version() >= 11) {
      out_response_.chunked(true);
    } else {
      keep_alive_ = false;
    }
  }
  out_response_.keep_alive(keep_alive_);
  out_response_.body().data = nullptr;
  out_response_.body().more = true;
  response_writer_.emplace(out_response_);
  record_.status = in.result_int();
  response_started_ = true;
  http::async_write_header(client_, *response_writer_,
                           [self = shared_from_this()](error_code ec, size_t) {
                             if (self->closed_) return;
                             if (ec) return self->Close();
                             self->Touch();
                             self->PumpResponseBody();
                           });
}

void Connection::PumpResponseBody() {
  if (response_->is_done()) {
    out_response_.body().data = nullptr;
    out_response_.body().size = 0;
    out_response_.body().more = false;
    return http::async_write(client_, *response_writer_,
                             [self = shared_from_this()](error_code ec, size_t) {
                               if (self->closed_) return;
                               if (ec && ec != http::error::need_buffer) return self->Close();
                               self->EndExchange();
                             });
  }
  auto& body = response_->get().body();
  body.data = down_.data();
  body.size = down_.size();
  http::async_read_some(*upstream_, upstream_buffer_, *response_,
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (self->closed_) return;
                          if (ec && ec != http::error::need_buffer) {
                            self->NoteFailure("response body cut short: " + ec.message());
                            return self->Close();
                          }
                          self->Touch();
                          size_t got = self->down_.size() - self->response_->get().body().size;
                          if (got == 0) return self->PumpResponseBody();
                          self->out_response_.body().data = self->down_.data();
                          self->out_response_.body().size = got;
                          self->out_response_.body().more = true;
                          http::async_write(self->client_, *self->response_writer_,
                                            [self, got](error_code ec, size_t) {
                                              if (self->closed_) return;
                                              if (ec && ec != http::error::need_buffer)
                                                return self->Close();
                                              self->Touch();
                                              self->CountReceived(got);
                                              self->PumpResponseBody();
                                            });
                        });
}

void Connection::EndExchange() {
  upstream_->Close();
  Finish();
  if (!keep_alive_) {
    error_code ignored;
    client_.shutdown(asio::socket_base::shutdown_send, ignored);
    return Close();
  }
  ReadHead();
}

}  // namespace kiln::proxy
