#include "runtime/model/anthropic_client.h"

#include <map>

#include "runtime/model/client_common.h"
#include "runtime/model/http_client.h"
#include "runtime/model/sse.h"

namespace kiln::anthropic_client {
namespace {

using model::Block;
using nlohmann::json;

void ReadUsage(const json& u, model::Usage& usage) {
  if (!u.is_object()) return;
  auto get = [&](const char* k, uint64_t& out) {
    if (u.contains(k) && u[k].is_number_unsigned()) out = u[k].get<uint64_t>();
  };
  get("input_tokens", usage.input_tokens);
  get("output_tokens", usage.output_tokens);
  get("cache_read_input_tokens", usage.cache_read_tokens);
  get("cache_creation_input_tokens", usage.cache_write_tokens);
}

Block BlockFrom(const json& b) {
  Block out;
  std::string type = b.value("type", "");
  if (type == "text") {
    out.kind = Block::Kind::kText;
    out.text = b.value("text", "");
  } else if (type == "tool_use") {
    out.kind = Block::Kind::kToolUse;
    out.call.id = b.value("id", "");
    out.call.name = b.value("name", "");
    json input = b.value("input", json::object());
    if (input.is_object()) {
      out.call.input = input;
    } else {
      out.call.bad_input = input.dump();
    }
  } else {
    // thinking, redacted_thinking, server tool blocks: kept for the round trip.
    out.kind = Block::Kind::kOther;
    out.raw = b;
  }
  return out;
}

// Accumulates a streamed message from its SSE events.
class StreamState {
 public:
  void On(const sse::Event& ev) {
    if (failed_) return;
    json d;
    try {
      d = json::parse(ev.data);
    } catch (const std::exception& e) {
      Fail("malformed JSON in SSE event " + Quote(ev.event) + ": " + e.what(), true);
      return;
    }
    // Everything about the event's shape is untrusted, its type included.
    std::string type = ev.event;
    try {
      if (d.is_object()) type = d.value("type", ev.event);
      Handle(type, d);
    } catch (const std::exception& e) {
      Fail("unexpected shape of SSE event " + Quote(type) + ": " + e.what(), true);
    }
  }

  bool failed() const { return failed_; }
  bool complete() const { return stopped_; }
  bool retryable() const { return retryable_; }
  const std::string& failure() const { return failure_; }
  const std::string& error_type() const { return error_type_; }
  model::Usage usage;
  model::Reply reply;

 private:
  void Fail(std::string why, bool retryable) {
    failed_ = true;
    retryable_ = retryable;
    failure_ = std::move(why);
  }

  void Handle(const std::string& type, const json& d) {
    if (type == "message_start") {
      const json& m = d.at("message");
      reply.id = m.value("id", "");
      reply.model = m.value("model", "");
      if (m.contains("usage")) ReadUsage(m["usage"], usage);
    } else if (type == "content_block_start") {
      size_t i = d.at("index").get<size_t>();
      blocks_[i] = BlockFrom(d.at("content_block"));
      if (blocks_[i].kind == Block::Kind::kToolUse) json_[i].clear();
    } else if (type == "content_block_delta") {
      size_t i = d.at("index").get<size_t>();
      auto it = blocks_.find(i);
      if (it == blocks_.end())
        return Fail("content_block_delta for unknown block " + std::to_string(i), true);
      const json& delta = d.at("delta");
      std::string dt = delta.value("type", "");
      if (dt == "text_delta") {
        it->second.text += delta.value("text", "");
      } else if (dt == "input_json_delta") {
        json_[i] += delta.value("partial_json", "");
      } else if (dt == "thinking_delta" && it->second.kind == Block::Kind::kOther) {
        it->second.raw["thinking"] =
            it->second.raw.value("thinking", "") + delta.value("thinking", "");
      } else if (dt == "signature_delta" && it->second.kind == Block::Kind::kOther) {
        it->second.raw["signature"] = delta.value("signature", "");
      }
    } else if (type == "content_block_stop") {
      size_t i = d.at("index").get<size_t>();
      auto it = blocks_.find(i);
      if (it != blocks_.end() && it->second.kind == Block::Kind::kToolUse) {
        const std::string& text = json_[i];
        if (!text.empty()) {
          try {
            json input = json::parse(text);
            if (input.is_object()) {
              it->second.call.input = input;
            } else {
              it->second.call.bad_input = text;
            }
          } catch (const std::exception&) {
            it->second.call.bad_input = text;
          }
        }
      }
    } else if (type == "message_delta") {
      if (d.contains("delta") && d["delta"].contains("stop_reason") &&
          d["delta"]["stop_reason"].is_string()) {
        reply.stop_reason = d["delta"]["stop_reason"];
      }
      if (d.contains("usage")) ReadUsage(d["usage"], usage);  // cumulative counts
    } else if (type == "message_stop") {
      stopped_ = true;
      for (auto& [i, b] : blocks_) reply.blocks.push_back(std::move(b));
    } else if (type == "error") {
      const json& e = d.contains("error") ? d["error"] : d;
      error_type_ = e.value("type", "");
      // An overloaded or internal error mid-stream is the streamed form of a
      // 529/500 and is retried like one; anything else is final.
      bool retry = error_type_ == "overloaded_error" || error_type_ == "api_error" ||
                   error_type_ == "rate_limit_error" || error_type_ == "timeout_error";
      Fail("error event in stream: " + error_type_ + ": " + e.value("message", ""), retry);
    }
    // ping and event types added after this client was written are ignored.
  }

  std::map<size_t, Block> blocks_;
  std::map<size_t, std::string> json_;
  bool failed_ = false;
  bool stopped_ = false;
  bool retryable_ = false;
  std::string failure_;
  std::string error_type_;
};

// A message's value in "messages" (alone in an array: BodyWriter's parts).
json MessageJson(const model::Message& m) {
  json content = json::array();
  for (const auto& r : m.results) {
    json b = {{"type", "tool_result"}, {"tool_use_id", r.call_id}, {"content", r.content}};
    if (r.is_error) b["is_error"] = true;
    content.push_back(std::move(b));
  }
  for (const auto& b : m.blocks) {
    if (b.kind == Block::Kind::kText) {
      if (!b.text.empty()) content.push_back({{"type", "text"}, {"text", b.text}});
    } else if (b.kind == Block::Kind::kToolUse) {
      content.push_back({{"type", "tool_use"},
                         {"id", b.call.id},
                         {"name", b.call.name},
                         {"input", b.call.bad_input ? json::object() : b.call.input}});
    } else {
      content.push_back(b.raw);
    }
  }
  if (content.empty()) content.push_back({{"type", "text"}, {"text", "(empty)"}});
  return json::array({{{"role", m.role == model::Message::Role::kUser ? "user" : "assistant"},
                       {"content", content}}});
}

// The body without its messages.
json Envelope(const model::Request& req) {
  json body = {{"model", req.model}, {"max_tokens", req.max_tokens}};
  if (!req.system.empty()) body["system"] = req.system;
  if (req.tools && !req.tools->empty()) {
    json tools = json::array();
    for (const auto& t : *req.tools) {
      tools.push_back(
          {{"name", t.name}, {"description", t.description}, {"input_schema", t.input_schema}});
    }
    body["tools"] = tools;
  }
  if (req.stream) body["stream"] = true;
  return body;
}

class Client : public model::EndpointClient {
 public:
  explicit Client(const Options& o)
      : EndpointClient("anthropic", o.base_url, "/v1/messages", Headers(o)) {}

  std::string Body(const model::Request& req) const override {
    return writer_.Write(Envelope(req), json::array(), *req.messages, MessageJson);
  }

  model::Attempt Send(const model::Request& req, const std::string& body) override {
    return model::SendAndParse<StreamState>(http_, ep_, req, body, "request-id", ParseBody,
                                            "message_stop");
  }

 private:
  static std::vector<std::string> Headers(const Options& o) {
    std::vector<std::string> h = {"anthropic-version: " + o.version};
    if (!o.api_key.empty()) h.push_back("x-api-key: " + o.api_key);
    return h;
  }

  mutable model::BodyWriter writer_;  // Body is const; a client serves one run's loop
};

}  // namespace

json BuildBody(const model::Request& req) {
  json body = Envelope(req);
  body["messages"] = json::array();
  for (const auto& m : *req.messages) body["messages"].push_back(MessageJson(m)[0]);
  return body;
}

void ParseBody(const std::string& body, model::Attempt& a) {
  try {
    json j = json::parse(body);
    if (j.value("type", "") == "error") {
      a.error = Error::Invalid("error object in a 2xx reply: " + j.dump());
      return;
    }
    model::Reply r;
    r.id = j.value("id", "");
    r.model = j.value("model", "");
    if (j.contains("stop_reason") && j["stop_reason"].is_string()) r.stop_reason = j["stop_reason"];
    for (const auto& b : j.at("content")) r.blocks.push_back(BlockFrom(b));
    if (j.contains("usage")) ReadUsage(j["usage"], a.usage);
    a.reply = std::move(r);
  } catch (const std::exception& e) {
    a.error = Error::Invalid(std::string("malformed reply body: ") + e.what());
  }
}

void ParseStream(const std::string& text, model::Attempt& a) {
  model::ParseStreamWith<StreamState>(text, a);
}

std::unique_ptr<model::Client> Make(const Options& opts) { return std::make_unique<Client>(opts); }

}  // namespace kiln::anthropic_client
