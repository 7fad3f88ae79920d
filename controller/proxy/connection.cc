#include "controller/proxy/connection.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/string_body.hpp>
#include <limits>

#include "base/strings.h"
#include "controller/proxy/rules.h"

namespace kiln::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {
// The request head (request line and headers) a client may send.
constexpr uint32_t kMaxHeadBytes = 64 * 1024;
// The client buffer holds the head and what follows it; bodies stream through up_.
constexpr size_t kMaxClientBuffer = 128 * 1024;
}  // namespace

Connection::Connection(std::shared_ptr<EndpointState> endpoint, uint64_t id, UnixSocket client)
    : registration_(endpoint, id),
      endpoint_(std::move(endpoint)),
      client_(std::move(client)),
      client_buffer_(kMaxClientBuffer),
      idle_timer_(client_.get_executor()),
      connect_timer_(client_.get_executor()),
      resolver_(client_.get_executor()) {}

Connection::~Connection() { Finish(); }

void Connection::Start() {
  asio::dispatch(client_.get_executor(), [self = shared_from_this()] {
    if (self->closed_) return;
    self->Touch();
    self->ArmIdleTimer(self->last_activity_ + self->Ms(self->endpoint_->policy().idle_timeout_ms));
    self->ReadHead();
  });
}

void Connection::Abort(std::shared_ptr<Connection> connection) {
  auto executor = connection->client_.get_executor();
  asio::post(executor, [self = std::move(connection)] { self->Close(); });
}

void Connection::ArmIdleTimer(Clock::time_point deadline) {
  idle_timer_.expires_at(deadline);
  idle_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->closed_) return;
    Clock::time_point due =
        self->last_activity_ + self->Ms(self->endpoint_->policy().idle_timeout_ms);
    if (Clock::now() < due) return self->ArmIdleTimer(due);
    self->NoteFailure("closed after " + std::to_string(self->endpoint_->policy().idle_timeout_ms) +
                      " ms without traffic");
    self->Close();
  });
}

void Connection::ReadHead() {
  request_.emplace();
  request_->header_limit(kMaxHeadBytes);
  // No limit (bodies stream through), but not boost::none: Beast 1.74 compares it wrongly.
  request_->body_limit(std::numeric_limits<uint64_t>::max());
  http::async_read_header(client_, client_buffer_, *request_,
                          [self = shared_from_this()](error_code ec, size_t) { self->OnHead(ec); });
}

void Connection::OnHead(error_code ec) {
  if (closed_) return;
  Touch();
  if (ec == http::error::end_of_stream || ec == asio::error::connection_reset) {
    return Close();  // the client is done (between requests, or before any)
  }
  record_ = Request{};
  record_open_ = true;
  response_started_ = false;
  started_ = Clock::now();
  record_.started = started_;
  if (ec) {
    record_.reason = "malformed request: " + ec.message();
    return Reply(http::status::bad_request, "malformed request: " + ec.message());
  }
  const auto& head = request_->get();
  record_.method = std::string(head.method_string());
  keep_alive_ = request_->keep_alive();
  Dispatch();
}

void Connection::Dispatch() {
  if (const auto& refuse = endpoint_->policy().refuse) {
    if (std::string why = refuse(); !why.empty()) {
      record_.reason = why;
      return Reply(http::status::service_unavailable, why);
    }
  }
  const auto& head = request_->get();
  std::string_view target = head.target();
  if (head.method() == http::verb::connect) return ServeConnect();
  std::string lower(target.substr(0, 8));
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (StartsWith(lower, "http://")) return ServeAbsolute();
  if (StartsWith(lower, "https://")) {
    record_.reason = "https:// in absolute form";
    return Reply(http::status::bad_request,
                 "https:// URLs must go through a CONNECT tunnel (set HTTPS_PROXY), not be "
                 "sent to the proxy in the clear");
  }
  if (StartsWith(target, "/gateway/")) return ServeGateway(target);
  record_.path = std::string(target.substr(0, 1024));
  record_.reason = "not a proxy or gateway request";
  Reply(http::status::bad_request,
        "'" + record_.path +
            "' is neither a proxy request (CONNECT host:port, or an absolute http:// URL) nor a "
            "gateway path (/gateway/<name>/...)");
}

bool Connection::Authorize(const Target& target) {
  record_.host = target.host;
  record_.port = target.port;
  const Rule* rule = FindRule(endpoint_->policy().allow, target);
  if (rule == nullptr) {
    std::string what = "'" + ToString(target) + "' is not on this run's allowlist";
    Deny(what, what + " (allowed: " + DescribeAllowlist(endpoint_->policy().allow) + ")");
    return false;
  }
  record_.allowed = true;
  record_.reason = ToString(*rule);
  return true;
}

void Connection::Deny(std::string reason, std::string body) {
  record_.allowed = false;
  record_.reason = std::move(reason);
  Reply(http::status::forbidden, std::move(body), /*denied=*/true);
}

void Connection::Reply(http::status status, std::string body, bool denied) {
  auto response = std::make_shared<http::response<http::string_body>>(
      status, request_ && request_->is_header_done() ? request_->get().version() : 11,
      "kiln proxy: " + body + "\n");
  response->set(http::field::content_type, "text/plain; charset=utf-8");
  if (denied) response->set("X-Kiln-Proxy-Denied", "1");
  response->keep_alive(false);
  response->prepare_payload();
  record_.status = static_cast<int>(status);
  response_started_ = true;
  http::async_write(client_, *response,
                    [self = shared_from_this(), response](error_code ec, size_t) {
                      if (ec) self->record_.status = 0;  // the client got no reply
                      self->Close();
                    });
}

void Connection::Fail(http::status status, std::string what) {
  NoteFailure(what);
  if (response_started_) return Close();
  Reply(status, std::move(what));
}

void Connection::NoteFailure(std::string_view what) {
  if (!record_open_) return;
  record_.reason += record_.reason.empty() ? std::string(what) : "; " + std::string(what);
}

void Connection::Finish() {
  if (!record_open_) return;
  record_open_ = false;
  record_.duration_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count());
  endpoint_->Report(record_);
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  error_code ec;
  client_.close(ec);
  if (upstream_) upstream_->Close();
  resolver_.cancel();
  idle_timer_.cancel();
  connect_timer_.cancel();
}

void Connection::CountSent(size_t n) {
  record_.bytes_sent += n;
  endpoint_->CountBytes(n, 0);
}

void Connection::CountReceived(size_t n) {
  record_.bytes_received += n;
  endpoint_->CountBytes(0, n);
}

}  // namespace kiln::proxy
