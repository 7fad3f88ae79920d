// The provider-neutral conversation and the model client interface that the
// Anthropic and OpenAI-compatible clients implement. One call of Send() is one
// HTTP exchange; retrying is the loop's business (retry.h) so that every
// attempt is logged and counted against the budget.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "runtime/tools/tool.h"

namespace kiln::model {

struct ToolCall {
  std::string id;
  std::string name;
  nlohmann::json input = nlohmann::json::object();
  // Set when the model's arguments were not a JSON object: the call is
  // answered with a tool error quoting this instead of being run.
  std::optional<std::string> bad_input;
  friend bool operator==(const ToolCall&, const ToolCall&) = default;
};

struct Block {
  enum class Kind { kText, kToolUse, kOther };
  Kind kind = Kind::kText;
  std::string text;
  ToolCall call;
  nlohmann::json raw;  // kOther: the provider's block, sent back unchanged (e.g. thinking)
  friend bool operator==(const Block&, const Block&) = default;
};

struct ToolResult {
  std::string call_id;
  std::string content;
  bool is_error = false;
  friend bool operator==(const ToolResult&, const ToolResult&) = default;
};

struct Message {
  enum class Role { kUser, kAssistant };
  Role role = Role::kUser;
  std::vector<Block> blocks;        // text and (assistant) tool calls
  std::vector<ToolResult> results;  // user: answers to the previous tool calls
  friend bool operator==(const Message&, const Message&) = default;
};

struct Usage {
  uint64_t input_tokens = 0;
  uint64_t output_tokens = 0;
  uint64_t cache_read_tokens = 0;
  uint64_t cache_write_tokens = 0;
  nlohmann::json ToJson() const;
};

// stop_reason uses Anthropic's names; OpenAI's finish_reason is mapped:
// stop -> end_turn, length -> max_tokens, tool_calls -> tool_use,
// content_filter -> refusal.
struct Reply {
  std::vector<Block> blocks;
  std::string stop_reason;
  std::string id;
  std::string model;
};

struct Request {
  std::string model;
  std::string system;
  const std::vector<Message>* messages = nullptr;
  const std::vector<tool::Def>* tools = nullptr;
  uint64_t max_tokens = 4096;
  bool stream = true;
  uint64_t connect_timeout_ms = 10'000;
  uint64_t idle_timeout_ms = 120'000;
  uint64_t total_timeout_ms = 600'000;
};

// One HTTP exchange. usage counts what the provider reported even for a
// failed attempt (a stream cut after message_start), so that tokens spent on
// retries are charged.
struct Attempt {
  std::string url;
  std::string request_body;
  long status = 0;
  std::string request_id;
  std::string response_body;  // as received; for a stream, the SSE text
  std::optional<Reply> reply;
  Usage usage;
  uint64_t latency_ms = 0;
  std::optional<Error> error;  // set when reply is not
  bool retryable = false;
  std::optional<uint64_t> retry_after_ms;  // from the retry-after header
  std::string error_type;                  // the provider's error type/code, if any
};

class Client {
 public:
  virtual ~Client() = default;
  virtual std::string provider() const = 0;
  virtual std::string url() const = 0;
  // The JSON body for req, so that the loop can log it before sending.
  virtual std::string Body(const Request& req) const = 0;
  virtual Attempt Send(const Request& req, const std::string& body) = 0;
};

}  // namespace kiln::model
