// `kiln image ...`: the toolchain image store on the command line
// (docs/images.md).
#pragma once

#include <CLI/CLI.hpp>

namespace kiln::controller::cli {

// Adds `image` and its verbs to app; the chosen action stores kiln's exit
// status in *exit_code.
void RegisterImage(CLI::App& app, int* exit_code);

}  // namespace kiln::controller::cli
