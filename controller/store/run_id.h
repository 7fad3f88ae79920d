// Run ids: "r" + the UTC time of enqueue as yyyymmddThhmmss + "-" + 8
// lowercase hex digits from getrandom(2), e.g. "r20250314T092653-1f0c9a7e".
// They sort by enqueue second, are unique in practice (32 random bits per
// second) and match [A-Za-z0-9._:-]{1,128}, so they are safe in file names and
// unquoted shell words.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace kiln::store {

Result<std::string> NewRunId(int64_t now_ms);

}  // namespace kiln::store
