// Renders a scripted reply in the Anthropic Messages or the OpenAI chat
// completions wire format: a JSON body, or the SSE events of a stream. Faults
// whose bytes are format-specific (error bodies, error events, malformed
// JSON) are rendered here; the server applies the timing ones (cut, stall).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/modelserver/script.h"

namespace kiln::modelserver {

enum class Format { kAnthropic, kOpenAI };

struct Rendered {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  bool stream = false;
  std::string body;                 // not streaming
  std::vector<std::string> events;  // streaming: each a complete SSE event
};

// request_no numbers ids; request_bytes sizes the default input_tokens.
Rendered Render(Format f, const Reply& r, const nlohmann::json& request, uint64_t request_no,
                size_t request_bytes);

// An error reply in the provider's shape, e.g. for an exhausted script.
Rendered RenderError(Format f, int status, const std::string& type, const std::string& message,
                     uint64_t request_no);

// The last tool results of a request (for rules), with their tool names.
std::vector<ToolResultSeen> LastToolResults(Format f, const nlohmann::json& request);

// The system prompt (Anthropic `system`, a string or text blocks; OpenAI
// `system` and `developer` messages), the first user message's text and the
// last tool results. The note the runtime's compaction appends to the task
// ("[kiln: N earlier turns were removed ...]") is left out of first_user, so
// that a run keeps its cursor when its context is compacted.
RequestSeen Seen(Format f, const nlohmann::json& request);

}  // namespace kiln::modelserver
