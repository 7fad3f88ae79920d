// The egress proxy (Boost.Asio/Beast): the only way out of a sandbox.
//
// Each run gets an Endpoint, a unix socket that the controller binds into the
// sandbox; inside, kiln-proxy-forward exposes it on the sandbox's loopback
// (127.0.0.1:3128) for HTTP_PROXY. The endpoint serves
//   - CONNECT host:port           a tunnel, when host:port is on the run's allowlist
//   - GET http://host[:port]/...   plain HTTP forwarding (absolute-form), same check
//   - /gateway/<name>/<rest>       (origin-form) a model gateway: forwarded to the
//                                  gateway's upstream base URL + /<rest>, with the
//                                  provider's credentials added on the way out, so
//                                  the API key never enters the sandbox
// A host not allowed gets 403 with a body naming the rule (or the absence of
// one) and an X-Kiln-Proxy-Denied: 1 header; an unknown gateway 404; anything
// else (a malformed request, another origin-form path, https:// in absolute
// form) 400; an unreachable upstream 502 (504 on connect timeout); any
// request while the policy's refuse() gives a reason 503. Every
// request, allowed or not, is reported once, when it ends, to the endpoint's
// callback: the controller turns it into a `proxy.request` session-log
// record. docs/proxy.md has the details.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace kiln::proxy {

// One allowlist entry. host: an exact name ("api.github.com"), a suffix
// pattern ("*.pypi.org": any subdomain, not the apex), or an IP literal.
// port 0: 80 and 443 only. source says where the rule came from, for the 403
// body and the record ("config", "skill implement").
struct Rule {
  std::string host;
  uint16_t port = 0;
  std::string source;
};

// "host", "host:port", "*.suffix:port", "[::1]:8080" -> Rule. Error names the text.
// Names are lowercased (a trailing dot dropped) and IP literals put in canonical
// form, so the rule matches what clients send however they spell it.
Result<Rule> ParseRule(std::string_view text, std::string source);

// The rule as the 403 body and Request::reason show it: "*.pypi.org:443 (skill
// implement)", "api.github.com (config)" for port 0, "[::1]:8080 (config)".
std::string ToString(const Rule& rule);
// The rule alone, as ParseRule reads it back: "*.pypi.org:443", "api.github.com".
std::string RuleText(const Rule& rule);

struct Gateway {
  std::string name;      // [a-z0-9-]+, the path segment after /gateway/
  std::string upstream;  // base URL, http:// or https://, e.g. "https://api.anthropic.com"
  // Headers set on every forwarded request, replacing any the client sent
  // under the same name (e.g. {"x-api-key", KEY}). Client headers named
  // authorization, proxy-authorization, x-api-key and api-key are always
  // dropped.
  std::vector<std::pair<std::string, std::string>> headers;
  // https upstreams: PEM file of the CAs to trust; empty: the system's.
  std::string ca_file;
};

struct Policy {
  std::vector<Rule> allow;
  std::vector<Gateway> gateways;
  // Names that resolve to loopback, private, link-local or unspecified
  // addresses are refused unless the rule names the IP literal itself
  // (a DNS answer must not open the host's own services).
  bool allow_private_addresses = false;
  uint64_t connect_timeout_ms = 10'000;
  uint64_t idle_timeout_ms = 300'000;  // a tunnel or response silent this long is closed
  // Client connections open at once on this endpoint; more are closed as soon
  // as they are accepted (the agent must not exhaust the controller's fds).
  uint32_t max_connections = 256;
  // Asked before each request is served: a non-empty answer refuses it with
  // 503 and that reason. The controller refuses everything once the run's
  // session log cannot record what goes out.
  std::function<std::string()> refuse;
};

// What one request did.
struct Request {
  std::string method;  // CONNECT, GET, POST, ...
  std::string host;
  uint16_t port = 0;
  std::string path;             // origin path for HTTP and gateway requests; empty for CONNECT
  std::string gateway;          // gateway name, or empty
  int status = 0;               // HTTP status returned to the client; 0 when none was sent
  uint64_t bytes_sent = 0;      // client -> upstream (body / tunnel bytes)
  uint64_t bytes_received = 0;  // upstream -> client
  bool allowed = false;
  // The rule that matched ("*.pypi.org:443 (skill implement)", "gateway anthropic")
  // or why it was denied. When an allowed request failed upstream (502/504) or
  // was cut short, "; " and what happened follow the rule ("...; connect:
  // Connection refused").
  std::string reason;
  uint64_t duration_ms = 0;
  std::chrono::steady_clock::time_point started;  // when its head was read
};

struct Totals {
  std::atomic<uint64_t> requests_allowed{0};
  std::atomic<uint64_t> requests_denied{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
};

class Endpoint;

// The proxy: one io_context with a few threads serving every endpoint.
class Proxy {
 public:
  explicit Proxy(int threads = 2);
  ~Proxy();  // closes every endpoint and joins the threads
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Listens on a new unix socket at socket_path (which must not exist; its
  // directory is the caller's), mode 0666 so the sandbox's uid can connect.
  // on_request is called from proxy threads, once per request, possibly
  // concurrently for different connections; it must not destroy the Endpoint.
  // Errors: the path exists, bind/listen fails, or the policy is invalid (a
  // gateway name, upstream URL or CA file); each names the offending value.
  Result<std::unique_ptr<Endpoint>> Open(const std::string& socket_path, Policy policy,
                                         std::function<void(const Request&)> on_request);

  // Since the proxy started, every endpoint together (for /metrics).
  const Totals& totals() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Closing (destruction) stops accepting, aborts the endpoint's open
// connections, waits until no callback of it runs any more (each request in
// flight has been reported by then), and removes the socket file. Not from a
// proxy thread (its callback): it would wait for itself. An Endpoint may
// outlive its Proxy; the Proxy's destruction has closed it already.
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  virtual const std::string& socket_path() const = 0;
};

}  // namespace kiln::proxy
