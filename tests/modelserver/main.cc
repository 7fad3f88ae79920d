// kiln-model-server: the scripted model server as a program, for the demo
// and the benchmark.
//
//   kiln-model-server --script FILE [--port N] [--record FILE]
//
// Prints the port it listens on (127.0.0.1) as the first line of stdout,
// then serves until SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <string>

#include "base/strings.h"
#include "tests/modelserver/server.h"

int main(int argc, char** argv) {
  std::string script_path;
  kiln::modelserver::Options opts;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--script") {
      script_path = v;
    } else if (a == "--record") {
      opts.record_path = v;
    } else if (a == "--port") {
      auto p = kiln::ParseUint(v, "--port");
      if (!p.ok() || *p > 65535) {
        std::fprintf(stderr, "kiln-model-server: error: bad --port %s\n", v.c_str());
        return 2;
      }
      opts.port = static_cast<uint16_t>(*p);
    } else {
      std::fprintf(stderr, "kiln-model-server: error: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (script_path.empty() || argc % 2 == 0) {
    std::fprintf(stderr, "usage: kiln-model-server --script FILE [--port N] [--record FILE]\n");
    return 2;
  }
  auto script = kiln::modelserver::LoadScript(script_path);
  if (!script.ok()) {
    std::fprintf(stderr, "kiln-model-server: error: %s\n", script.error().message().c_str());
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the threads start, so they inherit it
  auto server = kiln::modelserver::Server::Start(std::move(*script), opts);
  if (!server.ok()) {
    std::fprintf(stderr, "kiln-model-server: error: %s\n", server.error().message().c_str());
    return 1;
  }
  std::printf("%u\n", static_cast<unsigned>((*server)->port()));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  (*server)->Stop();
  return 0;
}
