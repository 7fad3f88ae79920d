// The allowlist: which host:port a run may reach, and which resolved
// addresses a name may not lead to.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <string>
#include <vector>

#include "controller/proxy/proxy.h"
#include "controller/proxy/target.h"

namespace kiln::proxy {

// The first rule allowing target, or nullptr. A suffix rule ("*.pypi.org")
// matches names below the suffix, never the apex or an IP literal; an exact
// rule matches the same name or the same address; port 0 matches 80 and 443.
const Rule* FindRule(const std::vector<Rule>& rules, const Target& target);

// False for the addresses a DNS answer must not lead to: loopback,
// unspecified, private (10/8, 172.16/12, 192.168/16, fc00::/7), carrier-grade
// NAT (100.64/10), link-local, multicast, broadcast and reserved ranges,
// including IPv4 addresses embedded in IPv6 (::ffff:0:0/96, 64:ff9b::/96).
bool IsPublicAddress(const boost::asio::ip::address& address);

// "api.github.com:443 (config), *.pypi.org (skill implement)", or "nothing".
std::string DescribeAllowlist(const std::vector<Rule>& rules);

}  // namespace kiln::proxy
