#include "tests/modelserver/wire.h"

#include <cctype>
#include <ctime>
#include <map>
#include <string_view>

namespace kiln::modelserver {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string AnthropicErrorType(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 529:
      return "overloaded_error";
    default:
      return "api_error";
  }
}

std::string OpenAIErrorCode(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "invalid_api_key";
    case 429:
      return "rate_limit_exceeded";
    default:
      return "server_error";
  }
}

// Splits s into n roughly equal pieces (at least one), as a real stream does.
std::vector<std::string> Pieces(const std::string& s, size_t n) {
  std::vector<std::string> out;
  if (s.empty()) return {""};
  size_t step = std::max<size_t>(1, (s.size() + n - 1) / n);
  for (size_t i = 0; i < s.size(); i += step) out.push_back(s.substr(i, step));
  return out;
}

std::string Sse(const std::string& event, const json& data) {
  return (event.empty() ? "" : "event: " + event + "\n") + "data: " + Dump(data) + "\n\n";
}

std::string StopReason(const Reply& r) {
  if (!r.stop_reason.empty()) return r.stop_reason;
  return r.tool_calls.empty() ? "end_turn" : "tool_use";
}

std::string FinishReason(const std::string& stop) {
  if (stop == "end_turn" || stop == "stop_sequence") return "stop";
  if (stop == "max_tokens") return "length";
  if (stop == "tool_use") return "tool_calls";
  if (stop == "refusal") return "content_filter";
  return stop;
}

std::string ArgsOf(const ToolCall& c) { return c.raw_arguments ? *c.raw_arguments : Dump(c.input); }

Rendered AnthropicReply(const Reply& r, const json& req, uint64_t n, uint64_t in, uint64_t out) {
  Rendered x;
  x.headers.push_back({"request-id", "req_kiln_" + std::to_string(n)});
  std::string id = "msg_kiln_" + std::to_string(n);
  std::string model = req.value("model", "scripted");
  std::string stop = StopReason(r);
  json content = json::array();
  if (!r.text.empty()) content.push_back({{"type", "text"}, {"text", r.text}});
  for (size_t i = 0; i < r.tool_calls.size(); ++i) {
    const auto& c = r.tool_calls[i];
    json input = c.raw_arguments ? json(*c.raw_arguments) : c.input;
    content.push_back(
        {{"type", "tool_use"},
         {"id", c.id.empty() ? "toolu_kiln_" + std::to_string(n) + "_" + std::to_string(i) : c.id},
         {"name", c.name},
         {"input", input}});
  }
  if (!req.value("stream", false)) {
    x.body = Dump({{"id", id},
                   {"type", "message"},
                   {"role", "assistant"},
                   {"model", model},
                   {"content", content},
                   {"stop_reason", stop},
                   {"stop_sequence", nullptr},
                   {"usage", {{"input_tokens", in}, {"output_tokens", out}}}});
    return x;
  }
  x.stream = true;
  x.events.push_back(
      Sse("message_start", {{"type", "message_start"},
                            {"message",
                             {{"id", id},
                              {"type", "message"},
                              {"role", "assistant"},
                              {"model", model},
                              {"content", json::array()},
                              {"stop_reason", nullptr},
                              {"stop_sequence", nullptr},
                              {"usage", {{"input_tokens", in}, {"output_tokens", 1}}}}}}));
  x.events.push_back(Sse("ping", {{"type", "ping"}}));
  int index = 0;
  if (!r.text.empty()) {
    x.events.push_back(
        Sse("content_block_start", {{"type", "content_block_start"},
                                    {"index", index},
                                    {"content_block", {{"type", "text"}, {"text", ""}}}}));
    for (const auto& p : Pieces(r.text, 3)) {
      x.events.push_back(
          Sse("content_block_delta", {{"type", "content_block_delta"},
                                      {"index", index},
                                      {"delta", {{"type", "text_delta"}, {"text", p}}}}));
    }
    x.events.push_back(
        Sse("content_block_stop", {{"type", "content_block_stop"}, {"index", index}}));
    ++index;
  }
  for (size_t i = 0; i < r.tool_calls.size(); ++i, ++index) {
    const auto& c = r.tool_calls[i];
    std::string tid =
        c.id.empty() ? "toolu_kiln_" + std::to_string(n) + "_" + std::to_string(i) : c.id;
    x.events.push_back(
        Sse("content_block_start",
            {{"type", "content_block_start"},
             {"index", index},
             {"content_block",
              {{"type", "tool_use"}, {"id", tid}, {"name", c.name}, {"input", json::object()}}}}));
    for (const auto& p : Pieces(ArgsOf(c), 3)) {
      x.events.push_back(Sse("content_block_delta",
                             {{"type", "content_block_delta"},
                              {"index", index},
                              {"delta", {{"type", "input_json_delta"}, {"partial_json", p}}}}));
    }
    x.events.push_back(
        Sse("content_block_stop", {{"type", "content_block_stop"}, {"index", index}}));
  }
  x.events.push_back(
      Sse("message_delta", {{"type", "message_delta"},
                            {"delta", {{"stop_reason", stop}, {"stop_sequence", nullptr}}},
                            {"usage", {{"output_tokens", out}}}}));
  x.events.push_back(Sse("message_stop", {{"type", "message_stop"}}));
  return x;
}

Rendered OpenAIReply(const Reply& r, const json& req, uint64_t n, uint64_t in, uint64_t out) {
  Rendered x;
  x.headers.push_back({"x-request-id", "req_kiln_" + std::to_string(n)});
  std::string id = "chatcmpl-kiln-" + std::to_string(n);
  std::string model = req.value("model", "scripted");
  std::string finish = FinishReason(StopReason(r));
  auto created = static_cast<int64_t>(std::time(nullptr));
  json usage = {{"prompt_tokens", in}, {"completion_tokens", out}, {"total_tokens", in + out}};
  auto call_id = [&](size_t i, const ToolCall& c) {
    return c.id.empty() ? "call_kiln_" + std::to_string(n) + "_" + std::to_string(i) : c.id;
  };
  bool refusal = StopReason(r) == "refusal";
  if (!req.value("stream", false)) {
    json msg = {{"role", "assistant"},
                {"content", r.text.empty() || refusal ? json(nullptr) : json(r.text)},
                {"refusal", refusal ? json(r.text) : json(nullptr)}};
    if (!r.tool_calls.empty()) {
      json calls = json::array();
      for (size_t i = 0; i < r.tool_calls.size(); ++i) {
        calls.push_back(
            {{"id", call_id(i, r.tool_calls[i])},
             {"type", "function"},
             {"function",
              {{"name", r.tool_calls[i].name}, {"arguments", ArgsOf(r.tool_calls[i])}}}});
      }
      msg["tool_calls"] = calls;
    }
    x.body = Dump({{"id", id},
                   {"object", "chat.completion"},
                   {"created", created},
                   {"model", model},
                   {"choices", {{{"index", 0}, {"message", msg}, {"finish_reason", finish}}}},
                   {"usage", usage}});
    return x;
  }
  x.stream = true;
  auto chunk = [&](json delta, json fin) {
    return Sse(
        "", {{"id", id},
             {"object", "chat.completion.chunk"},
             {"created", created},
             {"model", model},
             {"choices", {{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", fin}}}}});
  };
  x.events.push_back(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
  for (const auto& p : Pieces(r.text, 3)) {
    if (!p.empty()) x.events.push_back(chunk({{refusal ? "refusal" : "content", p}}, nullptr));
  }
  for (size_t i = 0; i < r.tool_calls.size(); ++i) {
    const auto& c = r.tool_calls[i];
    x.events.push_back(chunk({{"tool_calls",
                               {{{"index", i},
                                 {"id", call_id(i, c)},
                                 {"type", "function"},
                                 {"function", {{"name", c.name}, {"arguments", ""}}}}}}},
                             nullptr));
    for (const auto& p : Pieces(ArgsOf(c), 3)) {
      x.events.push_back(
          chunk({{"tool_calls", {{{"index", i}, {"function", {{"arguments", p}}}}}}}, nullptr));
    }
  }
  x.events.push_back(chunk(json::object(), finish));
  const json& opts = req.value("stream_options", json::object());
  if (opts.is_object() && opts.value("include_usage", false)) {
    x.events.push_back(Sse("", {{"id", id},
                                {"object", "chat.completion.chunk"},
                                {"created", created},
                                {"model", model},
                                {"choices", json::array()},
                                {"usage", usage}}));
  }
  x.events.push_back("data: [DONE]\n\n");
  return x;
}

}  // namespace

Rendered RenderError(Format f, int status, const std::string& type, const std::string& message,
                     uint64_t n) {
  Rendered x;
  x.status = status;
  if (f == Format::kAnthropic) {
    x.headers.push_back({"request-id", "req_kiln_" + std::to_string(n)});
    x.body = Dump(
        {{"type", "error"},
         {"error",
          {{"type", type.empty() ? AnthropicErrorType(status) : type}, {"message", message}}}});
  } else {
    x.headers.push_back({"x-request-id", "req_kiln_" + std::to_string(n)});
    std::string code = type.empty() ? OpenAIErrorCode(status) : type;
    x.body = Dump({{"error",
                    {{"message", message},
                     {"type", code == "insufficient_quota" ? "insufficient_quota" : "api_error"},
                     {"param", nullptr},
                     {"code", code}}}});
  }
  return x;
}

Rendered Render(Format f, const Reply& r, const json& req, uint64_t n, size_t request_bytes) {
  if (r.fault && r.fault->kind == "http") {
    Rendered x = RenderError(f, r.fault->status, r.fault->error_type, r.fault->message, n);
    if (!r.fault->retry_after.empty()) x.headers.push_back({"retry-after", r.fault->retry_after});
    return x;
  }
  uint64_t in = r.input_tokens.value_or(request_bytes / 4);
  size_t out_bytes = r.text.size();
  for (const auto& c : r.tool_calls) out_bytes += ArgsOf(c).size() + c.name.size();
  uint64_t out = r.output_tokens.value_or(out_bytes / 4 + 1);
  Rendered x = f == Format::kAnthropic ? AnthropicReply(r, req, n, in, out)
                                       : OpenAIReply(r, req, n, in, out);
  if (!r.fault) return x;
  const Fault& fault = *r.fault;
  size_t at =
      std::min<size_t>(static_cast<size_t>(std::max(0, fault.after_events)), x.events.size());
  if (fault.kind == "malformed") {
    if (!x.stream) {
      x.body = x.body.substr(0, x.body.size() / 2);  // valid length, invalid JSON
    } else {
      std::string bad = f == Format::kAnthropic
                            ? "event: content_block_delta\ndata: {\"type\": "
                              "\"content_block_delta\", \"index\": 0, \"delta\": {\n\n"
                            : "data: {\"choices\": [{\"delta\": \n\n";
      x.events.insert(x.events.begin() + static_cast<long>(at), bad);
    }
  } else if (fault.kind == "stream_error") {
    std::string type = fault.error_type.empty()
                           ? (f == Format::kAnthropic ? "overloaded_error" : "server_error")
                           : fault.error_type;
    if (!x.stream) return RenderError(f, 200, type, fault.message, n);
    x.events.resize(at);
    if (f == Format::kAnthropic) {
      x.events.push_back(Sse(
          "error", {{"type", "error"}, {"error", {{"type", type}, {"message", fault.message}}}}));
    } else {
      x.events.push_back(
          Sse("", {{"error", {{"message", fault.message}, {"type", type}, {"code", type}}}}));
    }
  }
  return x;
}

std::vector<ToolResultSeen> LastToolResults(Format f, const json& req) {
  std::vector<ToolResultSeen> out;
  if (!req.contains("messages") || !req["messages"].is_array()) return out;
  const json& msgs = req["messages"];
  std::map<std::string, std::string> names;  // tool call id -> tool name
  for (const auto& m : msgs) {
    if (m.value("role", "") != "assistant") continue;
    if (f == Format::kAnthropic && m.contains("content") && m["content"].is_array()) {
      for (const auto& b : m["content"]) {
        if (b.value("type", "") == "tool_use") names[b.value("id", "")] = b.value("name", "");
      }
    } else if (f == Format::kOpenAI && m.contains("tool_calls") && m["tool_calls"].is_array()) {
      for (const auto& c : m["tool_calls"]) {
        names[c.value("id", "")] = c.contains("function") ? c["function"].value("name", "") : "";
      }
    }
  }
  if (f == Format::kAnthropic) {
    if (msgs.empty()) return out;
    const json& last = msgs.back();
    if (last.value("role", "") != "user" || !last["content"].is_array()) return out;
    for (const auto& b : last["content"]) {
      if (b.value("type", "") != "tool_result") continue;
      ToolResultSeen s;
      s.tool = names[b.value("tool_use_id", "")];
      s.is_error = b.value("is_error", false);
      if (b.contains("content") && b["content"].is_string()) {
        s.content = b["content"];
      } else if (b.contains("content") && b["content"].is_array()) {
        for (const auto& p : b["content"]) s.content += p.value("text", "");
      }
      out.push_back(std::move(s));
    }
    return out;
  }
  for (auto it = msgs.rbegin(); it != msgs.rend(); ++it) {
    if (it->value("role", "") != "tool") break;
    ToolResultSeen s;
    s.tool = names[it->value("tool_call_id", "")];
    s.content = it->contains("content") && (*it)["content"].is_string()
                    ? (*it)["content"].get<std::string>()
                    : "";
    s.is_error = s.content.rfind("Error: ", 0) == 0;
    out.insert(out.begin(), std::move(s));
  }
  return out;
}

namespace {

// The text of a message's content: a string, or its text parts (both
// providers use {"type": "text", "text": ...}) run together, as the runtime's
// OpenAI client runs a message's text blocks together.
std::string TextOf(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string out;
  if (!content.is_array()) return out;
  for (const auto& p : content) {
    if (p.is_object() && p.value("type", "") == "text" && p.contains("text") &&
        p["text"].is_string()) {
      out += p["text"].get<std::string>();
    }
  }
  return out;
}

// Drops the compaction note runtime/compaction.cc appends to the task.
void DropCompactionNote(std::string& task) {
  static constexpr std::string_view kHead = "[kiln: ";
  static constexpr std::string_view kTail =
      " earlier turns were removed to fit the context window]";
  if (task.size() < kTail.size() ||
      task.compare(task.size() - kTail.size(), kTail.size(), kTail.data(), kTail.size()) != 0) {
    return;
  }
  size_t head = task.rfind(kHead);
  if (head == std::string::npos) return;
  size_t digits = head + kHead.size(), end = task.size() - kTail.size();
  if (end == digits) return;
  for (size_t i = digits; i < end; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(task[i]))) return;
  }
  task.erase(head);
}

}  // namespace

RequestSeen Seen(Format f, const json& req) {
  RequestSeen seen;
  seen.last = LastToolResults(f, req);
  auto add_system = [&](const json& content) {  // one line per message or block
    for (const json& part : content.is_array() ? content : json::array({content})) {
      std::string text = TextOf(part.is_object() ? json::array({part}) : part);
      if (text.empty()) continue;
      if (!seen.system.empty()) seen.system += "\n";
      seen.system += text;
    }
  };
  if (f == Format::kAnthropic && req.contains("system")) add_system(req["system"]);
  if (!req.contains("messages") || !req["messages"].is_array()) return seen;
  bool have_user = false;
  for (const auto& m : req["messages"]) {
    if (!m.is_object() || !m.contains("content")) continue;
    std::string role = m.value("role", "");
    if (f == Format::kOpenAI && (role == "system" || role == "developer")) {
      add_system(m["content"]);
    } else if (role == "user" && !have_user) {
      have_user = true;
      seen.first_user = TextOf(m["content"]);
      DropCompactionNote(seen.first_user);
    }
  }
  return seen;
}

}  // namespace kiln::modelserver
