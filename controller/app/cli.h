// `kiln serve`, `kiln run` and `kiln runs list|show|cancel|steer|submit`
// (docs/controller.md).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace kiln::controller::cli {

// Adds the verbs to app; the chosen action stores kiln's exit status in
// *exit_code.
void Register(CLI::App& app, int* exit_code);

// The controller's part of `kiln sandbox gc`: reaps runs whose controller
// died and run directories of no live run, with the configuration at
// config_path (or the default one). state_dir, when given, overrides the
// configuration's. Returns an exit status.
int Gc(const std::string& state_dir, const std::string& config_path);

// Adds `--config FILE` to `kiln sandbox gc` (registered before), stored in
// *config_path for Gc.
void AddGcOptions(CLI::App& app, std::string* config_path);

}  // namespace kiln::controller::cli
