#include "runtime/model/http_client.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <mutex>

namespace kiln::http_client {
namespace {

using Clock = std::chrono::steady_clock;

struct Transfer {
  const Request* req;
  Response* resp;
  CURL* easy;
  Clock::time_point last_byte;
  bool got_body = false;
  bool too_large = false;
};

size_t OnHeader(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  t->last_byte = Clock::now();
  std::string_view line(p, size * n);
  // A new status line (after a 100 Continue or a proxy CONNECT) starts over.
  if (line.rfind("HTTP/", 0) == 0) t->resp->headers.clear();
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() &&
           (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    t->resp->headers[name] = std::string(value);
  }
  return size * n;
}

size_t OnBody(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  t->last_byte = Clock::now();
  t->got_body = true;
  t->resp->bytes_received += size * n;
  if (t->resp->bytes_received > t->req->max_body_bytes) {
    t->too_large = true;
    return 0;  // libcurl ends the transfer (CURLE_WRITE_ERROR)
  }
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  if (t->req->on_body && status >= 200 && status < 300) {
    t->req->on_body(std::string_view(p, size * n));
  } else {
    t->resp->body.append(p, size * n);
  }
  return size * n;
}

// libcurl's sockets, close-on-exec: a keep-alive connection to the model
// gateway must not reach the agent's commands, which could write requests on
// it and have the runtime read their replies as the model's.
curl_socket_t OpenSocket(void*, curlsocktype, curl_sockaddr* a) {
  return ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

const char* Env(const char* upper, const char* lower) {
  const char* v = std::getenv(upper);
  if (!v || !*v) v = std::getenv(lower);
  return v && *v ? v : nullptr;
}

std::once_flag g_init;

}  // namespace

std::string ProxyFor(std::string_view url) {
  const char* v = nullptr;
  if (url.rfind("https://", 0) == 0) {
    v = Env("HTTPS_PROXY", "https_proxy");
  } else if (url.rfind("http://", 0) == 0) {
    v = Env("HTTP_PROXY", "http_proxy");
  }
  if (!v) v = Env("ALL_PROXY", "all_proxy");
  return v ? v : "";
}

Client::Client() {
  std::call_once(g_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  easy_ = curl_easy_init();
  multi_ = curl_multi_init();
}

Client::~Client() {
  if (easy_) curl_easy_cleanup(static_cast<CURL*>(easy_));
  if (multi_) curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

Response Client::Send(const Request& req) {
  auto* easy = static_cast<CURL*>(easy_);
  auto* multi = static_cast<CURLM*>(multi_);
  Response resp;
  if (!easy || !multi) {
    resp.error = Error::Internal("curl_easy_init failed");
    return resp;
  }
  curl_easy_reset(easy);
  Transfer t{&req, &resp, easy, Clock::now()};

  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  // libcurl would send "Expect: 100-continue" for large bodies and wait for it.
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(easy, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  if (req.method == "GET") {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    if (req.method != "POST") curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  if (!req.ca_file.empty()) {
    // Only the bundle: not the system's CA directory besides (as libgit2 does).
    curl_easy_setopt(easy, CURLOPT_CAINFO, req.ca_file.c_str());
    curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
  }
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, OpenSocket);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout_ms));
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
  std::string proxy = ProxyFor(req.url);
  if (!proxy.empty()) {
    curl_easy_setopt(easy, CURLOPT_PROXY, proxy.c_str());
    if (const char* np = Env("NO_PROXY", "no_proxy")) curl_easy_setopt(easy, CURLOPT_NOPROXY, np);
  } else {
    curl_easy_setopt(easy, CURLOPT_PROXY, "");  // none: do not let libcurl guess
  }

  auto start = Clock::now();
  auto deadline = start + std::chrono::milliseconds(req.total_timeout_ms);
  curl_multi_add_handle(multi, easy);
  std::string failure;
  Error::Code failure_code = Error::Code::kIO;
  int running = 1;
  while (running) {
    CURLMcode mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK) {
      failure = std::string("curl_multi_perform: ") + curl_multi_strerror(mc);
      break;
    }
    if (!running) break;
    auto now = Clock::now();
    bool idle_applies = req.streaming || t.got_body;
    if (idle_applies && now - t.last_byte > std::chrono::milliseconds(req.idle_timeout_ms)) {
      failure = "no data from " + req.url + " for " + std::to_string(req.idle_timeout_ms) +
                " ms (idle timeout)";
      failure_code = Error::Code::kTimeout;
      break;
    }
    if (now > deadline) {
      failure = "no complete reply from " + req.url + " within " +
                std::to_string(req.total_timeout_ms) + " ms (request timeout)";
      failure_code = Error::Code::kTimeout;
      break;
    }
    curl_multi_poll(multi, nullptr, 0, 20, nullptr);
  }
  CURLcode code = CURLE_OK;
  if (failure.empty()) {
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg == CURLMSG_DONE && m->easy_handle == easy) code = m->data.result;
    }
  }
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_multi_remove_handle(multi, easy);
  curl_slist_free_all(headers);
  resp.latency_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
  if (!failure.empty()) {
    resp.error = Error(failure_code, req.method + " " + req.url + ": " + failure);
  } else if (t.too_large) {
    resp.error = Error(Error::Code::kInvalidArgument,
                       req.method + " " + req.url + ": the response body is " + "longer than " +
                           std::to_string(req.max_body_bytes) + " bytes; refused");
  } else if (code != CURLE_OK) {
    auto c = code == CURLE_OPERATION_TIMEDOUT ? Error::Code::kTimeout : Error::Code::kIO;
    resp.error =
        Error(c, req.method + " " + req.url + ": " + curl_easy_strerror(code) +
                     (resp.status ? " (after HTTP " + std::to_string(resp.status) + ")" : ""));
  }
  return resp;
}

}  // namespace kiln::http_client
