#include "base/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "base/fd.h"

extern char** environ;

namespace kiln {

Result<ProcessResult> RunProgram(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& extra_env,
                                 const std::function<void(const std::string&)>& on_line,
                                 size_t keep_bytes) {
  if (argv.empty()) return Error::Invalid("RunProgram: no program");
  KILN_ASSIGN_OR_RETURN(Pipe pipe, MakePipe());
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipe.write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, pipe.write.get(), STDERR_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  envs.insert(envs.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (const std::string& e : envs) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc == ENOENT) {
    return Error::Unsupported(argv[0] + " is not installed (Debian's " + argv[0] + " package)");
  }
  if (rc != 0) return Error::Sys("running " + argv[0], rc);
  pipe.write.reset();
  ProcessResult r;
  std::string partial;
  char chunk[4096];
  for (;;) {
    ssize_t n = ::read(pipe.read.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.output.append(chunk, static_cast<size_t>(n));
    if (on_line) {
      partial.append(chunk, static_cast<size_t>(n));
      for (size_t nl; (nl = partial.find('\n')) != std::string::npos; partial.erase(0, nl + 1)) {
        on_line(partial.substr(0, nl));
      }
    }
    if (r.output.size() > 2 * keep_bytes) r.output.erase(0, r.output.size() - keep_bytes);
  }
  if (on_line && !partial.empty()) on_line(partial);
  if (r.output.size() > keep_bytes) r.output.erase(0, r.output.size() - keep_bytes);
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return r;
}

}  // namespace kiln
