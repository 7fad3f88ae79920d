// The `kiln log` verbs: verify, show, pubkey, recover (and a hidden `demo`
// that writes a sample run, for tests and benchmarks).
#pragma once

namespace CLI {
class App;
}

namespace kiln::sessionlog::cli {

// Registers `kiln log ...` on app; the chosen verb stores its exit status in
// *exit_code (0 success, 1 a damaged log or findings, 2 an error).
void Register(CLI::App& app, int* exit_code);

}  // namespace kiln::sessionlog::cli
