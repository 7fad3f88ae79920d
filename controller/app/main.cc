// The `kiln` binary, lean: it serves `kiln sandbox run` and `kiln sandbox
// check` itself and hands every other verb to kiln-controller beside it
// (execv, same arguments).
//
// `kiln sandbox run` is what a user times against bubblewrap and what the
// controller starts for every run, so it links only the sandbox, statically
// (no shared library to load at all). The controller's verbs need
// libgit2, libcurl, SQLite and yaml-cpp, forty-odd shared libraries whose
// loading alone would cost a sandbox several times its own start-up
// (docs/BENCHMARKS.md).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "controller/app/cli_app.h"
#include "sandbox/cli.h"

namespace {

// Whether the command line is `kiln [--log-format F] sandbox run|check ...`:
// the first two words that are not options (nor --log-format's value).
// `check` is served here too: its trial sandbox runs this binary inside,
// which needs no library from the host.
bool IsSandboxVerb(int argc, char** argv) {
  std::string_view words[2];
  int n = 0;
  for (int i = 1; i < argc && n < 2; ++i) {
    std::string_view a = argv[i];
    if (a == "--log-format") {
      ++i;
    } else if (a.starts_with("-")) {
      if (n == 0 && !a.starts_with("--log-format=")) return false;  // --help, --version
    } else {
      words[n++] = a;
    }
  }
  return n == 2 && words[0] == "sandbox" && (words[1] == "run" || words[1] == "check");
}

int RunSandbox(int argc, char** argv) {
  std::unique_ptr<CLI::App> app = kiln::cli_app::Make();
  int exit_code = 0;
  kiln::sandbox::cli::Register(*app, &exit_code, nullptr);
  return kiln::cli_app::Run(*app, argc, argv, exit_code);
}

}  // namespace

int main(int argc, char** argv) {
  if (IsSandboxVerb(argc, argv)) return RunSandbox(argc, argv);
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::string full = (self.parent_path() / "kiln-controller").string();
  if (ec) {
    std::fprintf(stderr, "kiln: error: readlink('/proc/self/exe'): %s\n", ec.message().c_str());
    return 127;
  }
  ::execv(full.c_str(), argv);
  std::fprintf(stderr, "kiln: error: cannot run %s: %s (it is installed beside kiln)\n",
               full.c_str(), std::strerror(errno));
  return 127;
}
