// The scripted model's script: which reply (or fault) the server gives to
// each request. docs/runtime.md ("Scripted model server") has the format;
// this header is its schema.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace kiln::modelserver {

struct ToolCall {
  std::string id;  // "" -> generated
  std::string name;
  nlohmann::json input = nlohmann::json::object();
  std::optional<std::string> raw_arguments;  // sent verbatim instead of input (bad JSON)
};

struct Fault {
  // "http"         an error status with the provider's error body
  // "cut"          the stream (or body) stops after after_events events and the connection closes
  // "malformed"    invalid JSON where the reply should be
  // "stream_error" HTTP 200, then an error event after after_events events
  // "stall"        after after_events events nothing is sent for stall_ms
  std::string kind;
  int status = 500;
  std::string retry_after;  // header value, "" for none
  std::string error_type;   // default from the status
  std::string message = "scripted fault";
  int after_events = 2;
  uint64_t stall_ms = 0;
};

struct Reply {
  std::string text;
  std::vector<ToolCall> tool_calls;
  std::string stop_reason;  // Anthropic names; "" -> tool_use or end_turn
  std::optional<uint64_t> input_tokens, output_tokens;
  uint64_t delay_ms = 0;  // before the status line
  std::optional<Fault> fault;
  int64_t repeat = 1;  // -1: forever
};

struct Rule {
  std::string contains;          // a substring of one of the last tool results
  std::string tool;              // "" any tool
  std::optional<bool> is_error;  // only errors / only successes
  int64_t times = -1;            // how often the rule may fire; -1 no limit
  Reply reply;
};

struct ToolResultSeen {
  std::string tool;
  std::string content;
  bool is_error = false;
};

// What the server saw of a request: enough to pick its conversation, its run
// and the rule that applies.
struct RequestSeen {
  std::string system;                // the system prompt(s), joined with "\n"
  std::string first_user;            // the first user message's text: the run's task
  std::vector<ToolResultSeen> last;  // the latest tool results
};

// Replies, rules and a default: the whole script, or one conversation of it.
struct Sequence {
  std::vector<Reply> replies;
  std::vector<Rule> rules;
  std::optional<Reply> fallback;  // "default" in the file
};

// The replies for one kind of agent run. A request belongs to the first
// conversation whose match occurs in its system prompt or first user message;
// each run (each distinct first user message) gets its own cursor through it.
struct Conversation : Sequence {
  std::string match;  // required, non-empty
  // Placeholder name -> marker: {{name}} in a reply becomes the digits right
  // after the marker in the run's first user message.
  std::map<std::string, std::string> capture;
};

// The top-level Sequence answers requests that no conversation matches, with
// one cursor shared by all of them (as before conversations existed).
struct Script : Sequence {
  std::vector<Conversation> conversations;
};

// JSON or YAML (chosen by content: JSON if it parses as JSON).
Result<Script> ParseScript(std::string_view text);
Result<Script> LoadScript(const std::string& path);
Result<Script> ScriptFromJson(const nlohmann::json& j);

}  // namespace kiln::modelserver
