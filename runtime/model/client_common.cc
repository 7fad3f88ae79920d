#include "runtime/model/client_common.h"

#include <algorithm>
#include <cstdlib>

#include "runtime/model/retry.h"

namespace kiln::model {
namespace {

// nlohmann's compact dump, invalid UTF-8 replaced: how a body is written.
std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The values of array a as the text between its brackets: "v1,v2".
std::string Elements(const nlohmann::json& a) {
  std::string out;
  for (const auto& v : a) out += (out.empty() ? "" : ",") + Dump(v);
  return out;
}

}  // namespace

std::string BodyWriter::Write(const nlohmann::json& envelope, const nlohmann::json& lead,
                              const std::vector<Message>& messages, const Parts& parts) {
  kept_.resize(std::min(kept_.size(), messages.size()));
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i < kept_.size() && kept_[i].first == messages[i]) continue;
    std::pair<Message, std::string> k{messages[i], Elements(parts(messages[i]))};
    if (i < kept_.size()) {
      kept_[i] = std::move(k);
    } else {
      kept_.push_back(std::move(k));
    }
  }
  std::string list = "[" + Elements(lead);
  for (const auto& [message, text] : kept_) {
    if (text.empty()) continue;
    if (list.size() > 1) list += ',';
    list += text;
  }
  list += ']';
  // The members in nlohmann's order (std::map's: sorted), "messages" among them.
  std::string out = "{";
  bool placed = false;
  auto member = [&](const std::string& key, const std::string& value) {
    if (out.size() > 1) out += ',';
    out += Dump(key) + ':' + value;
  };
  for (const auto& [key, value] : envelope.items()) {
    if (!placed && key > "messages") {
      member("messages", list);
      placed = true;
    }
    member(key, Dump(value));
  }
  if (!placed) member("messages", list);
  return out + '}';
}

bool ClassifyHttp(const Endpoint& ep, const http_client::Response& resp,
                  std::string_view request_id_header, Attempt& attempt) {
  attempt.status = resp.status;
  attempt.latency_ms = resp.latency_ms;
  if (auto it = resp.headers.find(std::string(request_id_header)); it != resp.headers.end()) {
    attempt.request_id = it->second;
  }
  if (resp.status >= 200 && resp.status < 300 && !resp.error) return true;
  std::string suffix = attempt.request_id.empty() ? "" : " (request id " + attempt.request_id + ")";
  if (resp.status == 0 || (resp.status >= 200 && resp.status < 300)) {
    // Connection failures, timeouts and cut streams: worth another attempt;
    // a reply too large to record would be as large again.
    attempt.error = resp.error->Wrap(ep.provider);
    attempt.retryable = resp.error->code() != Error::Code::kInvalidArgument;
    return false;
  }
  attempt.response_body = resp.body;
  std::string type, message;
  try {
    auto j = nlohmann::json::parse(resp.body);
    const auto& e = j.contains("error") ? j["error"] : j;
    if (e.is_object()) {
      if (e.contains("type") && e["type"].is_string()) type = e["type"];
      if (e.contains("code") && e["code"].is_string()) type = e["code"];
      if (e.contains("message") && e["message"].is_string()) message = e["message"];
    } else if (e.is_string()) {
      message = e.get<std::string>();
    }
  } catch (const std::exception&) {
    message = resp.body.substr(0, 500);
  }
  attempt.error_type = type;
  attempt.retryable = retry::RetryableStatus(resp.status) &&
                      !(resp.status == 429 && retry::PermanentRateLimit(type, message));
  auto ra = resp.headers.find("retry-after");
  auto ra_ms = resp.headers.find("retry-after-ms");
  attempt.retry_after_ms = retry::ParseRetryAfter(ra == resp.headers.end() ? "" : ra->second,
                                                  ra_ms == resp.headers.end() ? "" : ra_ms->second);
  attempt.error = Error(
      resp.status == 401 || resp.status == 403 ? Error::Code::kPermission : Error::Code::kIO,
      ep.provider + ": HTTP " + std::to_string(resp.status) + (type.empty() ? "" : " " + type) +
          (message.empty() ? "" : ": " + message) + suffix);
  return false;
}

void ProtocolError(const Endpoint& ep, Attempt& attempt, const std::string& what) {
  attempt.reply.reset();
  attempt.retryable = true;
  attempt.error =
      Error(Error::Code::kCorruption,
            ep.provider + ": " + what +
                (attempt.request_id.empty() ? "" : " (request id " + attempt.request_id + ")"));
}

std::string ApiKeyFrom(const std::string& env_name) {
  if (env_name.empty()) return "";
  const char* v = std::getenv(env_name.c_str());
  return v ? v : "";
}

http_client::Response Exchange(http_client::Client& http, const Endpoint& ep, const Request& req,
                               const std::string& body,
                               std::function<void(std::string_view)> on_body, Attempt& attempt) {
  http_client::Request hr;
  hr.url = ep.url;
  hr.headers = ep.headers;
  hr.headers.push_back("Content-Type: application/json");
  if (req.stream) hr.headers.push_back("Accept: text/event-stream");
  hr.body = body;
  hr.connect_timeout_ms = req.connect_timeout_ms;
  hr.idle_timeout_ms = req.idle_timeout_ms;
  hr.total_timeout_ms = req.total_timeout_ms;
  hr.streaming = req.stream;
  hr.on_body = std::move(on_body);
  attempt.url = ep.url;
  attempt.request_body = body;
  return http.Send(hr);
}

}  // namespace kiln::model
