// One client connection on an endpoint: reads request heads and serves each
// as a tunnel (CONNECT), a forwarded plain-HTTP request (absolute-form) or a
// gateway request (/gateway/<name>/...), reporting one Request per request.
//
// Threading: every member is touched only on the connection's strand (the
// executor of its client socket); Start() and Abort() may be called from any
// thread. Every pending operation holds a shared_ptr to the connection, and
// Close() cancels all of them, so the object dies soon after it.
#pragma once

#include "controller/proxy/beast.h"  // first: see there

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "controller/proxy/endpoint.h"
#include "controller/proxy/upstream.h"

namespace kiln::proxy {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using UnixSocket = boost::asio::local::stream_protocol::socket;

  Connection(std::shared_ptr<EndpointState> endpoint, uint64_t id, UnixSocket client);
  // Reports the request still open, once every operation has ended (so the
  // byte counts include what was in flight when it was cut short).
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Start();
  // Closes the connection (its tunnel, its upstream) as soon as its strand is
  // free. Takes the reference, so the caller's thread never ends up running
  // the destructor (and with it the callback).
  static void Abort(std::shared_ptr<Connection> connection);

 private:
  using error_code = boost::system::error_code;
  using Clock = std::chrono::steady_clock;
  using RequestParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;
  using ResponseParser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;
  using OutRequest = boost::beast::http::request<boost::beast::http::buffer_body>;
  using OutResponse = boost::beast::http::response<boost::beast::http::buffer_body>;
  static constexpr size_t kBufferSize = 16 * 1024;

  // connection.cc: request heads, dispatch, replies, records, timers.
  void ReadHead();
  void OnHead(error_code ec);
  void Dispatch();
  // The allowlist check; false when it denied (and replied 403).
  bool Authorize(const Target& target);
  void Deny(std::string reason, std::string body);
  // A reply from the proxy itself; the connection closes after it.
  void Reply(boost::beast::http::status status, std::string body, bool denied = false);
  // An allowed request failed upstream: reply status (or, once a response
  // has started, just close) and note what happened in the record.
  void Fail(boost::beast::http::status status, std::string what);
  void NoteFailure(std::string_view what);
  void Finish();  // reports the current request, once
  // Closes everything; the pending operations end with errors, and the last
  // one to let go of the connection reports its request. Idempotent.
  void Close();
  void CountSent(size_t n);
  void CountReceived(size_t n);
  void Touch() { last_activity_ = Clock::now(); }
  void ArmIdleTimer(Clock::time_point deadline);
  std::chrono::milliseconds Ms(uint64_t ms) const { return std::chrono::milliseconds(ms); }

  // dial.cc: resolve, check the addresses, connect, TLS handshake; then `then`.
  void Dial(const Target& target, bool check_addresses, boost::asio::ssl::context* tls,
            std::function<void()> then);
  void OnResolved(const Target& target, bool check_addresses,
                  const boost::asio::ip::tcp::resolver::results_type& results,
                  std::function<void()> then);
  void OnConnected(const Target& target, std::function<void()> then);

  // tunnel.cc: CONNECT.
  void ServeConnect();
  void StartTunnel();
  void Pump(bool to_client);

  // forward.cc: absolute-form requests and the HTTP relay shared with gateways.
  void ServeAbsolute();
  // Fills out_req_ from the client's request head: end-to-end headers, framing.
  void PrepareRequest(std::string target, const Target& upstream, bool https);
  void SendRequest();
  void PumpRequestBody();
  void ReadResponseHead();
  void OnResponseHead();
  void PumpResponseBody();
  void EndExchange();

  // gateway.cc
  void ServeGateway(std::string_view target);

  EndpointState::Registration registration_;  // first: destroyed last
  std::shared_ptr<EndpointState> endpoint_;
  UnixSocket client_;
  boost::beast::flat_buffer client_buffer_;
  boost::asio::steady_timer idle_timer_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::ip::tcp::resolver resolver_;
  // An https gateway's TLS context: declared before upstream_, so that it
  // outlives the stream that uses it.
  std::shared_ptr<boost::asio::ssl::context> gateway_tls_;
  std::optional<Upstream> upstream_;
  boost::beast::flat_buffer upstream_buffer_;

  std::optional<RequestParser> request_;
  OutRequest out_request_;
  std::optional<boost::beast::http::request_serializer<boost::beast::http::buffer_body>>
      request_writer_;
  std::optional<ResponseParser> response_;
  OutResponse out_response_;
  std::optional<boost::beast::http::response_serializer<boost::beast::http::buffer_body>>
      response_writer_;
  std::array<char, kBufferSize> up_;    // client -> upstream
  std::array<char, kBufferSize> down_;  // upstream -> client

  Request record_;
  bool record_open_ = false;
  bool response_started_ = false;  // a status line went to the client for this request
  bool keep_alive_ = false;        // the client wants the connection kept after this request
  bool connect_timed_out_ = false;
  bool closed_ = false;
  int pumps_running_ = 0;
  Clock::time_point started_;
  Clock::time_point last_activity_;
};

}  // namespace kiln::proxy
