// HTTP over libcurl for the model clients and the GitHub adapter: RAII owners of the easy and
// multi handles (kept across requests so the connection is reused), explicit
// HTTPS_PROXY / HTTP_PROXY / NO_PROXY handling, and three timeouts. The multi
// interface drives the transfer so that the idle timeout has millisecond
// resolution (CURLOPT_LOW_SPEED_TIME has whole seconds).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace kiln::http_client {

struct Request {
  std::string method = "POST";  // GET sends no body; others send body (possibly empty)
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  uint64_t connect_timeout_ms = 10'000;
  // No byte received for this long ends the transfer. Applies from the start
  // when streaming, otherwise once the response has begun.
  uint64_t idle_timeout_ms = 120'000;
  uint64_t total_timeout_ms = 600'000;
  bool streaming = false;
  // A PEM bundle that replaces the system's trusted CAs (a GitHub Enterprise
  // server with a private CA); "" keeps the system's.
  std::string ca_file;
  // Called with body bytes of a 2xx response; other statuses collect the body.
  std::function<void(std::string_view)> on_body;
  // A response body longer than this ends the transfer with an error: what
  // the runtime acts on must fit in an event the controller can record.
  uint64_t max_body_bytes = 64ull << 20;
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // all of it unless on_body took it
  uint64_t latency_ms = 0;
  uint64_t bytes_received = 0;
  // A transport failure, possibly after a status and part of the body:
  // kTimeout for the timeouts (the message says which), kIO for connection
  // failures and cut transfers, kInvalidArgument for a body over
  // max_body_bytes.
  std::optional<Error> error;
};

class Client {
 public:
  Client();
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Response Send(const Request& req);

 private:
  void* easy_;
  void* multi_;
};

// The proxy for url from the environment: HTTPS_PROXY/https_proxy for https,
// HTTP_PROXY/http_proxy for http, then ALL_PROXY/all_proxy; "" when none.
// NO_PROXY/no_proxy is handed to libcurl, which applies it.
std::string ProxyFor(std::string_view url);

}  // namespace kiln::http_client
