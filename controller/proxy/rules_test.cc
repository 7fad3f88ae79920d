#include "controller/proxy/rules.h"

#include <gtest/gtest.h>

#include "controller/proxy/gateway.h"
#include "controller/proxy/target.h"

namespace kiln::proxy {
namespace {

Rule MustParse(std::string_view text, std::string source = "config") {
  Result<Rule> rule = ParseRule(text, std::move(source));
  EXPECT_TRUE(rule.ok()) << text << ": " << rule.error().message();
  return rule.ok() ? *rule : Rule{};
}

Target MustTarget(std::string_view text) {
  Result<Target> target = ParseHostPort(text);
  EXPECT_TRUE(target.ok()) << text << ": " << target.error().message();
  return target.ok() ? *target : Target{};
}

bool Allowed(const std::vector<Rule>& rules, std::string_view target) {
  return FindRule(rules, MustTarget(target)) != nullptr;
}

TEST(ProxyRules, ParseRuleNormalisesHostsAndKeepsThePort) {
  Rule exact = MustParse("API.GitHub.com.:443", "skill implement");
  EXPECT_EQ(exact.host, "api.github.com");
  EXPECT_EQ(exact.port, 443);
  EXPECT_EQ(exact.source, "skill implement");
  EXPECT_EQ(ToString(exact), "api.github.com:443 (skill implement)");

  Rule suffix = MustParse("*.PyPI.org");
  EXPECT_EQ(suffix.host, "*.pypi.org");
  EXPECT_EQ(suffix.port, 0);
  EXPECT_EQ(ToString(suffix), "*.pypi.org (config)");

  Rule v6 = MustParse("[0:0::1]:8080");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 8080);
  EXPECT_EQ(ToString(v6), "[::1]:8080 (config)");
  EXPECT_EQ(MustParse("::1").host, "::1");
  EXPECT_EQ(MustParse("::1").port, 0);
  EXPECT_EQ(MustParse("10.1.2.3:22").host, "10.1.2.3");
}

TEST(ProxyRules, ParseRuleRejectsWhatItCannotMatchSafely) {
  for (std::string_view bad :
       {"", "*", "*.", "*.10.0.0.1", "host:0", "host:65536", "host:", "host:http", "a..b",
        "bad_host!", "127.1", "2130706433", "[::1", "[::1]x", "[10.0.0.1]:80", "user@host",
        "fe80::1%eth0", "h\xC3\xA9llo.example"}) {
    Result<Rule> rule = ParseRule(bad, "config");
    EXPECT_FALSE(rule.ok()) << Quote(bad);
    if (!rule.ok() && !bad.empty()) {
      EXPECT_NE(rule.error().message().find(std::string(bad)), std::string::npos)
          << rule.error().message();
    }
  }
}

TEST(ProxyRules, SuffixRulesMatchSubdomainsButNotTheApex) {
  std::vector<Rule> rules = {MustParse("*.pypi.org:443")};
  EXPECT_TRUE(Allowed(rules, "files.pypi.org:443"));
  EXPECT_TRUE(Allowed(rules, "a.b.pypi.org:443"));
  EXPECT_TRUE(Allowed(rules, "FILES.PYPI.ORG.:443"));
  EXPECT_FALSE(Allowed(rules, "pypi.org:443"));
  EXPECT_FALSE(Allowed(rules, "evilpypi.org:443"));
  EXPECT_FALSE(Allowed(rules, "pypi.org.evil.example:443"));
  EXPECT_FALSE(Allowed(rules, "files.pypi.org:80"));
}

TEST(ProxyRules, PortZeroMeansHttpAndHttpsOnly) {
  std::vector<Rule> rules = {MustParse("example.com")};
  EXPECT_TRUE(Allowed(rules, "example.com:80"));
  EXPECT_TRUE(Allowed(rules, "example.com:443"));
  EXPECT_FALSE(Allowed(rules, "example.com:22"));
  EXPECT_FALSE(Allowed(rules, "www.example.com:443"));
  std::vector<Rule> ssh = {MustParse("example.com:22")};
  EXPECT_TRUE(Allowed(ssh, "example.com:22"));
  EXPECT_FALSE(Allowed(ssh, "example.com:443"));
}

TEST(ProxyRules, IpRulesMatchTheAddressHoweverItIsWritten) {
  std::vector<Rule> rules = {MustParse("127.0.0.1:8080"), MustParse("[::1]:8080")};
  EXPECT_TRUE(Allowed(rules, "127.0.0.1:8080"));
  EXPECT_TRUE(Allowed(rules, "[::1]:8080"));
  EXPECT_TRUE(Allowed(rules, "[0:0:0:0:0:0:0:1]:8080"));
  EXPECT_FALSE(Allowed(rules, "127.0.0.2:8080"));
  EXPECT_FALSE(Allowed(rules, "localhost:8080"));
  // A suffix never matches an address, even one ParseRule would not have let through.
  EXPECT_FALSE(Allowed({Rule{"*.0.0.1", 80, "hand-made"}}, "127.0.0.1:80"));
}

TEST(ProxyRules, AuthorityAndUrlSyntax) {
  Target t = MustTarget("Example.COM:8443");
  EXPECT_EQ(t.host, "example.com");
  EXPECT_EQ(t.port, 8443);
  EXPECT_FALSE(t.ip_literal);
  EXPECT_EQ(ToString(MustTarget("[::1]:80")), "[::1]:80");
  EXPECT_FALSE(ParseHostPort("0x7f.1:80").ok());

  Result<Url> url = ParseUrl("http://Example.com/a/b?c=d");
  ASSERT_TRUE(url.ok());
  EXPECT_FALSE(url->https);
  EXPECT_EQ(url->target.host, "example.com");
  EXPECT_EQ(url->target.port, 80);
  EXPECT_EQ(url->path, "/a/b?c=d");
  url = ParseUrl("HTTPS://[::1]:8443?q");
  ASSERT_TRUE(url.ok());
  EXPECT_TRUE(url->https);
  EXPECT_EQ(url->target.port, 8443);
  EXPECT_EQ(url->path, "/?q");
  for (std::string_view bad :
       {"ftp://x/", "http://user:pw@x/", "http:///path", "http://x/#frag", "http://x:99999/"}) {
    EXPECT_FALSE(ParseUrl(bad).ok()) << bad;
  }
}

TEST(ProxyRules, PrivateAddressesAreNotPublic) {
  for (std::string_view a : {"127.0.0.1",
                             "127.255.0.9",
                             "10.1.2.3",
                             "172.16.0.1",
                             "172.31.255.255",
                             "192.168.1.1",
                             "100.64.0.1",
                             "100.127.255.255",
                             "169.254.169.254",
                             "0.0.0.0",
                             "224.0.0.1",
                             "255.255.255.255",
                             "::",
                             "::1",
                             "fc00::1",
                             "fd12:3456::1",
                             "fe80::1",
                             "ff02::1",
                             "::ffff:127.0.0.1",
                             "::ffff:10.0.0.1",
                             "64:ff9b::a00:1",
                             "::127.0.0.1"}) {
    EXPECT_FALSE(IsPublicAddress(boost::asio::ip::make_address(a))) << a;
  }
  for (std::string_view a : {"8.8.8.8", "172.32.0.1", "100.128.0.1", "192.169.0.1",
                             "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"}) {
    EXPECT_TRUE(IsPublicAddress(boost::asio::ip::make_address(a))) << a;
  }
}

TEST(ProxyGatewayRoutes, ValidatesConfigurationAndMapsPaths) {
  Result<std::vector<GatewayRoute>> routes =
      BuildGatewayRoutes({{"anthropic", "http://127.0.0.1:9/base/", {{"x-api-key", "k"}}, ""}});
  ASSERT_TRUE(routes.ok()) << routes.error().message();
  const GatewayRoute& route = routes->front();
  EXPECT_EQ(UpstreamTarget(route, "/v1/messages?beta=1"), "/base/v1/messages?beta=1");
  EXPECT_EQ(UpstreamTarget(route, ""), "/base/");
  EXPECT_EQ(UpstreamTarget(route, "?q"), "/base/?q");
  std::string_view name;
  std::string_view rest;
  ASSERT_TRUE(SplitGatewayTarget("/gateway/anthropic/v1/x?y", &name, &rest));
  EXPECT_EQ(name, "anthropic");
  EXPECT_EQ(rest, "/v1/x?y");
  EXPECT_FALSE(SplitGatewayTarget("/gatewayx/a", &name, &rest));

  struct Bad {
    Gateway gateway;
    std::string_view message;
  };
  for (const Bad& bad : std::vector<Bad>{
           {{"Anthropic", "http://x/", {}, ""}, "[a-z0-9-]+"},
           {{"a", "ftp://x/", {}, ""}, "ftp://x/"},
           {{"a", "http://x/?q", {}, ""}, "query"},
           {{"a", "http://x/", {{"x-api-key", "a\r\nb"}}, ""}, "x-api-key"},
           {{"a", "https://x/", {}, "/nonexistent/ca.pem"}, "/nonexistent/ca.pem"},
       }) {
    Result<std::vector<GatewayRoute>> r = BuildGatewayRoutes({bad.gateway});
    ASSERT_FALSE(r.ok()) << bad.gateway.upstream;
    EXPECT_NE(r.error().message().find(bad.message), std::string::npos) << r.error().message();
  }
  EXPECT_FALSE(BuildGatewayRoutes({{"a", "http://x/", {}, ""}, {"a", "http://y/", {}, ""}}).ok());
}

}  // namespace
}  // namespace kiln::proxy
