// The agent loop: skill prompt + task -> model -> tool calls -> results,
// until the role's result is submitted, a budget runs out, the model is
// stuck repeating itself, or a failure ends the run. Every model attempt and
// every tool call is an event; the last event is the `result`.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "runtime/events.h"
#include "runtime/model/model.h"
#include "runtime/spec.h"
#include "runtime/steer.h"
#include "runtime/tools/toolset.h"

namespace kiln::loop {

// How a run ended. status is one of:
//   submitted         the result validated; `result` holds it
//   budget_exhausted  `reason` names the budget (turns, input_tokens, ...)
//   stuck             `evidence` holds the repeated call and where it happened
//   refused           the model refused (stop_reason refusal / content_filter)
//   failed            `reason` says what failed (a non-retryable model error,
//                     retries exhausted, the model stopped without submitting)
struct Outcome {
  std::string status;
  std::string reason;
  nlohmann::json result;
  nlohmann::json evidence;
  nlohmann::json totals;
  nlohmann::json ToJson() const;
};

// Exit status of kiln-runtime for an outcome: 0 submitted, 1 failed,
// 3 budget_exhausted, 4 stuck, 5 refused.
int ExitStatus(const Outcome& o);

// inbox (optional): steering messages, added to the conversation before each
// model request.
Outcome Run(const spec::RunSpec& spec, model::Client& client, const tools::ToolSet& tools,
            events::Sink& events, steer::Inbox* inbox = nullptr);

}  // namespace kiln::loop
