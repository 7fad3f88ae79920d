// The wall clock every store and forge row is stamped with.
#pragma once

#include <chrono>
#include <cstdint>

namespace kiln {

// Milliseconds since the Unix epoch.
inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace kiln
