// The local forge's verbs (docs/forge.md):
//   kiln forge init|repos|user add|user list|events|serve
//   kiln issue new|list|show|label|comment|close|reopen
//   kiln pr new|list|show|diff|approve|merge|close
// Each takes --config FILE (the store and <state_dir>/forge/repos come from
// it), --as USER (default $KILN_USER, else the login name), and --json on
// the listing and showing verbs. Exit status: 0 done, 1 failed (including an
// unknown issue or repository), 2 bad usage or input.
#pragma once

namespace CLI {
class App;
}

namespace kiln::forge::cli {

// Adds the verbs to app; the chosen verb stores its exit status in *exit_code.
void Register(CLI::App& app, int* exit_code);

}  // namespace kiln::forge::cli
