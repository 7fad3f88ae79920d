// libFuzzer target: the patches ParseHunks reads come from forges and from
// changes an agent wrote. It may not crash, hang or leak on any bytes, and
// every line it reports must be a positive number under a named path.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "controller/git/write.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view patch(reinterpret_cast<const char*>(data), size);
  kiln::git::CommentableLines lines = kiln::git::ParseHunks(patch);
  for (const auto* side : {&lines.left, &lines.right}) {
    for (const auto& [path, numbers] : *side) {
      if (path.empty()) std::abort();
      if (!numbers.empty() && *numbers.begin() < 1) std::abort();
    }
  }
  return 0;
}
