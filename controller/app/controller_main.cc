// kiln-controller: kiln with every verb (the kiln binary, main.cc, serves
// `kiln sandbox run` and hands it the rest). Each folder registers its own
// verbs; this file only wires them together.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "controller/app/cli.h"
#include "controller/app/cli_app.h"
#include "controller/forge/cli.h"
#include "controller/sessionlog/cli.h"
#include "sandbox/cli.h"

int main(int argc, char** argv) {
  std::unique_ptr<CLI::App> app = kiln::cli_app::Make();
  app->set_version_flag("--version", std::string("kiln ") + KILN_VERSION);
  int exit_code = 0;
  // `kiln sandbox gc` also reaps the controller's leftovers (the sandbox
  // knows nothing of runs, so the controller adds its part).
  std::string gc_config;
  kiln::sandbox::cli::Register(*app, &exit_code, [&gc_config](const std::string& state_dir) {
    return kiln::controller::cli::Gc(state_dir, gc_config);
  });
  kiln::controller::cli::AddGcOptions(*app, &gc_config);
  kiln::controller::cli::Register(*app, &exit_code);
  kiln::sessionlog::cli::Register(*app, &exit_code);
  kiln::forge::cli::Register(*app, &exit_code);
  return kiln::cli_app::Run(*app, argc, argv, exit_code);
}
