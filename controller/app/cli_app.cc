#include "controller/app/cli_app.h"

#include <CLI/CLI.hpp>
#include <string>

#include "base/logging.h"

namespace kiln::cli_app {

std::unique_ptr<CLI::App> Make() {
  (void)logging::Setup("text");
  auto app = std::make_unique<CLI::App>("kiln: a software factory runtime for on-prem runner hosts",
                                        "kiln");
  app->add_option_function<std::string>(
      "--log-format",
      [](const std::string& format) {
        if (auto st = logging::Setup(format); !st.ok()) {
          throw CLI::ValidationError(st.error().message());
        }
      },
      "diagnostics on stderr as text (default) or json (one object per line)");
  app->require_subcommand(1);
  return app;
}

int Run(CLI::App& app, int argc, char** argv, const int& exit_code) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}

}  // namespace kiln::cli_app
