// The proxy end to end on loopback: real upstream servers, real clients on the
// endpoint's unix socket, and what the endpoint reports.
#include "controller/proxy/proxy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "controller/proxy/test_servers.h"

namespace kiln::proxy {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

using testing::Client;
using testing::EchoServer;
using testing::Eventually;
using testing::Exchange;
using testing::HttpUpstream;
using testing::Recorder;
using testing::TempDir;

Policy Allow(std::initializer_list<std::string> rules, std::string source = "test") {
  Policy policy;
  for (const std::string& text : rules) {
    Result<Rule> rule = ParseRule(text, source);
    EXPECT_TRUE(rule.ok()) << rule.error().message();
    if (rule.ok()) policy.allow.push_back(*rule);
  }
  return policy;
}

std::string Local(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

std::string ConnectHead(const std::string& authority) {
  return "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n";
}

http::request<http::string_body> Get(const std::string& url) {
  http::request<http::string_body> request(http::verb::get, url, 11);
  request.set(http::field::host, "ignored.example");
  return request;
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

class ProxyTest : public ::testing::Test {
 protected:
  std::unique_ptr<Endpoint> Open(Policy policy) {
    auto endpoint = proxy_.Open(socket(), std::move(policy), recorder_.Callback());
    EXPECT_TRUE(endpoint.ok()) << endpoint.error().message();
    return endpoint.ok() ? std::move(*endpoint) : nullptr;
  }
  std::string socket() const { return dir_ / "proxy.sock"; }

  TempDir dir_;
  Recorder recorder_;
  Proxy proxy_{2};
};

TEST_F(ProxyTest, ConnectTunnelRoundTripsBytesAndCountsThem) {
  EchoServer echo;
  auto endpoint = Open(Allow({Local(echo.port())}));
  Client client(socket());
  // The first tunnel bytes ride in the same write as the CONNECT head.
  client.Send(ConnectHead(Local(echo.port())) + "early");
  EXPECT_EQ(client.ReadUntil("\r\n\r\n"), "HTTP/1.1 200 Connection established\r\n\r\n");
  EXPECT_EQ(client.ReadUntil("early"), "early");
  client.Send("hello, upstream");
  EXPECT_EQ(client.ReadUntil("upstream"), "hello, upstream");
  // A half-close reaches the server, whose own close comes back after its data.
  client.Send("bye");
  client.ShutdownSend();
  EXPECT_EQ(client.ReadAll(), "bye");

  std::vector<Request> records = recorder_.WaitFor(1);
  ASSERT_EQ(records.size(), 1u);
  const Request& r = records[0];
  EXPECT_EQ(r.method, "CONNECT");
  EXPECT_EQ(r.host, "127.0.0.1");
  EXPECT_EQ(r.port, echo.port());
  EXPECT_EQ(r.path, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.allowed);
  EXPECT_EQ(r.reason, Local(echo.port()) + " (test)");
  EXPECT_EQ(r.bytes_sent, 23u);  // early + hello, upstream + bye
  EXPECT_EQ(r.bytes_received, 23u);
  EXPECT_EQ(proxy_.totals().requests_allowed, 1u);
  EXPECT_EQ(proxy_.totals().bytes_sent, 23u);
  EXPECT_EQ(proxy_.totals().bytes_received, 23u);
}

TEST_F(ProxyTest, DeniedConnectIs403NamingTheAllowlist) {
  Policy policy = Allow({"api.github.com:443"}, "config");
  policy.allow.push_back(*ParseRule("*.pypi.org", "skill implement"));
  auto endpoint = Open(policy);
  Client client(socket());
  auto response = client.CallRaw(ConnectHead("evil.example:443"));
  EXPECT_EQ(response.result_int(), 403);
  EXPECT_EQ(response["X-Kiln-Proxy-Denied"], "1");
  EXPECT_EQ(response.body(),
            "kiln proxy: 'evil.example:443' is not on this run's allowlist (allowed: "
            "api.github.com:443 (config), *.pypi.org (skill implement))\n");

  std::vector<Request> records = recorder_.WaitFor(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].method, "CONNECT");
  EXPECT_EQ(records[0].host, "evil.example");
  EXPECT_EQ(records[0].port, 443);
  EXPECT_EQ(records[0].status, 403);
  EXPECT_FALSE(records[0].allowed);
  EXPECT_TRUE(Contains(records[0].reason, "'evil.example:443' is not on"));
  EXPECT_EQ(proxy_.totals().requests_denied, 1u);
}

TEST_F(ProxyTest, NothingGoesOutWhileThePolicyRefuses) {
  // The controller refuses every request once the run's log cannot record
  // it: an allowed upstream is not contacted at all.
  HttpUpstream upstream;
  std::atomic<bool> log_failed{false};
  Policy policy = Allow({Local(upstream.port())});
  policy.refuse = [&] {
    return log_failed ? std::string("the run's session log cannot be written") : std::string();
  };
  auto endpoint = Open(policy);
  auto ok = Client(socket()).Call(Get("http://" + Local(upstream.port()) + "/before"));
  EXPECT_EQ(ok.result_int(), 200);
  log_failed = true;
  auto refused = Client(socket()).Call(Get("http://" + Local(upstream.port()) + "/after"));
  EXPECT_EQ(refused.result_int(), 503);
  EXPECT_TRUE(Contains(refused.body(), "session log cannot be written")) << refused.body();
  Client tunnel(socket());
  EXPECT_EQ(tunnel.CallRaw(ConnectHead(Local(upstream.port()))).result_int(), 503);
  std::vector<Request> records = recorder_.WaitFor(3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(upstream.seen().size(), 1u) << "a refused request reached the upstream";
  // Records come as requests end, not as they start: the first one's may
  // follow the others'. Only it was allowed; both after the failure got 503.
  int allowed = 0, refused_503 = 0;
  for (const Request& r : records) {
    if (r.allowed) {
      ++allowed;
      EXPECT_EQ(r.path, "/before");
    } else {
      refused_503 += r.status == 503;
    }
  }
  EXPECT_EQ(allowed, 1);
  EXPECT_EQ(refused_503, 2);
}

TEST_F(ProxyTest, SuffixAndPortRulesAreEnforcedBeforeAnyLookup) {
  auto endpoint = Open(Allow({"*.pypi.org", "git.example:22"}));
  // Denied before resolution, so these names need not exist.
  for (const char* target : {"pypi.org:443", "files.pypi.org:8443", "git.example:443"}) {
    Client client(socket());
    EXPECT_EQ(client.CallRaw(ConnectHead(target)).result_int(), 403) << target;
  }
  std::vector<Request> records = recorder_.WaitFor(3);
  ASSERT_EQ(records.size(), 3u);
  for (const Request& r : records) EXPECT_FALSE(r.allowed);
}

TEST_F(ProxyTest, ForwardsPlainHttpWithChunkedResponsesAndBodies) {
  HttpUpstream upstream([](Exchange& ex) {
    if (ex.request.target == "/chunked") {
      ex.write(
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    } else if (ex.request.method == "POST") {
      ex.write(HttpUpstream::Response(201, ex.request.body));
    } else {
      ex.write(HttpUpstream::Response(200, "hello from " + ex.request.target));
    }
  });
  auto endpoint = Open(Allow({Local(upstream.port())}));
  std::string base = "http://" + Local(upstream.port());
  Client client(socket());  // one kept-alive connection for all three

  auto plain = client.Call(Get(base + "/hello?x=1"));
  EXPECT_EQ(plain.result_int(), 200);
  EXPECT_EQ(plain.body(), "hello from /hello?x=1");

  auto chunked = client.Call(Get(base + "/chunked"));
  EXPECT_EQ(chunked.result_int(), 200);
  EXPECT_EQ(chunked.body(), "hello world");

  std::string big(100 * 1000, 'x');
  for (size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
  http::request<http::string_body> post(http::verb::post, base + "/upload", 11);
  post.body() = big;
  post.prepare_payload();
  auto echoed = client.Call(post);
  EXPECT_EQ(echoed.result_int(), 201);
  EXPECT_TRUE(echoed.body() == big);

  std::vector<testing::SeenRequest> seen = upstream.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].target, "/hello?x=1");
  EXPECT_EQ(seen[0].headers["host"], Local(upstream.port()));  // from the URL, not the client
  EXPECT_EQ(seen[2].body.size(), big.size());

  std::vector<Request> records = recorder_.WaitFor(3);
  ASSERT_EQ(records.size(), 3u);  // one per request on the connection
  EXPECT_EQ(records[0].method, "GET");
  EXPECT_EQ(records[0].path, "/hello?x=1");
  EXPECT_EQ(records[0].status, 200);
  EXPECT_EQ(records[0].bytes_received, plain.body().size());
  EXPECT_EQ(records[1].bytes_received, 11u);
  EXPECT_EQ(records[2].method, "POST");
  EXPECT_EQ(records[2].status, 201);
  EXPECT_EQ(records[2].bytes_sent, big.size());
  EXPECT_EQ(records[2].bytes_received, big.size());
}

TEST_F(ProxyTest, ChunkedUploadsAndExpectContinueReachTheUpstream) {
  HttpUpstream upstream(
      [](Exchange& ex) { ex.write(HttpUpstream::Response(200, "got " + ex.request.body)); });
  auto endpoint = Open(Allow({Local(upstream.port())}));
  std::string url = "http://" + Local(upstream.port()) + "/";
  Client client(socket());
  auto chunked = client.CallRaw("POST " + url +
                                " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.body(), "got abcdefg");
  // The body goes only after the 100 Continue, which the proxy sends itself.
  client.Send("PUT " + url + " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n" +
              "Expect: 100-continue\r\n\r\n");
  EXPECT_EQ(client.ReadUntil("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(client.CallRaw("hello").body(), "got hello");

  std::vector<testing::SeenRequest> seen = upstream.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].method, "PUT");
  EXPECT_EQ(seen[1].headers.count("expect"), 0u);
  std::vector<Request> records = recorder_.WaitFor(2);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].bytes_sent, 7u);
  EXPECT_EQ(records[1].bytes_sent, 5u);
}

TEST_F(ProxyTest, DropsHopByHopHeadersBothWays) {
  HttpUpstream upstream([](Exchange& ex) {
    ex.write(HttpUpstream::Response(200, "ok",
                                    "Connection: x-upstream-hop\r\nX-Upstream-Hop: 1\r\n"
                                    "Keep-Alive: timeout=5\r\nProxy-Foo: 1\r\nX-Kept: 1\r\n"));
  });
  auto endpoint = Open(Allow({Local(upstream.port())}));
  Client client(socket());
  auto response = client.CallRaw("GET http://" + Local(upstream.port()) +
                                 "/ HTTP/1.1\r\nHost: x\r\n"
                                 "Connection: keep-alive, X-Drop-Me\r\nX-Drop-Me: 1\r\n"
                                 "Keep-Alive: 5\r\nProxy-Authorization: Basic c2VjcmV0\r\n"
                                 "Proxy-Connection: keep-alive\r\nTE: trailers\r\n"
                                 "Upgrade: websocket\r\nX-Keep: yes\r\n\r\n");
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(response["X-Kept"], "1");
  for (const char* name : {"X-Upstream-Hop", "Keep-Alive", "Proxy-Foo"}) {
    EXPECT_EQ(response.count(name), 0u) << name;
  }
  std::vector<testing::SeenRequest> seen = upstream.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].headers["x-keep"], "yes");
  for (const char* name :
       {"x-drop-me", "keep-alive", "proxy-authorization", "proxy-connection", "te", "upgrade"}) {
    EXPECT_EQ(seen[0].headers.count(name), 0u) << name;
  }
}

TEST_F(ProxyTest, ConnectionCloseClosesAfterTheResponse) {
  HttpUpstream upstream;
  auto endpoint = Open(Allow({Local(upstream.port())}));
  Client client(socket());
  client.Send("GET http://" + Local(upstream.port()) +
              "/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string all = client.ReadAll();  // returns only because the proxy closes
  EXPECT_TRUE(Contains(all, "HTTP/1.1 200"));
  EXPECT_TRUE(Contains(all, "Connection: close"));
  EXPECT_TRUE(all.ends_with("hello"));
}

TEST_F(ProxyTest, HttpsInAbsoluteFormIsRefused) {
  auto endpoint = Open(Allow({"127.0.0.1"}));
  Client client(socket());
  auto response = client.Call(Get("https://127.0.0.1/"));
  EXPECT_EQ(response.result_int(), 400);
  EXPECT_TRUE(Contains(response.body(), "CONNECT")) << response.body();
  std::vector<Request> records = recorder_.WaitFor(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].status, 400);
  EXPECT_FALSE(records[0].allowed);
}

TEST_F(ProxyTest, MalformedAndUnservedRequestsAre400) {
  auto endpoint = Open(Allow({"127.0.0.1"}));
  struct Case {
    std::string request;
    std::string body_says;
  };
  for (const Case& c : std::vector<Case>{
           {"GARBAGE\r\n\r\n", "malformed request"},
           {"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", "malformed request"},
           {"GET /etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "/gateway/<name>"},
           {ConnectHead("127.0.0.1"), "host:port"},
           {"GET http://user@127.0.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n", "user information"},
       }) {
    Client client(socket());
    auto response = client.CallRaw(c.request);
    EXPECT_EQ(response.result_int(), 400) << c.request;
    EXPECT_TRUE(Contains(response.body(), c.body_says)) << response.body();
  }
  std::vector<Request> records = recorder_.WaitFor(5);
  ASSERT_EQ(records.size(), 5u);
  for (const Request& r : records) {
    EXPECT_EQ(r.status, 400);
    EXPECT_FALSE(r.allowed);
    EXPECT_FALSE(r.reason.empty());
  }
}

TEST_F(ProxyTest, AllowedButClosedPortIs502AndRecorded) {
  uint16_t port = testing::FreePort();
  auto endpoint = Open(Allow({Local(port)}));
  {
    Client client(socket());
    auto response = client.CallRaw(ConnectHead(Local(port)));
    EXPECT_EQ(response.result_int(), 502);
    EXPECT_TRUE(Contains(response.body(), "cannot connect to '" + Local(port) + "'"))
        << response.body();
  }
  {
    Client client(socket());
    EXPECT_EQ(client.Call(Get("http://" + Local(port) + "/")).result_int(), 502);
  }
  std::vector<Request> records = recorder_.WaitFor(2);
  ASSERT_EQ(records.size(), 2u);
  for (const Request& r : records) {
    EXPECT_EQ(r.status, 502);
    EXPECT_TRUE(r.allowed);
    EXPECT_TRUE(r.reason.starts_with(Local(port) + " (test); cannot connect")) << r.reason;
  }
}

TEST_F(ProxyTest, NamesResolvingToPrivateAddressesAreRefusedUnlessTheRuleNamesTheAddress) {
  EchoServer echo;
  std::string port = std::to_string(echo.port());
  {
    auto endpoint = Open(Allow({"localhost:" + port}));
    Client client(socket());
    auto response = client.CallRaw(ConnectHead("localhost:" + port));
    EXPECT_EQ(response.result_int(), 403);
    EXPECT_EQ(response["X-Kiln-Proxy-Denied"], "1");
    EXPECT_TRUE(Contains(response.body(), "'localhost' resolves to")) << response.body();
    Client http_client(socket());
    EXPECT_EQ(http_client.Call(Get("http://localhost:" + port + "/")).result_int(), 403);
    std::vector<Request> records = recorder_.WaitFor(2);
    ASSERT_EQ(records.size(), 2u);
    for (const Request& r : records) {
      EXPECT_FALSE(r.allowed);
      EXPECT_EQ(r.status, 403);
      EXPECT_TRUE(Contains(r.reason, "localhost:" + port + " (test)")) << r.reason;
    }
  }
  {
    auto endpoint = Open(Allow({Local(echo.port())}));
    Client client(socket());
    client.Send(ConnectHead(Local(echo.port())));
    EXPECT_EQ(client.ReadUntil("\r\n\r\n"), "HTTP/1.1 200 Connection established\r\n\r\n");
  }
  {
    Policy policy = Allow({"localhost:" + port});
    policy.allow_private_addresses = true;
    auto endpoint = Open(policy);
    Client client(socket());
    client.Send(ConnectHead("localhost:" + port) + "ping");
    EXPECT_EQ(client.ReadUntil("\r\n\r\n"), "HTTP/1.1 200 Connection established\r\n\r\n");
    EXPECT_EQ(client.ReadUntil("ping"), "ping");
  }
}

TEST_F(ProxyTest, IdleTunnelsAreClosed) {
  EchoServer echo;
  Policy policy = Allow({Local(echo.port())});
  policy.idle_timeout_ms = 200;
  auto endpoint = Open(policy);
  Client client(socket());
  client.Send(ConnectHead(Local(echo.port())));
  client.ReadUntil("\r\n\r\n");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(client.ReadAll(), "");  // returns when the proxy gives up on the silent tunnel
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
  std::vector<Request> records = recorder_.WaitFor(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].status, 200);
  EXPECT_TRUE(Contains(records[0].reason, "without traffic")) << records[0].reason;
}

TEST_F(ProxyTest, SocketIsWorldConnectableAndMustNotExist) {
  mode_t old = ::umask(077);
  auto endpoint = Open(Allow({}));
  ::umask(old);
  struct stat st;
  ASSERT_EQ(::stat(socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  EXPECT_EQ(endpoint->socket_path(), socket());

  std::string taken = dir_ / "taken";
  std::ofstream(taken) << "x";
  auto second = proxy_.Open(taken, Allow({}), nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(Contains(second.error().message(), "'" + taken + "' already exists"))
      << second.error().message();
  EXPECT_TRUE(std::filesystem::exists(taken));  // not removed by the failed open
}

TEST_F(ProxyTest, ClosingTheEndpointMidTunnelAbortsItReportsItAndRemovesTheSocket) {
  EchoServer firehose(/*firehose=*/true);
  auto endpoint = Open(Allow({Local(firehose.port())}));
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<Client>(socket()));
    clients.back()->Send(ConnectHead(Local(firehose.port())));
    clients.back()->ReadUntil("\r\n\r\n");
    clients.back()->ReadUntil(std::string(20000, '\0'));  // data is flowing
  }
  Client idle(socket());  // connected, no request yet
  endpoint.reset();

  EXPECT_FALSE(std::filesystem::exists(socket()));
  // Destruction waited for every callback: nothing may arrive afterwards.
  std::vector<Request> records = recorder_.Snapshot();
  ASSERT_EQ(records.size(), 8u);
  for (const Request& r : records) {
    EXPECT_EQ(r.status, 200);
    EXPECT_GE(r.bytes_received, 20000u);
  }
  for (auto& client : clients) client->ReadAll();  // ends: the tunnel is gone
  EXPECT_EQ(idle.ReadAll(), "");
  EXPECT_EQ(recorder_.Snapshot().size(), 8u);
}

TEST_F(ProxyTest, ClosingTheEndpointMidResponseAbortsTheStream) {
  std::atomic<int> chunks{0};
  HttpUpstream upstream([&chunks](Exchange& ex) {
    ex.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (;;) {  // until the proxy goes away
      ex.write("6\r\nchunk\n\r\n");
      ++chunks;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  auto endpoint = Open(Allow({Local(upstream.port())}));
  Client client(socket());
  client.Send("GET http://" + Local(upstream.port()) + "/stream HTTP/1.1\r\nHost: x\r\n\r\n");
  client.ReadUntil("chunk\n\r\n6\r\nchunk\n");
  endpoint.reset();
  EXPECT_FALSE(std::filesystem::exists(socket()));
  std::vector<Request> records = recorder_.Snapshot();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].status, 200);
  EXPECT_GT(records[0].bytes_received, 0u);
  client.ReadAll();
}

TEST_F(ProxyTest, FiftyParallelRequestsAreEachRecordedOnce) {
  HttpUpstream upstream;
  auto endpoint = Open(Allow({Local(upstream.port())}));
  constexpr int kRequests = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      Client client(socket());
      auto response =
          client.Call(Get("http://" + Local(upstream.port()) + "/" + std::to_string(i)));
      if (response.result_int() == 200 && response.body() == "hello") ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok, kRequests);
  std::vector<Request> records = recorder_.WaitFor(kRequests);
  std::set<std::string> paths;
  for (const Request& r : records) paths.insert(r.path);
  EXPECT_EQ(records.size(), size_t{kRequests});
  EXPECT_EQ(paths.size(), size_t{kRequests});
  EXPECT_EQ(proxy_.totals().requests_allowed, uint64_t{kRequests});
}

TEST(ProxyLifetime, DestroyingTheProxyFirstClosesItsEndpoints) {
  TempDir dir;
  Recorder recorder;
  EchoServer echo;
  auto proxy = std::make_unique<Proxy>(1);
  auto endpoint = proxy->Open(dir / "p.sock", Allow({Local(echo.port())}), recorder.Callback());
  ASSERT_TRUE(endpoint.ok());
  Client client(dir / "p.sock");
  client.Send(ConnectHead(Local(echo.port())));
  client.ReadUntil("\r\n\r\n");
  proxy.reset();
  EXPECT_FALSE(std::filesystem::exists(dir / "p.sock"));
  EXPECT_EQ(recorder.Snapshot().size(), 1u);
  EXPECT_EQ(client.ReadAll(), "");
  endpoint->reset();  // after its proxy: nothing left to do, and no crash
}

}  // namespace
}  // namespace kiln::proxy
