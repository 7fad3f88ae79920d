// `kiln runs share|shares|unshare`: read-only share links to a run's page in
// the web view (docs/web.md).
#pragma once

#include <CLI/CLI.hpp>

namespace kiln::controller::cli {

// Adds the verbs to `kiln runs`; the chosen action stores kiln's exit
// status in *exit_code.
void RegisterShares(CLI::App& runs, int* exit_code);

}  // namespace kiln::controller::cli
