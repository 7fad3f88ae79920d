#include "tests/modelserver/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/fd.h"
#include "base/strings.h"

extern char** environ;

namespace kiln::modelserver {

Result<std::unique_ptr<ServerProcess>> ServerProcess::Start(const std::string& binary,
                                                            const std::string& script,
                                                            const std::string& record) {
  KILN_ASSIGN_OR_RETURN(Pipe pipe, MakePipe());
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipe.write.get(), 1);
  std::vector<std::string> args = {binary, "--script", script};
  if (!record.empty()) {
    args.push_back("--record");
    args.push_back(record);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, binary.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  pipe.write.reset();
  if (rc != 0) return Error::Sys("posix_spawn(" + Quote(binary) + ")", rc);
  std::string line;
  char c;
  while (line.find('\n') == std::string::npos) {
    pollfd pfd{pipe.read.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 10'000) <= 0 || ::read(pipe.read.get(), &c, 1) != 1) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return Error(Error::Code::kIO, Quote(binary) + " did not print its port");
    }
    line += c;
  }
  auto port = ParseUint(Trim(line), "port");
  if (!port.ok() || *port > 65535) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return Error(Error::Code::kIO,
                 Quote(binary) + " printed " + Quote(line) + " instead of a port");
  }
  return std::unique_ptr<ServerProcess>(new ServerProcess(pid, static_cast<uint16_t>(*port)));
}

ServerProcess::~ServerProcess() {
  ::kill(pid_, SIGTERM);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace kiln::modelserver
