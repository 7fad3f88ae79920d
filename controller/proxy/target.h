// Host, port and URL syntax of the proxy: what a client names in a CONNECT
// authority, an absolute-form URL or a gateway's upstream, normalised so that
// one host has one spelling when it is matched against the allowlist.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace kiln::proxy {

// host: a lowercase DNS name without a trailing dot, or an IP literal in
// canonical text form (IPv6 without brackets); ip_literal says which.
struct Target {
  std::string host;
  uint16_t port = 0;
  bool ip_literal = false;
};

// "host:port" as a message shows it: "api.github.com:443", "[::1]:8080".
std::string ToString(const Target& target);

// "host", "host:port", "[v6]", "[v6]:port", or a bare IPv6 address ("::1",
// which has no room for a port). port stays 0 when the text has none; ":0" is
// refused. Names are [a-z0-9_-] labels (any case); a name whose last label is
// numeric but which is not a dotted-quad IPv4 address ("127.1", "2130706433")
// is refused, because resolvers would read it as an address.
Result<Target> ParseHostPort(std::string_view text);

// Validates and normalises a host name or IP literal (no port); used for rule
// hosts after their "*." prefix.
Result<Target> ParseHost(std::string_view host);

struct Url {
  bool https = false;
  Target target;
  std::string path;  // begins with "/"; includes the query, if any
};

// "http://host[:port][/path][?query]" or https://. No userinfo, no fragment.
Result<Url> ParseUrl(std::string_view text);

}  // namespace kiln::proxy
