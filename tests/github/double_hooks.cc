// Webhook deliveries: payloads get repository, sender and installation, are
// signed with the secret (X-Hub-Signature-256 and X-Hub-Signature), queued,
// and POSTed in order over plain HTTP by one sender thread, as GitHub
// delivers them: after the change, not from inside the request that made it.
#include <openssl/evp.h>

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp needs std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "tests/github/double_internal.h"

namespace kiln::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using ghd::json;

void GitHubDouble::Impl::QueueHook(const std::string& event, json payload, ghd::Repo& repo,
                                   const std::string& sender_login) {
  payload["repository"] = RepoJson(repo, "");
  payload["sender"] = UserJson(sender_login);
  payload["installation"] = {
      {"id", opt.installation_id},
      {"node_id", "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u" + std::to_string(opt.installation_id)}};
  ghd::StoredDelivery s;
  s.d.id = ghd::Uuid();
  s.d.event = event;
  s.d.action = payload.value("action", "");
  s.d.body = payload.dump();
  s.d.signature = "sha256=" + ghd::Hmac(EVP_sha256(), opt.webhook_secret, s.d.body);
  s.sha1 = "sha1=" + ghd::Hmac(EVP_sha1(), opt.webhook_secret, s.d.body);
  deliveries.push_back(std::move(s));
  if (!opt.webhook_url.empty()) {
    pending.push_back(deliveries.size() - 1);
    hooks_cv.notify_all();
  }
}

void GitHubDouble::Impl::SenderLoop() {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    hooks_cv.wait(lock, [this] { return hooks_stopping || !pending.empty(); });
    if (hooks_stopping) break;
    size_t index = pending.front();
    pending.pop_front();
    sending = true;
    ghd::StoredDelivery copy = deliveries[index];
    lock.unlock();
    ghd::StoredDelivery sent = Send(std::move(copy));
    lock.lock();
    deliveries[index].d.status = sent.d.status;
    deliveries[index].d.response = sent.d.response;
    sending = false;
    hooks_cv.notify_all();
  }
}

ghd::StoredDelivery GitHubDouble::Impl::Send(ghd::StoredDelivery s) const {
  s.d.status = 0;
  s.d.response.clear();
  const std::string& url = opt.webhook_url;
  if (url.rfind("http://", 0) != 0) {
    s.d.response = "webhook_url is not http://: " + url;
    return s;
  }
  std::string rest = url.substr(7);
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  std::string target = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = hostport.rfind(':');
  std::string host = hostport.substr(0, colon);
  std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  try {
    asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(resolver.resolve(host, port));
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, hostport);
    req.set(http::field::user_agent, "GitHub-Hookshot/" + ghd::RandomHex(4).substr(0, 7));
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, "*/*");
    req.set("X-GitHub-Event", s.d.event);
    req.set("X-GitHub-Delivery", s.d.id);
    req.set("X-GitHub-Hook-ID", "424242");
    req.set("X-GitHub-Hook-Installation-Target-Type", "integration");
    req.set("X-GitHub-Hook-Installation-Target-ID", std::to_string(opt.app_id));
    req.set("X-Hub-Signature-256", s.d.signature);
    if (!s.sha1.empty()) req.set("X-Hub-Signature", s.sha1);
    req.keep_alive(false);
    req.body() = s.d.body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16u << 20);
    http::read(stream, buf, parser);
    s.d.status = static_cast<int>(parser.get().result_int());
    s.d.response = parser.get().body();
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  } catch (const std::exception& e) {
    s.d.status = 0;
    s.d.response = std::string("delivery failed: ") + e.what();
  }
  return s;
}

}  // namespace kiln::testing
