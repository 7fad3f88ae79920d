// The run spec: everything one run of kiln-runtime needs, read as JSON from a
// file or a descriptor. Every field has a default except role, task and
// model.name; docs/runtime.md documents each one and spec_test.cc checks
// that the documented defaults are these. The controller fills a RunSpec as
// a struct and writes it with ToJson; the runtime reads it back with Parse.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "runtime/model/retry.h"
#include "runtime/tools/tool.h"

namespace kiln::spec {

struct Price {
  double input_per_mtok = 0;        // USD per million uncached input tokens
  double output_per_mtok = 0;       // USD per million output tokens
  double cache_read_per_mtok = 0;   // default: input_per_mtok / 10
  double cache_write_per_mtok = 0;  // default: input_per_mtok * 1.25
  friend bool operator==(const Price&, const Price&) = default;
};

struct Model {
  std::string provider = "anthropic";  // "anthropic" or "openai"
  std::string name;                    // required, e.g. "claude-sonnet-4-5"
  std::string base_url;                // default per provider
  std::string api_key_env;             // default ANTHROPIC_API_KEY / OPENAI_API_KEY
  uint64_t max_tokens = 8192;          // per reply
  uint64_t context_window = 200'000;   // tokens
  bool stream = true;
  uint64_t connect_timeout_ms = 10'000;
  uint64_t idle_timeout_ms = 120'000;  // a stream that sends nothing for this long has stalled
  uint64_t request_timeout_ms = 600'000;
  friend bool operator==(const Model&, const Model&) = default;
};

struct Budgets {  // 0 means unlimited, except max_turns
  uint64_t max_turns = 50;
  uint64_t max_input_tokens = 0;
  uint64_t max_output_tokens = 0;
  uint64_t max_wall_ms = 0;
  double max_cost_usd = 0;
  uint64_t max_tool_output_bytes = 0;
  friend bool operator==(const Budgets&, const Budgets&) = default;
};

struct Compaction {
  double threshold = 0.8;          // compact when the request nears this fraction of the window
  uint64_t keep_recent_turns = 4;  // turns whose tool results are never elided
  friend bool operator==(const Compaction&, const Compaction&) = default;
};

struct RunSpec {
  std::string role;
  std::string skill;  // system prompt
  std::string task;   // first user message
  std::string workspace = "/workspace";
  Model model;
  Budgets budgets;
  std::map<std::string, Price> prices;  // by model name
  std::vector<std::string> tools = {"shell", "read", "write", "edit", "search", "submit"};
  tool::Limits limits;
  nlohmann::json result_schema = {{"type", "object"}};
  retry::Policy retry;
  uint32_t loop_repeat_limit = 3;  // identical call+result this many times -> stuck
  Compaction compaction;
  friend bool operator==(const RunSpec&, const RunSpec&) = default;
};

// A member that does not hold: its dotted path ("budgets.max_turns"; empty
// for the spec as a whole) and the message, which names it.
struct Fault {
  std::string member;
  std::string message;
  Error ToError() const { return Error::Invalid(message); }
};

// The sections a controller fills from its own layers of configuration:
// the members j has are read over what *out holds, so defaults and earlier
// layers stay where j is silent. Reading checks types and unknown members;
// Check checks the values.
std::optional<Fault> ReadModel(const nlohmann::json& j, Model* out);
std::optional<Fault> ReadBudgets(const nlohmann::json& j, Budgets* out);

// The checks of a filled-in spec, in a fixed order: the first that fails.
std::optional<Fault> Check(const RunSpec& s);

// The spec as kiln-runtime reads it: Parse(ToJson(s)) is s, with the
// provider's defaults (base_url, api_key_env) filled in where s left them
// empty.
nlohmann::json ToJson(const RunSpec& s);
nlohmann::json ToJson(const Budgets& b);

// Reads every section and checks the spec. Unknown members are errors (a
// typo in a budget must not silently mean "unlimited"); the error names the
// member.
Result<RunSpec> Parse(const nlohmann::json& j);
Result<RunSpec> ParseText(std::string_view text, std::string_view source);

}  // namespace kiln::spec
