#include "runtime/model/model.h"

namespace kiln::model {

nlohmann::json Usage::ToJson() const {
  nlohmann::json j = {{"input_tokens", input_tokens}, {"output_tokens", output_tokens}};
  if (cache_read_tokens) j["cache_read_tokens"] = cache_read_tokens;
  if (cache_write_tokens) j["cache_write_tokens"] = cache_write_tokens;
  return j;
}

}  // namespace kiln::model
