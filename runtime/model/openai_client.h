// The OpenAI-compatible chat completions client (POST {base_url}/chat/completions,
// base_url normally ending in /v1): function tools, tool_calls reassembled from
// streamed fragments by index, finish_reason, the usage chunk, data: [DONE].
#pragma once

#include <memory>
#include <string>

#include "runtime/model/model.h"

namespace kiln::openai_client {

struct Options {
  std::string base_url = "https://api.openai.com/v1";
  std::string api_key;  // "" sends none (the controller's proxy adds it)
};

std::unique_ptr<model::Client> Make(const Options& opts);

// Exposed for tests: the request body and the parsers.
nlohmann::json BuildBody(const model::Request& req);
void ParseBody(const std::string& body, model::Attempt& attempt);
// Parses a complete SSE text as Send() does a stream: reply and usage, or an error.
void ParseStream(const std::string& sse_text, model::Attempt& attempt);
// finish_reason -> the Anthropic stop_reason names used by the loop.
std::string MapFinishReason(const std::string& finish_reason);

}  // namespace kiln::openai_client
