// `kiln sandbox run`, `check` and `gc`, and the encoder of `run`'s arguments
// beside their parser.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "sandbox/spec.h"

namespace CLI {
class App;
}

namespace kiln::sandbox::cli {

// Adds the `sandbox` verb to app; the chosen action stores kiln's exit
// status in *exit_code. extra_gc, when given, runs after `sandbox gc` has
// reaped the sandboxes, with the state directory given (or ""): the
// controller's leftovers, which the sandbox knows nothing of.
void Register(CLI::App& app, int* exit_code,
              std::function<int(const std::string& state_dir)> extra_gc = {});

// The arguments of `kiln sandbox run` that give it spec, starting with
// "sandbox" (the caller puts the binary in front), with --report when
// report_path is not empty. How the controller starts a sandbox.
std::vector<std::string> RunArgs(const Spec& spec, const std::string& report_path);

// Parses `sandbox run` arguments (as RunArgs writes them) into a spec, as
// `kiln sandbox run` does, without running anything.
Result<Spec> ParseRunArgs(std::vector<std::string> args, std::string* report_path);

}  // namespace kiln::sandbox::cli
