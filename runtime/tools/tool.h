// What every tool shares: its declaration to the model (name, description,
// input schema), what a call returns, the per-call limits, and the helpers
// that keep outputs small and valid UTF-8 (model APIs reject invalid UTF-8,
// and a shell can print anything).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kiln::tool {

// Per-call limits; the run spec's "tools.limits" (docs/runtime.md).
struct Limits {
  size_t max_output_bytes = 32 * 1024;      // larger outputs keep head and tail
  uint64_t shell_timeout_ms = 120'000;      // default for a shell call
  uint64_t shell_max_timeout_ms = 600'000;  // the model may ask for up to this
  size_t read_max_lines = 2000;             // lines per read call
  size_t read_max_line_chars = 2000;        // longer lines are cut
  size_t read_max_file_bytes = 64u << 20;   // read/edit refuse larger files
  size_t search_max_matches = 200;
  size_t search_max_file_bytes = 4u << 20;  // larger files are skipped
  friend bool operator==(const Limits&, const Limits&) = default;
};

struct Output {
  std::string content;                      // what the model sees
  bool is_error = false;                    // sent as a tool error
  std::optional<int> exit_status;           // shell only
  bool truncated = false;                   // content was cut to the limit
  uint64_t full_bytes = 0;                  // size before truncation
  std::optional<nlohmann::json> submitted;  // submit only: the accepted result

  static Output Err(std::string message) {
    Output o;
    o.content = std::move(message);
    o.is_error = true;
    o.full_bytes = o.content.size();
    return o;
  }
  static Output Text(std::string text) {
    Output o;
    o.full_bytes = text.size();
    o.content = std::move(text);
    return o;
  }
};

struct Def {
  std::string name;
  std::string description;
  nlohmann::json input_schema;
  std::function<Output(const nlohmann::json& input)> run;
};

// Cuts text longer than cap to its first and last cap/2 bytes (on UTF-8
// boundaries) around a marker that says how much was left out.
std::string CapHeadTail(std::string_view text, size_t cap, bool* truncated);

// Replaces every invalid UTF-8 sequence with U+FFFD.
std::string SanitizeUtf8(std::string_view text);

// A NUL byte in the first 8000 bytes (git's heuristic) or invalid UTF-8.
bool LooksBinary(std::string_view head);

// A string member of input, or "" when absent.
std::string StringArg(const nlohmann::json& input, const char* key);

}  // namespace kiln::tool
