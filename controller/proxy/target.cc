#include "controller/proxy/target.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>

#include "base/strings.h"

namespace kiln::proxy {
namespace {

namespace ip = boost::asio::ip;

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

Result<uint16_t> ParsePort(std::string_view text, std::string_view whole) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Error::Invalid("invalid port in " + Quote(whole));
  }
  unsigned long port = std::stoul(std::string(text));
  if (port == 0 || port > 65535) return Error::Invalid("port out of range in " + Quote(whole));
  return static_cast<uint16_t>(port);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string ToString(const Target& target) {
  bool v6 = target.ip_literal && target.host.find(':') != std::string::npos;
  return (v6 ? "[" + target.host + "]" : target.host) + ":" + std::to_string(target.port);
}

Result<Target> ParseHost(std::string_view host) {
  // Scoped IPv6 addresses ("fe80::1%eth0") name an interface of the controller's host.
  if (host.find('%') != std::string_view::npos) {
    return Error::Invalid("scoped IPv6 address " + Quote(host));
  }
  boost::system::error_code ec;
  ip::address addr = ip::make_address(std::string(host), ec);
  if (!ec) return Target{addr.to_string(), 0, true};
  std::string name = Lower(host);
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (name.empty() || name.size() > 253) return Error::Invalid("invalid host name " + Quote(host));
  std::vector<std::string> labels = Split(name, '.');
  for (const std::string& label : labels) {
    if (label.empty() || label.size() > 63 ||
        !std::all_of(label.begin(), label.end(), IsNameChar)) {
      return Error::Invalid("invalid host name " + Quote(host));
    }
  }
  const std::string& last = labels.back();
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Error::Invalid("invalid IP address " + Quote(host) +
                          " (IPv4 addresses are four decimal numbers)");
  }
  return Target{std::move(name), 0, false};
}

Result<Target> ParseHostPort(std::string_view text) {
  std::string_view host = text;
  std::string_view port;
  if (StartsWith(text, "[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return Error::Invalid("unclosed '[' in " + Quote(text));
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') return Error::Invalid("junk after ']' in " + Quote(text));
    if (!rest.empty()) port = rest.substr(1);
    boost::system::error_code ec;
    ip::make_address_v6(std::string(host), ec);
    if (ec) return Error::Invalid("invalid IPv6 address in " + Quote(text));
    if (!rest.empty() && port.empty()) return Error::Invalid("empty port in " + Quote(text));
  } else if (size_t colon = text.find(':');
             colon != std::string_view::npos && colon == text.rfind(':')) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) return Error::Invalid("empty port in " + Quote(text));
  }
  if (host.empty()) return Error::Invalid("missing host in " + Quote(text));
  Result<Target> target = ParseHost(host);
  if (!target.ok()) return target.error();
  if (!port.empty()) {
    Result<uint16_t> p = ParsePort(port, text);
    if (!p.ok()) return p.error();
    target->port = *p;
  }
  return target;
}

Result<Url> ParseUrl(std::string_view text) {
  Url url;
  std::string lower = Lower(text.substr(0, std::min<size_t>(text.size(), 8)));
  std::string_view rest;
  if (StartsWith(lower, "http://")) {
    rest = text.substr(7);
  } else if (StartsWith(lower, "https://")) {
    rest = text.substr(8);
    url.https = true;
  } else {
    return Error::Invalid("not an http:// or https:// URL: " + Quote(text));
  }
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos) {
    return Error::Invalid("user information in URL " + Quote(text));
  }
  Result<Target> target = ParseHostPort(authority);
  if (!target.ok()) return target.error().Wrap("URL " + Quote(text));
  url.target = std::move(*target);
  if (url.target.port == 0) url.target.port = url.https ? 443 : 80;
  std::string_view path = end == std::string_view::npos ? "" : rest.substr(end);
  if (path.find('#') != std::string_view::npos) {
    return Error::Invalid("fragment in URL " + Quote(text));
  }
  url.path = StartsWith(path, "/") ? std::string(path) : "/" + std::string(path);
  return url;
}

}  // namespace kiln::proxy
