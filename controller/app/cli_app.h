// The top level both kiln binaries share (main.cc, controller_main.cc).
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace kiln::cli_app {

// kiln's command: --log-format (set up before any verb runs, so it holds for
// all of it) and one verb required. Diagnostics start as text on stderr, so
// stdout stays the command's.
std::unique_ptr<CLI::App> Make();

// Parses argv and runs the verb. Returns the exit status: the verb's
// (*exit_code), 0 for --help, 2 for a usage error, like most Unix tools.
int Run(CLI::App& app, int argc, char** argv, const int& exit_code);

}  // namespace kiln::cli_app
