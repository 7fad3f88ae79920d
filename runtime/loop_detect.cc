#include "runtime/loop_detect.h"

namespace kiln::loop_detect {

nlohmann::json Evidence::ToJson() const {
  return {{"tool", tool},
          {"input", input},
          {"result_preview", result_preview},
          {"repeats", call_ids.size()},
          {"call_ids", call_ids},
          {"turns", turns}};
}

std::optional<Evidence> Detector::Record(uint64_t turn, const std::string& call_id,
                                         const std::string& tool, const nlohmann::json& input,
                                         const std::string& result, bool is_error) {
  // nlohmann::json::dump sorts object keys, so equal arguments in any order
  // give the same key.
  std::string key = tool + '\0' +
                    input.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + '\0' +
                    (is_error ? "E" : "O") + result;
  Evidence& e = seen_[key];
  if (e.call_ids.empty()) {
    e.tool = tool;
    e.input = input;
    e.result_preview = result.substr(0, 500);
  }
  e.call_ids.push_back(call_id);
  e.turns.push_back(turn);
  if (e.call_ids.size() >= limit_) return e;
  return std::nullopt;
}

}  // namespace kiln::loop_detect
