#include "controller/proxy/rules.h"

#include <array>
#include <cstring>

#include "base/strings.h"

namespace kiln::proxy {
namespace {

namespace ip = boost::asio::ip;

bool PortMatches(uint16_t rule_port, uint16_t port) {
  return rule_port == 0 ? (port == 80 || port == 443) : rule_port == port;
}

bool InV4(uint32_t addr, uint32_t net, int bits) {
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (addr & mask) == net;
}

bool IsPublicV4(const ip::address_v4& a) {
  struct Net {
    uint32_t net;
    int bits;
  };
  static constexpr std::array<Net, 9> kBlocked = {{
      {0x00000000, 8},   // "this network", incl. 0.0.0.0
      {0x0A000000, 8},   // 10/8
      {0x64400000, 10},  // 100.64/10 carrier-grade NAT
      {0x7F000000, 8},   // loopback
      {0xA9FE0000, 16},  // 169.254/16 link-local
      {0xAC100000, 12},  // 172.16/12
      {0xC0A80000, 16},  // 192.168/16
      {0xE0000000, 4},   // 224/4 multicast
      {0xF0000000, 4},   // 240/4 reserved, incl. broadcast
  }};
  uint32_t v = a.to_uint();
  for (const Net& n : kBlocked) {
    if (InV4(v, n.net, n.bits)) return false;
  }
  return true;
}

}  // namespace

Result<Rule> ParseRule(std::string_view text, std::string source) {
  std::string_view t = Trim(text);
  bool wildcard = StartsWith(t, "*.");
  Result<Target> target = ParseHostPort(wildcard ? t.substr(2) : t);
  if (!target.ok()) return target.error().Wrap("allowlist rule " + Quote(text));
  if (wildcard && target->ip_literal) {
    return Error::Invalid("allowlist rule " + Quote(text) + ": '*.' needs a domain name");
  }
  return Rule{wildcard ? "*." + target->host : target->host, target->port, std::move(source)};
}

std::string RuleText(const Rule& rule) {
  std::string host = rule.host.find(':') != std::string::npos && rule.port != 0
                         ? "[" + rule.host + "]"
                         : rule.host;
  return rule.port == 0 ? host : host + ":" + std::to_string(rule.port);
}

std::string ToString(const Rule& rule) { return RuleText(rule) + " (" + rule.source + ")"; }

const Rule* FindRule(const std::vector<Rule>& rules, const Target& target) {
  for (const Rule& rule : rules) {
    if (!PortMatches(rule.port, target.port)) continue;
    if (StartsWith(rule.host, "*.")) {
      std::string_view suffix = std::string_view(rule.host).substr(1);  // ".pypi.org"
      if (!target.ip_literal && target.host.size() > suffix.size() &&
          target.host.ends_with(suffix)) {
        return &rule;
      }
    } else if (rule.host == target.host) {
      return &rule;
    }
  }
  return nullptr;
}

bool IsPublicAddress(const ip::address& address) {
  if (address.is_v4()) return IsPublicV4(address.to_v4());
  ip::address_v6 v6 = address.to_v6();
  ip::address_v6::bytes_type b = v6.to_bytes();
  if (v6.is_v4_mapped()) return IsPublicV4(v6.to_v4());
  static constexpr std::array<unsigned char, 12> kNat64 = {0x00, 0x64, 0xff, 0x9b};
  if (std::memcmp(b.data(), kNat64.data(), kNat64.size()) == 0) {
    return IsPublicV4(ip::make_address_v4(ip::address_v4::bytes_type{b[12], b[13], b[14], b[15]}));
  }
  if (v6.is_unspecified() || v6.is_loopback() || v6.is_multicast()) return false;
  if ((b[0] & 0xfe) == 0xfc) return false;                  // fc00::/7 unique local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;  // fe80::/10 link-local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return false;  // fec0::/10 site-local
  // ::/96 (IPv4-compatible, deprecated) would reach an IPv4 address unchecked.
  static constexpr std::array<unsigned char, 12> kZero{};
  return std::memcmp(b.data(), kZero.data(), kZero.size()) != 0;
}

std::string DescribeAllowlist(const std::vector<Rule>& rules) {
  if (rules.empty()) return "nothing";
  std::string out;
  for (const Rule& rule : rules) {
    if (!out.empty()) out += ", ";
    out += ToString(rule);
  }
  return out;
}

}  // namespace kiln::proxy
