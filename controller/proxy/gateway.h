// Gateways: origin-form routes (/gateway/<name>/<rest>) to an operator's
// upstream, with the provider's credentials added by the proxy so the key
// never enters the sandbox.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/fields.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "controller/proxy/proxy.h"
#include "controller/proxy/target.h"

namespace kiln::proxy {

// A gateway as served: its configuration and its parsed upstream (path: the
// base path without a trailing "/", possibly empty).
struct GatewayRoute {
  Gateway config;
  Url upstream;
};

// Validates the gateways (name syntax, unique names, upstream URL, a CA file
// that can be read) and builds their routes. Errors name the gateway and the
// bad value.
Result<std::vector<GatewayRoute>> BuildGatewayRoutes(const std::vector<Gateway>& gateways);

// The TLS client context of an https gateway: the peer verified against the
// gateway's CA file or the system's CAs. Built at the gateway's first request
// in this process, not when an endpoint opens, and shared by every endpoint:
// loading the system's CA certificates takes tens of milliseconds, which a
// run would otherwise pay for every gateway, used or not. Built again when
// the CA file changes (inode, size or modification time), so an update
// reaches the next request.
Result<std::shared_ptr<boost::asio::ssl::context>> GatewayTls(const Gateway& gateway);

// "/gateway/anthropic/v1/messages?beta=1" -> name "anthropic", rest
// "/v1/messages?beta=1". False when target is not under /gateway/.
bool SplitGatewayTarget(std::string_view target, std::string_view* name, std::string_view* rest);

// The origin-form target to send upstream: base path + rest ("/" when both are empty).
std::string UpstreamTarget(const GatewayRoute& route, std::string_view rest);

// Replaces the credentials a client may have sent with the gateway's headers.
void ApplyGatewayHeaders(const GatewayRoute& route, boost::beast::http::fields& fields);

}  // namespace kiln::proxy
