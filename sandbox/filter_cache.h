// Compiled seccomp programs, cached in the state directory.
//
// libseccomp's compilation of the default-deny policy (several hundred rules
// arranged as a binary tree) takes milliseconds, more than the rest of a
// sandbox's start-up together. The result depends only on the policy text,
// the compile options and the kiln binary, so it is stored once under
// <state>/seccomp/ and reused. A cache entry holds the full policy text and
// is used only when text, options and binary identity match exactly; any
// mismatch or damage means a fresh compile.
//
// Only a root-owned state directory holds the cache. Run unprivileged, the
// state directory belongs to the same host user that the sandbox's processes
// map to, so a sandbox that could reach it (through any bind or alias) could
// replace the filter every later sandbox loads; there kiln compiles each time.
#pragma once

#include <string>

#include "base/result.h"
#include "sandbox/seccomp.h"

namespace kiln::sandbox::filter_cache {

// The program for the policy file at `policy_path` (empty: the built-in
// policy). Parse errors are reported exactly as without the cache.
Result<seccomp::Program> Load(const std::string& state_dir, const std::string& policy_path,
                              const seccomp::CompileOptions& options);

}  // namespace kiln::sandbox::filter_cache
