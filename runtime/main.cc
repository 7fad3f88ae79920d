// kiln-runtime: the agent loop that runs inside each sandbox.
//
//   kiln-runtime (--spec FILE | --spec-fd N) [--events-fd N] [--steer-fd N]
//                [--workspace DIR]
//
// Events (JSON lines, docs/runtime.md) go to --events-fd, by default 1; one
// human-readable line per problem goes to stderr. Exit status: 0 submitted,
// 1 failed, 2 bad usage or spec, 3 budget exhausted, 4 stuck, 5 refused.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "base/fd.h"
#include "base/strings.h"
#include "runtime/events.h"
#include "runtime/loop.h"
#include "runtime/model_factory.h"
#include "runtime/spec.h"
#include "runtime/tools/toolset.h"
#include "runtime/tools/workspace_path.h"

namespace {

int Usage(const char* why) {
  std::fprintf(stderr,
               "kiln-runtime: error: %s\n"
               "usage: kiln-runtime (--spec FILE | --spec-fd N) [--events-fd N] "
               "[--steer-fd N] [--workspace DIR]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string spec_file, workspace;
  int spec_fd = -1, events_fd = 1, steer_fd = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--version") {
      std::printf("kiln-runtime %s\n", KILN_VERSION);
      return 0;
    }
    if (i + 1 >= argc) return Usage(("option " + a + " needs a value").c_str());
    std::string v = argv[++i];
    if (a == "--spec") {
      spec_file = v;
    } else if (a == "--spec-fd" || a == "--events-fd" || a == "--steer-fd") {
      auto n = kiln::ParseUint(v, a);
      if (!n.ok() || *n > 1 << 20) return Usage(("bad descriptor for " + a + ": " + v).c_str());
      (a == "--spec-fd"     ? spec_fd
       : a == "--events-fd" ? events_fd
                            : steer_fd) = static_cast<int>(*n);
    } else if (a == "--workspace") {
      workspace = v;
    } else {
      return Usage(("unknown option " + a).c_str());
    }
  }
  if (spec_file.empty() == (spec_fd < 0)) return Usage("exactly one of --spec and --spec-fd");
  // A controller that goes away must show up as a failed write, not a signal.
  ::signal(SIGPIPE, SIG_IGN);
  // The agent's commands run as our uid: they must neither inherit the
  // controller's descriptors nor reach them through /proc/<pid>/fd, or they
  // could forge events.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  for (int fd : {events_fd, steer_fd, spec_fd}) {
    if (fd > 2) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }

  auto text = spec_fd >= 0 ? kiln::ReadAll(spec_fd, "spec fd " + std::to_string(spec_fd))
                           : kiln::ReadFile(spec_file);
  if (!text.ok()) return Usage(text.error().message().c_str());
  auto spec =
      kiln::spec::ParseText(*text, spec_fd >= 0 ? "fd " + std::to_string(spec_fd) : spec_file);
  if (!spec.ok()) return Usage(spec.error().message().c_str());
  if (!workspace.empty()) spec->workspace = workspace;
  auto ws = kiln::workspace_path::Workspace::Open(spec->workspace);
  if (!ws.ok()) return Usage(ws.error().Wrap("workspace").message().c_str());
  auto tools = kiln::tools::ToolSet::Make(*ws, spec->limits, spec->tools, spec->result_schema);
  if (!tools.ok()) return Usage(tools.error().message().c_str());
  auto client = kiln::model_factory::Make(spec->model);
  kiln::events::Sink sink(events_fd);
  kiln::steer::Inbox inbox(steer_fd);
  kiln::loop::Outcome o = kiln::loop::Run(*spec, *client, **tools, sink, &inbox);
  if (o.status != "submitted") {
    std::fprintf(stderr, "kiln-runtime: %s: %s\n", o.status.c_str(), o.reason.c_str());
  }
  return kiln::loop::ExitStatus(o);
}
