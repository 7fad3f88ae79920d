// The inside of a sandbox: the init process (pid 1 of the new pid namespace)
// sets the namespaces and filesystem up, starts the command, then reaps and
// forwards signals until the command ends. Reads like a checklist: one call
// per namespace or limit, each failure reported to the supervisor.
#pragma once

#include <string>

#include "sandbox/mnt.h"
#include "sandbox/seccomp.h"
#include "sandbox/spec.h"
#include "sandbox/userns.h"

namespace kiln::sandbox::contain {

// Everything init needs, prepared by the supervisor before clone (init is a
// copy of the supervisor's memory, so this is passed by reference).
struct InitArgs {
  const Spec* spec = nullptr;
  mnt::Layout layout;
  userns::Mapping mapping;
  const seccomp::Program* seccomp = nullptr;
  std::vector<std::string> env;  // the command's full environment
  int control_fd = -1;           // init's end of the supervisor socketpair
};

// Runs as init; never returns.
[[noreturn]] void InitMain(const InitArgs& args);

}  // namespace kiln::sandbox::contain
