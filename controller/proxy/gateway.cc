#include "controller/proxy/gateway.h"

#include <openssl/x509.h>
#include <unistd.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <cctype>
#include <map>
#include <mutex>
#include <set>

#include "base/fd.h"
#include "base/strings.h"
#include "controller/proxy/connection.h"

namespace kiln::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr std::string_view kPrefix = "/gateway/";

bool ValidName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

Result<std::shared_ptr<asio::ssl::context>> TlsContext(const Gateway& gateway) {
  try {
    auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    tls->set_verify_mode(asio::ssl::verify_peer);
    if (gateway.ca_file.empty()) {
      tls->set_default_verify_paths();
    } else {
      tls->load_verify_file(gateway.ca_file);
    }
    return tls;
  } catch (const boost::system::system_error& e) {
    std::string what = gateway.ca_file.empty() ? "loading the system's CA certificates"
                                               : "loading CA file " + Quote(gateway.ca_file);
    return Error::Invalid("gateway " + Quote(gateway.name) + ": " + what + ": " + e.what());
  }
}

}  // namespace

Result<std::shared_ptr<asio::ssl::context>> GatewayTls(const Gateway& gateway) {
  // A missing file: TlsContext says so, or the system's CA directory serves.
  const std::string version =
      FileVersion(gateway.ca_file.empty() ? X509_get_default_cert_file() : gateway.ca_file);
  struct Cached {
    std::string version;
    std::shared_ptr<asio::ssl::context> tls;
  };
  static std::mutex mu;
  static std::map<std::string, Cached> cache;  // by ca_file, "" for the system's
  std::lock_guard lock(mu);
  Cached& c = cache[gateway.ca_file];
  if (c.tls && c.version == version) return c.tls;
  KILN_ASSIGN_OR_RETURN(c.tls, TlsContext(gateway));
  c.version = version;
  return c.tls;
}

Result<std::vector<GatewayRoute>> BuildGatewayRoutes(const std::vector<Gateway>& gateways) {
  std::vector<GatewayRoute> routes;
  std::set<std::string> names;
  for (const Gateway& gateway : gateways) {
    if (!ValidName(gateway.name)) {
      return Error::Invalid("gateway name " + Quote(gateway.name) + ": must match [a-z0-9-]+");
    }
    if (!names.insert(gateway.name).second) {
      return Error::Invalid("gateway name " + Quote(gateway.name) + " used twice");
    }
    for (const auto& [name, value] : gateway.headers) {
      bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
      });
      if (!name_ok || value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
        return Error::Invalid("gateway " + Quote(gateway.name) + ": invalid header " + Quote(name));
      }
    }
    Result<Url> url = ParseUrl(gateway.upstream);
    if (!url.ok()) return url.error().Wrap("gateway " + Quote(gateway.name));
    if (url->path.find('?') != std::string::npos) {
      return Error::Invalid("gateway " + Quote(gateway.name) + ": upstream " +
                            Quote(gateway.upstream) + " has a query");
    }
    while (!url->path.empty() && url->path.back() == '/') url->path.pop_back();
    GatewayRoute route{gateway, std::move(*url)};
    if (route.upstream.https && !gateway.ca_file.empty() &&
        ::access(gateway.ca_file.c_str(), R_OK) != 0) {
      return Error::Sys("gateway " + Quote(gateway.name) + ": CA file " + Quote(gateway.ca_file),
                        errno);
    }
    if (!route.upstream.https && !gateway.ca_file.empty()) {
      return Error::Invalid("gateway " + Quote(gateway.name) + ": ca_file set for http upstream " +
                            Quote(gateway.upstream));
    }
    routes.push_back(std::move(route));
  }
  return routes;
}

bool SplitGatewayTarget(std::string_view target, std::string_view* name, std::string_view* rest) {
  if (!StartsWith(target, kPrefix)) return false;
  std::string_view tail = target.substr(kPrefix.size());
  size_t end = tail.find_first_of("/?");
  *name = tail.substr(0, end);
  *rest = end == std::string_view::npos ? std::string_view() : tail.substr(end);
  return true;
}

std::string UpstreamTarget(const GatewayRoute& route, std::string_view rest) {
  const std::string& base = route.upstream.path;
  if (rest.empty() || rest[0] == '?') return base + "/" + std::string(rest);
  return base + std::string(rest);
}

void ApplyGatewayHeaders(const GatewayRoute& route, http::fields& fields) {
  static constexpr std::string_view kCredentials[] = {"authorization", "proxy-authorization",
                                                      "x-api-key", "api-key"};
  for (std::string_view name : kCredentials) fields.erase(name);
  for (const auto& [name, value] : route.config.headers) fields.set(name, value);
}

void Connection::ServeGateway(std::string_view target) {
  std::string_view name;
  std::string_view rest;
  SplitGatewayTarget(target, &name, &rest);
  record_.gateway = std::string(name.substr(0, 64));
  const GatewayRoute* route = endpoint_->FindGateway(name);
  if (route == nullptr) {
    record_.path = std::string(target.substr(0, 1024));
    record_.reason = "no gateway named '" + record_.gateway + "'";
    return Reply(http::status::not_found,
                 "no gateway named '" + record_.gateway +
                     "' on this endpoint (gateways: " + endpoint_->GatewayNames() + ")");
  }
  const Target& upstream = route->upstream.target;
  record_.host = upstream.host;
  record_.port = upstream.port;
  record_.path = UpstreamTarget(*route, rest);
  record_.allowed = true;
  record_.reason = "gateway " + route->config.name;
  PrepareRequest(record_.path, upstream, route->upstream.https);
  ApplyGatewayHeaders(*route, out_request_);
  std::shared_ptr<asio::ssl::context> tls;  // none for an http upstream
  if (route->upstream.https) {
    auto context = GatewayTls(route->config);
    if (!context.ok()) return Fail(http::status::bad_gateway, context.error().message());
    tls = std::move(*context);
  }
  // The upstream is the operator's choice, so it may be private or loopback.
  // Dial replaces the stream of an earlier request on this connection; the
  // new one's context is then kept for as long as it lives.
  Dial(upstream, /*check_addresses=*/false, tls.get(), [this] { SendRequest(); });
  gateway_tls_ = std::move(tls);
}

}  // namespace kiln::proxy
