// Helpers shared by the runtime's tests: a temporary workspace directory.
#pragma once

#include "tests/support/temp_dir.h"

namespace kiln::testutil {

using TempDir = ::kiln::testing::TempDir;

}  // namespace kiln::testutil
