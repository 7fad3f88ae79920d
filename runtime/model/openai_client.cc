#include "runtime/model/openai_client.h"

#include <map>

#include "runtime/model/client_common.h"
#include "runtime/model/http_client.h"
#include "runtime/model/sse.h"

namespace kiln::openai_client {
namespace {

using model::Block;
using nlohmann::json;

void ReadUsage(const json& u, model::Usage& usage) {
  if (!u.is_object()) return;
  uint64_t prompt = u.value("prompt_tokens", uint64_t{0});
  uint64_t cached = 0;
  if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object()) {
    cached = u["prompt_tokens_details"].value("cached_tokens", uint64_t{0});
  }
  usage.input_tokens = prompt >= cached ? prompt - cached : prompt;
  usage.cache_read_tokens = cached;
  usage.output_tokens = u.value("completion_tokens", uint64_t{0});
}

Block ToolBlock(const std::string& id, const std::string& name, const std::string& args) {
  Block b;
  b.kind = Block::Kind::kToolUse;
  b.call.id = id;
  b.call.name = name;
  if (args.empty()) return b;
  try {
    json input = json::parse(args);
    if (input.is_object()) {
      b.call.input = input;
    } else {
      b.call.bad_input = args;
    }
  } catch (const std::exception&) {
    b.call.bad_input = args;
  }
  return b;
}

struct Fragment {
  std::string id, name, args;
};

class StreamState {
 public:
  void On(const sse::Event& ev) {
    if (failed_ || done_) return;
    if (ev.data == "[DONE]") {
      done_ = true;
      Finish();
      return;
    }
    json d;
    try {
      d = json::parse(ev.data);
    } catch (const std::exception& e) {
      return Fail(std::string("malformed JSON in stream chunk: ") + e.what(), true);
    }
    try {
      if (d.contains("error") && !d["error"].is_null()) {
        const json& e = d["error"];
        error_type_ = e.is_object() ? e.value("code", e.value("type", "")) : "";
        std::string msg = e.is_object() ? e.value("message", "") : e.dump();
        // Server-side trouble is retried like the status it stands for; a
        // client error (bad request, context too long) would fail again.
        bool retry = false;
        for (const char* t : {"server_error", "rate_limit_exceeded", "overloaded",
                              "overloaded_error", "api_error", "internal_error", "timeout"}) {
          retry |= error_type_ == t;
        }
        return Fail("error in stream: " + error_type_ + ": " + msg, retry);
      }
      if (d.contains("id") && d["id"].is_string()) reply.id = d["id"];
      if (d.contains("model") && d["model"].is_string()) reply.model = d["model"];
      if (d.contains("usage") && d["usage"].is_object()) ReadUsage(d["usage"], usage);
      if (!d.contains("choices") || !d["choices"].is_array()) return;
      for (const auto& c : d["choices"]) {
        if (c.value("index", 0) != 0) continue;
        if (c.contains("finish_reason") && c["finish_reason"].is_string()) {
          reply.stop_reason = MapFinishReason(c["finish_reason"]);
        }
        if (!c.contains("delta")) continue;
        const json& delta = c["delta"];
        if (delta.contains("content") && delta["content"].is_string())
          text_ += delta["content"].get<std::string>();
        if (delta.contains("refusal") && delta["refusal"].is_string()) {
          text_ += delta["refusal"].get<std::string>();
          refused_ = true;
        }
        if (delta.contains("tool_calls") && delta["tool_calls"].is_array()) {
          for (const auto& tc : delta["tool_calls"]) {
            Fragment& f = calls_[tc.value("index", 0)];
            if (tc.contains("id") && tc["id"].is_string()) f.id = tc["id"];
            if (tc.contains("function")) {
              const json& fn = tc["function"];
              if (fn.contains("name") && fn["name"].is_string())
                f.name += fn["name"].get<std::string>();
              if (fn.contains("arguments") && fn["arguments"].is_string()) {
                f.args += fn["arguments"].get<std::string>();
              }
            }
          }
        }
      }
    } catch (const std::exception& e) {
      Fail(std::string("unexpected shape of stream chunk: ") + e.what(), true);
    }
  }

  bool failed() const { return failed_; }
  bool complete() const { return done_; }
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
  void Finish() {
    if (!text_.empty()) {
      Block b;
      b.text = text_;
      reply.blocks.push_back(b);
    }
    for (const auto& [i, f] : calls_) reply.blocks.push_back(ToolBlock(f.id, f.name, f.args));
    if (refused_) reply.stop_reason = "refusal";
  }

  std::string text_;
  bool refused_ = false;
  std::map<int, Fragment> calls_;
  bool failed_ = false, done_ = false, retryable_ = false;
  std::string failure_, error_type_;
};

// The values a message becomes in "messages": a tool result is a message
// of its own, right after the assistant's calls.
json MessageJson(const model::Message& m) {
  json messages = json::array();
  for (const auto& r : m.results) {
    messages.push_back({{"role", "tool"},
                        {"tool_call_id", r.call_id},
                        {"content", r.is_error ? "Error: " + r.content : r.content}});
  }
  std::string text;
  json calls = json::array();
  for (const auto& b : m.blocks) {
    if (b.kind == Block::Kind::kText) {
      text += b.text;
    } else if (b.kind == Block::Kind::kToolUse) {
      calls.push_back(
          {{"id", b.call.id},
           {"type", "function"},
           {"function",
            {{"name", b.call.name},
             {"arguments", b.call.bad_input ? *b.call.bad_input : b.call.input.dump()}}}});
    }
  }
  if (m.role == model::Message::Role::kUser) {
    if (!text.empty() || m.results.empty())
      messages.push_back({{"role", "user"}, {"content", text}});
  } else {
    json msg = {{"role", "assistant"}, {"content", text.empty() ? json(nullptr) : json(text)}};
    if (!calls.empty()) msg["tool_calls"] = calls;
    messages.push_back(std::move(msg));
  }
  return messages;
}

// The messages before the conversation's: the system prompt.
json Lead(const model::Request& req) {
  json lead = json::array();
  if (!req.system.empty()) lead.push_back({{"role", "system"}, {"content", req.system}});
  return lead;
}

// The body without its messages.
json Envelope(const model::Request& req) {
  json body = {{"model", req.model}, {"max_tokens", req.max_tokens}};
  if (req.tools && !req.tools->empty()) {
    json tools = json::array();
    for (const auto& t : *req.tools) {
      tools.push_back(
          {{"type", "function"},
           {"function",
            {{"name", t.name}, {"description", t.description}, {"parameters", t.input_schema}}}});
    }
    body["tools"] = tools;
  }
  if (req.stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  return body;
}

class Client : public model::EndpointClient {
 public:
  explicit Client(const Options& o)
      : EndpointClient("openai", o.base_url, "/chat/completions",
                       o.api_key.empty()
                           ? std::vector<std::string>{}
                           : std::vector<std::string>{"Authorization: Bearer " + o.api_key}) {}

  std::string Body(const model::Request& req) const override {
    return writer_.Write(Envelope(req), Lead(req), *req.messages, MessageJson);
  }

  model::Attempt Send(const model::Request& req, const std::string& body) override {
    return model::SendAndParse<StreamState>(http_, ep_, req, body, "x-request-id", ParseBody,
                                            "data: [DONE]");
  }

 private:
  mutable model::BodyWriter writer_;  // Body is const; a client serves one run's loop
};

}  // namespace

std::string MapFinishReason(const std::string& f) {
  if (f == "stop") return "end_turn";
  if (f == "length") return "max_tokens";
  if (f == "tool_calls" || f == "function_call") return "tool_use";
  if (f == "content_filter") return "refusal";
  return f;
}

json BuildBody(const model::Request& req) {
  json body = Envelope(req);
  body["messages"] = Lead(req);
  for (const auto& m : *req.messages) {
    for (auto& part : MessageJson(m)) body["messages"].push_back(std::move(part));
  }
  return body;
}

void ParseBody(const std::string& body, model::Attempt& a) {
  try {
    json j = json::parse(body);
    model::Reply r;
    r.id = j.value("id", "");
    r.model = j.value("model", "");
    if (j.contains("usage")) ReadUsage(j["usage"], a.usage);
    const json& choice = j.at("choices").at(0);
    const json& msg = choice.at("message");
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      r.stop_reason = MapFinishReason(choice["finish_reason"]);
    }
    if (msg.contains("content") && msg["content"].is_string() &&
        !msg["content"].get<std::string>().empty()) {
      Block b;
      b.text = msg["content"];
      r.blocks.push_back(b);
    }
    if (msg.contains("refusal") && msg["refusal"].is_string()) {
      Block b;
      b.text = msg["refusal"];
      r.blocks.push_back(b);
      r.stop_reason = "refusal";
    }
    if (msg.contains("tool_calls") && msg["tool_calls"].is_array()) {
      for (const auto& tc : msg["tool_calls"]) {
        const json& fn = tc.at("function");
        std::string args = fn.contains("arguments") && fn["arguments"].is_string()
                               ? fn["arguments"].get<std::string>()
                               : std::string();
        r.blocks.push_back(ToolBlock(tc.value("id", ""), fn.value("name", ""), args));
      }
    }
    a.reply = std::move(r);
  } catch (const std::exception& e) {
    a.error = Error::Invalid(std::string("malformed reply body: ") + e.what());
  }
}

void ParseStream(const std::string& text, model::Attempt& a) {
  model::ParseStreamWith<StreamState>(text, a);
}

std::unique_ptr<model::Client> Make(const Options& opts) { return std::make_unique<Client>(opts); }

}  // namespace kiln::openai_client
