// `kiln sandbox run` and `kiln sandbox gc`.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace kiln::sandbox::cli {

// Adds the `sandbox` verb to app; the chosen action stores kiln's exit
// status in *exit_code. extra_gc, when given, runs after `sandbox gc` has
// reaped the sandboxes, with the state directory given (or ""): the
// controller's leftovers, which the sandbox knows nothing of.
void Register(CLI::App& app, int* exit_code,
              std::function<int(const std::string& state_dir)> extra_gc = {});

}  // namespace kiln::sandbox::cli
