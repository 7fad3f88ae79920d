// The `kiln` binary: one command with a verb per capability. Each folder
// registers its own verbs; this file only wires them together.
#include <CLI/CLI.hpp>
#include <string>

#include "controller/cli.h"
#include "controller/forge/cli.h"
#include "controller/logging.h"
#include "controller/sessionlog/cli.h"
#include "sandbox/cli.h"

int main(int argc, char** argv) {
  // Diagnostics go to stderr as "kiln: level: message" (or JSON lines), so
  // stdout stays the command's.
  (void)kiln::logging::Setup("text");

  CLI::App app{"kiln: a software factory runtime for on-prem runner hosts", "kiln"};
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION);
  // An option callback runs before any verb's: the format holds for all of it.
  app.add_option_function<std::string>(
      "--log-format",
      [](const std::string& format) {
        if (auto st = kiln::logging::Setup(format); !st.ok()) {
          throw CLI::ValidationError(st.error().message());
        }
      },
      "diagnostics on stderr as text (default) or json (one object per line)");
  app.require_subcommand(1);
  int exit_code = 0;
  // `kiln sandbox gc` also reaps the controller's leftovers (the sandbox
  // knows nothing of runs, so the controller adds its part).
  std::string gc_config;
  kiln::sandbox::cli::Register(app, &exit_code, [&gc_config](const std::string& state_dir) {
    return kiln::controller::cli::Gc(state_dir, gc_config);
  });
  kiln::controller::cli::AddGcOptions(app, &gc_config);
  kiln::controller::cli::Register(app, &exit_code);
  kiln::sessionlog::cli::Register(app, &exit_code);
  kiln::forge::cli::Register(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;  // usage errors exit 2, like most Unix tools
  }
  return exit_code;
}
