#include "controller/github/rest.h"

#include <algorithm>
#include <thread>

namespace kiln::github {

using nlohmann::json;

namespace {

// The path of a URL, for messages ("https://h/api/v3/repos/x" -> "/repos/x"
// when below api_url).
std::string Shown(const std::string& url, const std::string& api_url) {
  if (url.rfind(api_url, 0) == 0) return url.substr(api_url.size());
  return url;
}

Error::Code CodeFor(long status) {
  switch (status) {
    case 400:
    case 422:
      return Error::Code::kInvalidArgument;
    case 401:
    case 403:
      return Error::Code::kPermission;
    case 404:
    case 410:
      return Error::Code::kNotFound;
    default:
      return Error::Code::kIO;
  }
}

// "scheme://host[:port]" of url.
std::string Origin(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  return url.substr(0, url.find('/', scheme + 3));
}

uint64_t ParseSeconds(const std::string& text) {
  try {
    size_t used = 0;
    long long v = std::stoll(text, &used);
    if (used == text.size() && v >= 0) return static_cast<uint64_t>(v);
  } catch (const std::exception&) {
  }
  return 0;
}

}  // namespace

std::string NextLink(const std::string& link) {
  // Link: <https://...&page=2>; rel="next", <https://...&page=5>; rel="last"
  size_t pos = 0;
  while (pos < link.size()) {
    size_t open = link.find('<', pos);
    if (open == std::string::npos) break;
    size_t close = link.find('>', open);
    if (close == std::string::npos) break;
    size_t end = link.find(',', close);
    std::string params = link.substr(close + 1, end == std::string::npos ? end : end - close - 1);
    if (params.find("rel=\"next\"") != std::string::npos) {
      return link.substr(open + 1, close - open - 1);
    }
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return "";
}

std::string ErrorText(const json& body) {
  if (!body.is_object()) return body.is_string() ? body.get<std::string>() : "";
  std::string text = body.value("message", "");
  if (auto it = body.find("errors"); it != body.end() && it->is_array()) {
    for (const auto& e : *it) {
      std::string one;
      if (e.is_string()) {
        one = e.get<std::string>();
      } else if (e.is_object()) {
        one = e.value("message", "");
        if (one.empty()) {
          one = e.value("resource", "") + "." + e.value("field", "") + " " + e.value("code", "");
        }
      }
      if (!one.empty()) text += (text.empty() ? "" : ": ") + one;
    }
  }
  return text;
}

Rest::Rest(RestOptions options) : options_(std::move(options)) {
  while (!options_.api_url.empty() && options_.api_url.back() == '/') options_.api_url.pop_back();
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::milliseconds ms) { std::this_thread::sleep_for(ms); };
  }
  if (!options_.now_s) {
    options_.now_s = [] {
      return std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

std::string Rest::Url(const std::string& path) const {
  if (path.rfind("https://", 0) == 0 || path.rfind("http://", 0) == 0) return path;
  return options_.api_url + path;
}

std::unique_ptr<http_client::Client> Rest::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.empty()) return std::make_unique<http_client::Client>();
  auto c = std::move(idle_.back());
  idle_.pop_back();
  return c;
}

void Rest::Give(std::unique_ptr<http_client::Client> client) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(client));
}

Result<Reply> Rest::Once(const std::string& method, const std::string& url, const std::string& body,
                         const std::string& authorization, Attempt& attempt) {
  bool& retry = attempt.retry;
  uint64_t& wait_ms = attempt.wait_ms;
  attempt = {};
  const std::string what = "GitHub " + method + " " + Shown(url, options_.api_url);
  http_client::Request req;
  req.method = method;
  req.url = url;
  req.headers = {"Accept: application/vnd.github+json", "X-GitHub-Api-Version: 2022-11-28",
                 "User-Agent: " + options_.user_agent};
  if (!authorization.empty()) req.headers.push_back("Authorization: " + authorization);
  if (method != "GET") {
    req.headers.push_back("Content-Type: application/json");
    req.body = body;
  }
  req.ca_file = options_.ca_file;
  req.connect_timeout_ms = 10'000;
  req.idle_timeout_ms = 60'000;
  req.total_timeout_ms = 120'000;
  auto client = Take();
  http_client::Response resp = client->Send(req);
  Give(std::move(client));
  attempt.status = resp.error ? 0 : resp.status;

  if (resp.error) {
    retry = method != "POST";
    return Error(resp.error->code(), what + ": " + resp.error->message());
  }
  json parsed;
  if (!resp.body.empty()) {
    parsed = json::parse(resp.body, nullptr, false);
    if (parsed.is_discarded()) {
      if (resp.status >= 200 && resp.status < 300) {
        return Error(Error::Code::kIO,
                     what + ": " + std::to_string(resp.status) + " with a body that is not JSON");
      }
      parsed = resp.body.substr(0, 200);
    }
  }
  if (resp.status >= 200 && resp.status < 300) {
    return Reply{resp.status, std::move(resp.headers), std::move(parsed)};
  }
  std::string text = ErrorText(parsed);
  std::string message =
      what + ": " + std::to_string(resp.status) + (text.empty() ? "" : " " + text);
  auto header = [&](const char* name) {
    auto it = resp.headers.find(name);
    return it == resp.headers.end() ? std::string() : it->second;
  };
  if (resp.status == 301 || resp.status == 302 || resp.status == 307 || resp.status == 308) {
    attempt.location = header("location");
  }
  if (resp.status == 403 || resp.status == 429) {
    if (std::string after = header("retry-after"); !after.empty()) {
      wait_ms = std::max<uint64_t>(ParseSeconds(after), 1) * 1000;
      retry = true;
    } else if (header("x-ratelimit-remaining") == "0") {
      int64_t reset = static_cast<int64_t>(ParseSeconds(header("x-ratelimit-reset")));
      wait_ms = static_cast<uint64_t>(std::max<int64_t>(reset - options_.now_s(), 0) + 1) * 1000;
      retry = true;
    }
    if (retry) return Error(Error::Code::kTimeout, message);
  }
  if (resp.status >= 500) retry = method != "POST";
  return Error(CodeFor(resp.status), message);
}

// Redirects followed for one call, as curl and browsers cap them.
constexpr int kMaxRedirects = 5;

Result<Reply> Rest::Call(const std::string& method, const std::string& path, const json& body,
                         const std::string& authorization, long* status) {
  std::string url = Url(path);
  // Text from agents may hold invalid UTF-8: replaced, never thrown.
  const std::string text =
      body.is_null() ? "" : body.dump(-1, ' ', false, json::error_handler_t::replace);
  uint64_t backoff = options_.backoff_ms;
  int redirects = 0;
  for (int n = 1;; ++n) {
    if (Origin(url) != Origin(options_.api_url)) {
      // A Link or a redirect to another host would carry the token there.
      return Error::Invalid("GitHub " + method + " " + Quote(url) + ": not on " +
                            Quote(options_.api_url));
    }
    Attempt attempt;
    auto reply = Once(method, url, text, authorization, attempt);
    if (status) *status = attempt.status;
    if (!reply && !attempt.location.empty() && redirects < kMaxRedirects) {
      // A renamed or transferred repository: GitHub answers 301 (307 for
      // a write) with the new address, and the request is repeated there
      // with the same method and body.
      ++redirects;
      --n;
      const std::string& to = attempt.location;
      url = to.starts_with("//")  ? "https:" + to  // another host, refused above
            : to.starts_with("/") ? Origin(options_.api_url) + to
                                  : to;
      continue;
    }
    if (reply || !attempt.retry || n >= options_.max_attempts) return reply;
    uint64_t wait_ms = attempt.wait_ms;
    if (wait_ms == 0) {
      wait_ms = backoff;
      backoff *= 2;
    }
    if (wait_ms > options_.max_wait_ms) {
      return Error(Error::Code::kTimeout, reply.error().message() + " (rate limited for " +
                                              std::to_string(wait_ms / 1000) +
                                              " s, longer than kiln waits)");
    }
    options_.sleep(std::chrono::milliseconds(wait_ms));
  }
}

Result<json> Rest::List(const std::string& path, const std::string& authorization, long* status) {
  std::string next = path + (path.find('?') == std::string::npos ? "?" : "&") + "per_page=100";
  json all = json::array();
  // A server that links forever must not keep kiln here forever.
  for (int page = 0; !next.empty(); ++page) {
    if (page == 1000) return Error(Error::Code::kIO, "GitHub GET " + path + ": over 1000 pages");
    KILN_ASSIGN_OR_RETURN(Reply reply, Call("GET", next, nullptr, authorization, status));
    if (!reply.body.is_array()) {
      return Error(Error::Code::kIO, "GitHub GET " + path + ": the answer is not a list");
    }
    for (auto& item : reply.body) all.push_back(std::move(item));
    auto link = reply.headers.find("link");
    next = link == reply.headers.end() ? "" : NextLink(link->second);
  }
  return all;
}

}  // namespace kiln::github
