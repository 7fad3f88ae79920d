// The Anthropic Messages API client (POST {base_url}/v1/messages): text,
// tool_use and tool_result blocks, every stop_reason, streaming over SSE with
// input_json_delta reassembly, error events after HTTP 200.
#pragma once

#include <memory>
#include <string>

#include "runtime/model/model.h"

namespace kiln::anthropic_client {

struct Options {
  std::string base_url = "https://api.anthropic.com";
  std::string api_key;  // "" sends none (the controller's proxy adds it)
  std::string version = "2023-06-01";
};

std::unique_ptr<model::Client> Make(const Options& opts);

// Exposed for tests: the request body and the parsers.
nlohmann::json BuildBody(const model::Request& req);
// Parses a non-streamed reply body into attempt.reply/usage or an error.
void ParseBody(const std::string& body, model::Attempt& attempt);
// Parses a complete SSE text as Send() does a stream: reply and usage, or an error.
void ParseStream(const std::string& sse_text, model::Attempt& attempt);

}  // namespace kiln::anthropic_client
