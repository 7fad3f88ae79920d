// A `kiln` with only the forge's verbs, for forge_test to run as a user
// would (exit status, stdout, stderr) without the rest of the controller.
#include <CLI/CLI.hpp>

#include "base/logging.h"
#include "controller/forge/cli.h"

int main(int argc, char** argv) {
  (void)kiln::logging::Setup("text");
  CLI::App app{"kiln (forge verbs only, for tests)", "kiln"};
  app.require_subcommand(1);
  int exit_code = 0;
  kiln::forge::cli::Register(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
