// What the two model clients share: building the HTTP request, turning an
// HTTP exchange's failure into a classified Attempt, and parsing provider
// JSON without letting an exception escape.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/model/http_client.h"
#include "runtime/model/model.h"
#include "runtime/model/sse.h"

namespace kiln::model {

struct Endpoint {
  std::string provider;  // "anthropic" or "openai", for messages
  std::string url;
  std::vector<std::string> headers;
};

// What both provider clients are made of: the endpoint (base URL with
// trailing slashes dropped, plus the provider's path and headers) and one
// HTTP connection reused across turns. Each provider adds Body and Send.
class EndpointClient : public Client {
 public:
  EndpointClient(std::string provider, std::string base_url, std::string_view path,
                 std::vector<std::string> headers) {
    while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
    ep_.provider = std::move(provider);
    ep_.url = base_url + std::string(path);
    ep_.headers = std::move(headers);
  }
  std::string provider() const override { return ep_.provider; }
  std::string url() const override { return ep_.url; }

 protected:
  Endpoint ep_;
  http_client::Client http_;
};

// Fills the common fields of attempt from an HTTP response: status, request
// id (request_id_header), body, latency and, for a non-2xx status or a
// transport error, error/retryable/retry_after. Returns true when the
// exchange succeeded at the HTTP level and the body should be parsed.
bool ClassifyHttp(const Endpoint& ep, const http_client::Response& resp,
                  std::string_view request_id_header, Attempt& attempt);

// A request body's JSON text, byte for byte as nlohmann's dump of the whole
// body writes it, with each message's part kept from the previous call while
// the message is unchanged. A turn changes only the conversation's end, and
// building every message again made each request cost time in proportion to
// the conversation so far.
class BodyWriter {
 public:
  // The JSON values a message becomes in "messages" (one; several for an
  // OpenAI tool result's own messages).
  using Parts = std::function<nlohmann::json(const Message&)>;
  // envelope: the body without "messages"; lead: the values before the
  // first message's (OpenAI's system message).
  std::string Write(const nlohmann::json& envelope, const nlohmann::json& lead,
                    const std::vector<Message>& messages, const Parts& parts);

 private:
  std::vector<std::pair<Message, std::string>> kept_;  // each message and its parts' text
};

// A parse or protocol failure of a 2xx reply: retryable, since a garbled
// reply is usually a broken connection or proxy rather than a permanent state.
void ProtocolError(const Endpoint& ep, Attempt& attempt, const std::string& what);

// The API key from the environment variable env_name, or "" when unset.
std::string ApiKeyFrom(const std::string& env_name);

// Runs one POST for req (body already serialized) and fills the common fields.
http_client::Response Exchange(http_client::Client& http, const Endpoint& ep, const Request& req,
                               const std::string& body,
                               std::function<void(std::string_view)> on_body, Attempt& attempt);

// One attempt, as both clients make it: the exchange, then the body parsed by
// parse_body, or the stream fed event by event to a State that offers
// On(sse::Event), failed(), failure(), error_type(), retryable(), complete(),
// usage and reply. end_marker names the event that completes a stream, for
// the error when the stream ends without it.
template <typename State, typename ParseBody>
Attempt SendAndParse(http_client::Client& http, const Endpoint& ep, const Request& req,
                     const std::string& body, std::string_view request_id_header,
                     ParseBody parse_body, std::string_view end_marker) {
  Attempt a;
  State st;
  sse::Parser parser([&](const sse::Event& e) { st.On(e); });
  std::string raw;
  std::function<void(std::string_view)> on_body;
  if (req.stream) {
    on_body = [&](std::string_view b) {
      raw.append(b);
      parser.Feed(b);
    };
  }
  auto resp = Exchange(http, ep, req, body, on_body, a);
  bool http_ok = ClassifyHttp(ep, resp, request_id_header, a);
  if (!req.stream) {
    if (http_ok) {
      a.response_body = resp.body;
      parse_body(resp.body, a);
      if (a.error) ProtocolError(ep, a, a.error->message());
    }
    return a;
  }
  if (resp.status >= 200 && resp.status < 300) a.response_body = raw;
  a.usage = st.usage;  // even a failed stream's tokens were spent
  if (st.failed()) {
    a.error_type = st.error_type();
    ProtocolError(ep, a, st.failure());
    a.retryable = st.retryable();
    return a;
  }
  if (!http_ok) return a;
  if (!st.complete()) {
    ProtocolError(ep, a,
                  "stream ended before " + std::string(end_marker) + " (" +
                      std::to_string(resp.bytes_received) + " bytes received)");
    return a;
  }
  a.reply = st.reply;
  return a;
}

// Parses a whole recorded stream with State (as SendAndParse feeds it live);
// for tests and the fuzz target.
template <typename State>
void ParseStreamWith(const std::string& text, Attempt& a) {
  State st;
  sse::Parser parser([&](const sse::Event& e) { st.On(e); });
  parser.Feed(text);
  a.usage = st.usage;
  if (st.failed()) {
    a.error = Error(Error::Code::kCorruption, st.failure());
    a.retryable = st.retryable();
  } else if (!st.complete()) {
    a.error = Error(Error::Code::kCorruption, "stream ended early");
    a.retryable = true;
  } else {
    a.reply = st.reply;
  }
}

}  // namespace kiln::model
