#include "base/process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

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

namespace {

// A write to a program that stopped reading raises SIGPIPE, which must not
// end the caller: blocked on this thread while RunPiped runs, and one that
// was raised meanwhile taken off before the mask is put back.
class QuietPipe {
 public:
  QuietPipe() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~QuietPipe() {
    if (!sigismember(&old_, SIGPIPE)) {
      const timespec now{};
      while (::sigtimedwait(&pipe_, nullptr, &now) == SIGPIPE) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_, old_;
};

}  // namespace

Result<PipedResult> RunPiped(const std::string& program, const std::vector<std::string>& args,
                             const std::vector<std::string>& env, const Feed& feed, const Sink& out,
                             size_t max_err) {
  KILN_ASSIGN_OR_RETURN(Pipe in, MakePipe());
  KILN_ASSIGN_OR_RETURN(Pipe out_pipe, MakePipe());
  KILN_ASSIGN_OR_RETURN(Pipe err, MakePipe());
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in.read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, out_pipe.write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, err.write.get(), STDERR_FILENO);
  std::vector<char*> argv = {const_cast<char*>(program.c_str())};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // A group of its own: stopping it stops what it started too (git
  // http-backend's upload-pack and pack-objects).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, program.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc == ENOENT) return Error::Unsupported(program + " is not installed");
  if (rc != 0) return Error::Sys("running " + program, rc);
  in.read.reset();
  out_pipe.write.reset();
  err.write.reset();
  for (int fd : {in.write.get(), out_pipe.read.get(), err.read.get()}) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  QuietPipe quiet;
  PipedResult r;
  std::optional<Error> failure;  // the feed's, the sink's, or stderr past max_err
  auto stop = [&](Error e) {
    failure = std::move(e);
    ::kill(-pid, SIGKILL);
    in.write.reset();
    out_pipe.read.reset();
    err.read.reset();
  };
  std::string pending;  // input taken from feed, not yet written
  size_t written = 0;
  char chunk[65536];
  while (out_pipe.read.valid() || err.read.valid()) {
    // More input once the last piece is in. The feed may block (a client
    // sending) while the program's output waits: right for a program that
    // reads its input before it answers, as git's services over HTTP do.
    if (in.write.valid() && written == pending.size()) {
      auto piece = feed();
      if (!piece) {
        stop(piece.error());
        break;
      }
      pending = std::move(*piece);
      written = 0;
      if (pending.empty()) in.write.reset();
    }
    pollfd fds[3] = {{in.write.valid() ? in.write.get() : -1, POLLOUT, 0},
                     {out_pipe.read.valid() ? out_pipe.read.get() : -1, POLLIN, 0},
                     {err.read.valid() ? err.read.get() : -1, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      stop(Error::Sys("poll", errno));
      break;
    }
    if (fds[0].revents) {
      ssize_t n = ::write(in.write.get(), pending.data() + written, pending.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      // The program stopped reading (it ended, or needs no more): the rest
      // of the input is not for it.
      if (n < 0 && errno != EAGAIN && errno != EINTR) in.write.reset();
    }
    for (int i : {1, 2}) {
      if (!fds[i].revents) continue;
      UniqueFd& fd = i == 1 ? out_pipe.read : err.read;
      ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        fd.reset();
        continue;
      }
      if (i == 2) {
        r.err.append(chunk, static_cast<size_t>(n));
        if (r.err.size() > max_err) {
          stop(Error::Invalid(program + " wrote more than " + std::to_string(max_err) +
                              " bytes to stderr"));
        }
      } else if (Status st = out(std::string_view(chunk, static_cast<size_t>(n))); !st.ok()) {
        stop(st.error());
      }
    }
  }
  in.write.reset();
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  if (failure) return *failure;
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return r;
}

}  // namespace kiln
