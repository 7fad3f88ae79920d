// `kiln schedules list|run`: the configuration's schedules on the command
// line (docs/schedules.md).
#pragma once

#include <CLI/CLI.hpp>

namespace kiln::controller::cli {

// Adds `schedules` and its verbs to app; the chosen action stores kiln's
// exit status in *exit_code.
void RegisterSchedules(CLI::App& app, int* exit_code);

}  // namespace kiln::controller::cli
