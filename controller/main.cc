// The `kiln` binary: one command with a verb per capability. Each folder
// registers its own verbs; this file only wires them together.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "controller/sessionlog/cli.h"
#include "sandbox/cli.h"

int main(int argc, char** argv) {
  // Diagnostics go to stderr as "kiln: message", so stdout stays the command's.
  auto logger = spdlog::stderr_color_mt("kiln");
  logger->set_pattern("kiln: %^%l%$: %v");
  spdlog::set_default_logger(logger);

  CLI::App app{"kiln: a software factory runtime for on-prem runner hosts", "kiln"};
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  kiln::sandbox::cli::Register(app, &exit_code);
  kiln::sessionlog::cli::Register(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;  // usage errors exit 2, like most Unix tools
  }
  return exit_code;
}
