// `kiln sandbox run` and `kiln sandbox gc`.
#pragma once

#include <CLI/CLI.hpp>

namespace kiln::sandbox::cli {

// Adds the `sandbox` verb to app; the chosen action stores kiln's exit
// status in *exit_code.
void Register(CLI::App& app, int* exit_code);

}  // namespace kiln::sandbox::cli
