// Gateways end to end: credentials replaced, paths mapped, event streams
// passed on as they come, and TLS upstreams verified.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>

#include "controller/proxy/gateway.h"
#include "controller/proxy/proxy.h"
#include "controller/proxy/test_servers.h"

namespace kiln::proxy {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

using testing::Client;
using testing::Exchange;
using testing::HttpUpstream;
using testing::Recorder;
using testing::TempDir;

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

class GatewayTest : public ::testing::Test {
 protected:
  std::unique_ptr<Endpoint> Open(std::vector<Gateway> gateways) {
    Policy policy;  // nothing on the allowlist: gateways need no rule
    policy.gateways = std::move(gateways);
    auto endpoint = proxy_.Open(socket(), std::move(policy), recorder_.Callback());
    EXPECT_TRUE(endpoint.ok()) << endpoint.error().message();
    return endpoint.ok() ? std::move(*endpoint) : nullptr;
  }
  std::string socket() const { return dir_ / "proxy.sock"; }

  TempDir dir_;
  Recorder recorder_;
  Proxy proxy_{2};
};

TEST_F(GatewayTest, ReplacesClientCredentialsAndKeepsPathAndQuery) {
  HttpUpstream upstream([](Exchange& ex) {
    ex.write(HttpUpstream::Response(200, R"({"ok":true})", "Content-Type: application/json\r\n"));
  });
  std::string base = "http://127.0.0.1:" + std::to_string(upstream.port()) + "/api/";
  auto endpoint =
      Open({{"anthropic", base, {{"x-api-key", "sk-real"}, {"anthropic-version", "1"}}, ""}});

  Client client(socket());
  http::request<http::string_body> request(http::verb::post,
                                           "/gateway/anthropic/v1/messages?beta=true", 11);
  request.set(http::field::host, "127.0.0.1:3128");
  request.set("x-api-key", "sk-from-the-agent");
  request.set(http::field::authorization, "Bearer stolen");
  request.set("api-key", "also-not");
  request.set("anthropic-version", "0");
  request.set("X-Client", "kept");
  request.body() = R"({"model":"m"})";
  request.prepare_payload();
  auto response = client.Call(request);
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(response.body(), R"({"ok":true})");

  std::vector<testing::SeenRequest> seen = upstream.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/api/v1/messages?beta=true");
  EXPECT_EQ(seen[0].headers["x-api-key"], "sk-real");
  EXPECT_EQ(seen[0].headers["anthropic-version"], "1");
  EXPECT_EQ(seen[0].headers["x-client"], "kept");
  EXPECT_EQ(seen[0].headers["host"], "127.0.0.1:" + std::to_string(upstream.port()));
  EXPECT_EQ(seen[0].headers.count("authorization"), 0u);
  EXPECT_EQ(seen[0].headers.count("api-key"), 0u);
  EXPECT_EQ(seen[0].body, R"({"model":"m"})");

  std::vector<Request> records = recorder_.WaitFor(1);
  ASSERT_EQ(records.size(), 1u);
  const Request& r = records[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.gateway, "anthropic");
  EXPECT_EQ(r.host, "127.0.0.1");
  EXPECT_EQ(r.port, upstream.port());
  EXPECT_EQ(r.path, "/api/v1/messages?beta=true");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.allowed);
  EXPECT_EQ(r.reason, "gateway anthropic");
  EXPECT_EQ(r.bytes_sent, 13u);
  EXPECT_EQ(r.bytes_received, 11u);
}

TEST_F(GatewayTest, EventStreamsArePassedOnEventByEvent) {
  // The upstream holds back its last event until the client has seen the
  // first, so a proxy that buffered the response would make it time out.
  std::mutex mu;
  std::condition_variable cv;
  bool client_saw_first = false;
  std::atomic<bool> waited_in_time{false};
  HttpUpstream upstream([&](Exchange& ex) {
    ex.write(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        "Transfer-Encoding: chunked\r\n\r\n");
    ex.write("d\r\ndata: first\n\n\r\n");
    std::unique_lock lock(mu);
    waited_in_time = cv.wait_for(lock, std::chrono::seconds(5), [&] { return client_saw_first; });
    lock.unlock();
    ex.write("c\r\ndata: last\n\n\r\n0\r\n\r\n");
  });
  auto endpoint = Open({{"openai", "http://127.0.0.1:" + std::to_string(upstream.port()), {}, ""}});
  Client client(socket());
  client.Send(
      "GET /gateway/openai/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
  std::string head_and_first = client.ReadUntil("data: first\n\n");
  EXPECT_TRUE(Contains(head_and_first, "text/event-stream"));
  {
    std::lock_guard lock(mu);
    client_saw_first = true;
  }
  cv.notify_all();
  EXPECT_TRUE(Contains(client.ReadUntil("\r\n0\r\n\r\n"), "data: last\n\n"));
  EXPECT_TRUE(waited_in_time) << "the first event reached the client only with the last";
  std::vector<Request> records = recorder_.WaitFor(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].bytes_received, 25u);
}

TEST_F(GatewayTest, UnknownGatewayIs404NamingIt) {
  auto endpoint = Open({{"anthropic", "http://127.0.0.1:9", {}, ""}});
  Client client(socket());
  auto response = client.CallRaw("GET /gateway/nope/v1/x HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(response.result_int(), 404);
  EXPECT_TRUE(Contains(response.body(), "no gateway named 'nope'")) << response.body();
  EXPECT_TRUE(Contains(response.body(), "anthropic")) << response.body();
  std::vector<Request> records = recorder_.WaitFor(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].status, 404);
  EXPECT_EQ(records[0].gateway, "nope");
  EXPECT_FALSE(records[0].allowed);
}

// A CA file is read once for every endpoint, and read again once it changes.
TEST_F(GatewayTest, ACaFileIsLoadedOnceAndAgainWhenItChanges) {
  testing::TestPki pki = testing::MakePki(dir_, "good");
  testing::TestPki other = testing::MakePki(dir_, "other");
  HttpUpstream upstream(nullptr, testing::ServerTls(pki));
  std::string url = "https://localhost:" + std::to_string(upstream.port());
  std::string ca = dir_ / "ca.pem";
  std::filesystem::copy_file(pki.ca_file, ca);
  auto first = GatewayTls({"g", url, {}, ca});
  auto second = GatewayTls({"g", url, {}, ca});
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second) << "the CA file was loaded twice";

  // The file replaced (as a package update does): a new context, and the new
  // CA, which did not sign the upstream, is the one used.
  std::filesystem::copy_file(other.ca_file, dir_ / "ca.new");
  std::filesystem::rename(dir_ / "ca.new", ca);
  auto third = GatewayTls({"g", url, {}, ca});
  ASSERT_TRUE(third.ok());
  EXPECT_NE(*third, *first);
  auto endpoint = Open({{"g", url, {}, ca}});
  Client client(socket());
  auto response = client.CallRaw("GET /gateway/g/models HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(response.result_int(), 502);
  EXPECT_TRUE(Contains(response.body(), "certificate verify failed")) << response.body();
  EXPECT_TRUE(upstream.seen().empty());
}

// A CA file that cannot be read stops the endpoint from opening; one that
// is not a certificate fails the gateway's requests, saying why.
TEST_F(GatewayTest, ABadCaFileIsAClearError) {
  std::string missing = dir_ / "missing.pem";
  Policy policy;
  policy.gateways = {{"g", "https://localhost:1", {}, missing}};
  auto refused = proxy_.Open(socket(), std::move(policy), recorder_.Callback());
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(Contains(refused.error().message(), "gateway 'g': CA file '" + missing + "'"))
      << refused.error().message();
  EXPECT_FALSE(std::filesystem::exists(socket()));

  std::string garbage = dir_ / "garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";
  auto endpoint = Open({{"g", "https://localhost:1", {}, garbage}});
  Client client(socket());
  auto response = client.CallRaw("GET /gateway/g/models HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(response.result_int(), 502);
  EXPECT_TRUE(Contains(response.body(), "gateway 'g': loading CA file '" + garbage + "'"))
      << response.body();
  std::vector<Request> records = recorder_.WaitFor(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].status, 502);
  EXPECT_TRUE(Contains(records[0].reason, "loading CA file")) << records[0].reason;
}

// One client connection, an https gateway then an http one and back: each
// request dials with its own upstream's TLS (or none).
TEST_F(GatewayTest, OneConnectionMixesHttpsAndHttpGateways) {
  testing::TestPki pki = testing::MakePki(dir_, "good");
  HttpUpstream secure(nullptr, testing::ServerTls(pki));
  HttpUpstream plain;
  auto endpoint =
      Open({{"secure", "https://localhost:" + std::to_string(secure.port()), {}, pki.ca_file},
            {"plain", "http://127.0.0.1:" + std::to_string(plain.port()), {}, ""}});
  Client client(socket());
  for (const char* name : {"secure", "plain", "secure"}) {
    auto response =
        client.CallRaw("GET /gateway/" + std::string(name) + "/models HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(response.result_int(), 200) << name << ": " << response.body();
    EXPECT_EQ(response.body(), "hello") << name;
  }
  EXPECT_EQ(secure.seen().size(), 2u);
  EXPECT_EQ(plain.seen().size(), 1u);
}

TEST_F(GatewayTest, HttpsUpstreamIsVerifiedAgainstTheGatewaysCa) {
  testing::TestPki pki = testing::MakePki(dir_, "good");
  testing::TestPki other = testing::MakePki(dir_, "other");
  HttpUpstream upstream(nullptr, testing::ServerTls(pki));
  std::string url = "https://localhost:" + std::to_string(upstream.port());
  auto endpoint = Open({{"good", url, {{"authorization", "Bearer real"}}, pki.ca_file},
                        {"wrong-ca", url, {}, other.ca_file}});
  {
    Client client(socket());
    auto response = client.CallRaw("GET /gateway/good/models HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(response.result_int(), 200);
    EXPECT_EQ(response.body(), "hello");
  }
  {
    Client client(socket());
    auto response = client.CallRaw("GET /gateway/wrong-ca/models HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(response.result_int(), 502);
    EXPECT_TRUE(Contains(response.body(), "certificate verify failed")) << response.body();
  }
  std::vector<testing::SeenRequest> seen = upstream.seen();
  ASSERT_EQ(seen.size(), 1u);  // the unverified upstream got nothing
  EXPECT_EQ(seen[0].headers["authorization"], "Bearer real");
  EXPECT_EQ(seen[0].target, "/models");

  std::vector<Request> records = recorder_.WaitFor(2);
  ASSERT_EQ(records.size(), 2u);
  const Request& good = records[0].gateway == "good" ? records[0] : records[1];
  const Request& bad = records[0].gateway == "good" ? records[1] : records[0];
  EXPECT_EQ(good.status, 200);
  EXPECT_EQ(bad.status, 502);
  EXPECT_TRUE(bad.allowed);
  EXPECT_EQ(bad.gateway, "wrong-ca");
  EXPECT_TRUE(Contains(bad.reason, "gateway wrong-ca; TLS handshake")) << bad.reason;
}

TEST_F(GatewayTest, InvalidGatewaysFailTheOpen) {
  Policy policy;
  policy.gateways = {{"anthropic", "https://api.example", {}, dir_ / "missing.pem"}};
  auto endpoint = proxy_.Open(socket(), policy, nullptr);
  ASSERT_FALSE(endpoint.ok());
  EXPECT_TRUE(Contains(endpoint.error().message(), "missing.pem")) << endpoint.error().message();
  EXPECT_FALSE(std::filesystem::exists(socket()));
}

}  // namespace
}  // namespace kiln::proxy
