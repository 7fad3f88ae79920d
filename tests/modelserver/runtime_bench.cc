// kiln-runtime-bench: the agent loop's own cost per turn and per tool call,
// against a zero-latency scripted model on loopback, compared with spawning
// `bash -c true` directly. Used by tests/bench/runtime.sh.
//
//   kiln-runtime-bench [TURNS] [RUNS]
//
// Every turn is one real HTTP exchange (libcurl <-> Beast), the reply's
// parsing, one tool call, and the events serialised to /dev/null. Commands
// differ per turn so that loop detection does not end the run.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "runtime/events.h"
#include "runtime/loop.h"
#include "runtime/model_factory.h"
#include "runtime/tools/testutil.h"
#include "runtime/tools/toolset.h"
#include "tests/modelserver/server.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Milliseconds per turn of a run of `turns` tool calls made by `make_call`.
double LoopRun(const std::string& provider, bool stream, int turns,
               const std::function<json(int)>& make_call, const std::string& ws_path) {
  json replies = json::array();
  for (int i = 0; i < turns; ++i) replies.push_back({{"tool_calls", {make_call(i)}}});
  replies.push_back({{"tool_calls", {{{"name", "submit"}, {"input", {{"summary", "done"}}}}}}});
  auto script = kiln::modelserver::ScriptFromJson({{"replies", replies}});
  auto server = kiln::modelserver::Server::Start(std::move(*script));
  if (!server.ok()) {
    std::fprintf(stderr, "bench: %s\n", server.error().message().c_str());
    std::exit(1);
  }
  auto spec =
      kiln::spec::Parse({{"role", "bench"},
                         {"task", "benchmark"},
                         {"workspace", ws_path},
                         {"budgets", {{"max_turns", turns + 10}}},
                         {"model",
                          {{"provider", provider},
                           {"name", "scripted"},
                           {"stream", stream},
                           {"api_key_env", "KILN_BENCH_NO_KEY"},
                           {"base_url", provider == "anthropic" ? (*server)->anthropic_url()
                                                                : (*server)->openai_url()}}}});
  auto ws = kiln::workspace_path::Workspace::Open(ws_path);
  auto tools = kiln::tools::ToolSet::Make(*ws, spec->limits, spec->tools, spec->result_schema);
  auto client = kiln::model_factory::Make(spec->model);
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  kiln::events::Sink sink(devnull);
  auto start = Clock::now();
  auto outcome = kiln::loop::Run(*spec, *client, **tools, sink);
  auto elapsed = Clock::now() - start;
  ::close(devnull);
  if (outcome.status != "submitted") {
    std::fprintf(stderr, "bench: run ended %s: %s\n", outcome.status.c_str(),
                 outcome.reason.c_str());
    std::exit(1);
  }
  return Ms(elapsed) / (turns + 1);
}

double SpawnBash(int n) {
  auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    const char* argv[] = {"bash", "-c", "true", nullptr};
    pid_t pid;
    if (posix_spawnp(&pid, "bash", nullptr, nullptr, const_cast<char* const*>(argv), environ) !=
        0) {
      std::perror("posix_spawnp bash");
      std::exit(1);
    }
    int status;
    ::waitpid(pid, &status, 0);
  }
  return Ms(Clock::now() - start) / n;
}

}  // namespace

int main(int argc, char** argv) {
  int turns = argc > 1 ? std::atoi(argv[1]) : 200;
  int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  kiln::testutil::TempDir ws;
  ws.Write("f.txt", "one\ntwo\nthree\n");
  auto read_call = [](int i) {
    return json{{"name", "read"}, {"input", {{"path", "f.txt"}, {"limit", i + 1}}}};
  };
  auto shell_call = [](int i) {
    return json{{"name", "shell"}, {"input", {{"command", "true # " + std::to_string(i)}}}};
  };
  std::vector<double> a_read, a_shell, o_read, o_shell, bash;
  for (int r = 0; r < runs; ++r) {
    a_read.push_back(LoopRun("anthropic", true, turns, read_call, ws.path()));
    a_shell.push_back(LoopRun("anthropic", true, turns, shell_call, ws.path()));
    o_read.push_back(LoopRun("openai", false, turns, read_call, ws.path()));
    o_shell.push_back(LoopRun("openai", false, turns, shell_call, ws.path()));
    bash.push_back(SpawnBash(turns));
  }
  double b = Median(bash);
  std::printf("== agent loop, zero-latency scripted model, %d turns per run, median of %d runs\n",
              turns, runs);
  std::printf("bash -c true (posix_spawn + wait)        %7.3f ms\n", b);
  auto row = [&](const char* name, const std::vector<double>& rd, const std::vector<double>& sh) {
    double t = Median(rd), s = Median(sh);
    std::printf("%-9s turn with read (in-process)    %7.3f ms  (%6.0f turns/s)\n", name, t,
                1000 / t);
    std::printf("%-9s turn with shell `true`         %7.3f ms  (%6.0f turns/s)\n", name, s,
                1000 / s);
    std::printf("%-9s overhead per shell turn beyond bash -c true: %.3f ms; ratio turn/bash %.2f\n",
                name, s - b, s / b);
  };
  row("anthropic", a_read, a_shell);
  row("openai", o_read, o_shell);
  return 0;
}
