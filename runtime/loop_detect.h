// Loop detection: a model that makes the same tool call with the same
// arguments and gets the same result again is not making progress. The
// detector counts identical (tool, arguments, result) triples over the whole
// run, not only consecutive ones, so A,B,A,B,A,B cycles are caught too. The
// result is compared without timings (the shell's duration is not in it).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::loop_detect {

struct Evidence {
  std::string tool;
  nlohmann::json input;
  std::string result_preview;  // the first 500 bytes of the repeated result
  std::vector<std::string> call_ids;
  std::vector<uint64_t> turns;
  nlohmann::json ToJson() const;
};

class Detector {
 public:
  explicit Detector(uint32_t limit) : limit_(limit) {}
  // Records a call; returns the evidence once the triple reached the limit.
  std::optional<Evidence> Record(uint64_t turn, const std::string& call_id, const std::string& tool,
                                 const nlohmann::json& input, const std::string& result,
                                 bool is_error);

 private:
  uint32_t limit_;
  std::map<std::string, Evidence> seen_;
};

}  // namespace kiln::loop_detect
