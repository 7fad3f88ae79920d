#include "runtime/tools/shell.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "base/fd.h"

extern char** environ;

namespace kiln::tool_shell {
namespace {

using Clock = std::chrono::steady_clock;

// Keeps the first and last `half` bytes of a stream of unknown length.
class HeadTail {
 public:
  explicit HeadTail(size_t cap) : half_(cap / 2), cap_(cap) {}
  void Add(const char* p, size_t n) {
    total_ += n;
    if (head_.size() < half_) {
      size_t take = std::min(n, half_ - head_.size());
      head_.append(p, take);
      p += take;
      n -= take;
    }
    tail_.append(p, n);
    if (tail_.size() > 2 * cap_) tail_.erase(0, tail_.size() - cap_);
  }
  uint64_t total() const { return total_; }
  std::string Finish(bool* truncated) const {
    std::string all = head_ + tail_;
    if (total_ == all.size()) return tool::CapHeadTail(all, cap_, truncated);
    // Bytes were dropped from the middle already: rebuild with the true count.
    *truncated = true;
    std::string tail = tail_.substr(tail_.size() - std::min(tail_.size(), half_));
    return head_ + "\n[... " + std::to_string(total_ - head_.size() - tail.size()) +
           " bytes omitted ...]\n" + tail;
  }

 private:
  size_t half_;
  size_t cap_;
  uint64_t total_ = 0;
  std::string head_;
  std::string tail_;
};

}  // namespace

tool::Output Run(const Request& req) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return tool::Output::Err(std::string("pipe2: ") + std::strerror(errno));
  UniqueFd rd(fds[0]), wr(fds[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
  posix_spawn_file_actions_addchdir_np(&fa, req.cwd.c_str());
  // The agent's commands get stdin, stdout and stderr, nothing of ours: not
  // the event or steering pipes, not the model connection, even if a library
  // opened one without close-on-exec.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  const char* argv[] = {"bash", "-c", req.command.c_str(), nullptr};
  pid_t pid = -1;
  auto start = Clock::now();
  int rc = posix_spawnp(&pid, "bash", &fa, &attr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  wr.reset();
  if (rc != 0) {
    return tool::Output::Err("spawning bash in " + Quote(req.cwd) + ": " + std::strerror(rc));
  }

  HeadTail out(req.max_output_bytes);
  // A pidfd tells when bash itself exits, independent of who holds the pipe.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  auto deadline = start + std::chrono::milliseconds(req.timeout_ms);
  std::optional<Clock::time_point> grace_end;  // set once bash has exited
  bool timed_out = false;
  bool exited = false;
  int status = 0;
  char buf[65536];
  while (rd.valid() || !exited) {
    auto now = Clock::now();
    if (!exited && now >= deadline) {
      timed_out = true;
      break;
    }
    // After bash exits only its leftovers can hold the pipe: wait briefly.
    if (exited && now >= *grace_end) break;
    auto until = exited ? *grace_end : deadline;
    int wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1);
    pollfd p[2];
    nfds_t n = 0;
    if (rd.valid()) p[n++] = {rd.get(), POLLIN, 0};
    if (!exited && pidfd.valid()) p[n++] = {pidfd.get(), POLLIN, 0};
    if (!exited && !pidfd.valid()) wait_ms = std::min(wait_ms, 5);  // no pidfd: poll waitpid
    int ready = ::poll(p, n, wait_ms);
    if (ready < 0 && errno != EINTR) break;
    if (rd.valid() && ready > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t got = ::read(rd.get(), buf, sizeof buf);
      if (got > 0) {
        out.Add(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        rd.reset();
      }
    }
    // WNOWAIT leaves bash a zombie until the group is killed below, so its
    // pid (the group id) cannot be reused by an unrelated process meanwhile.
    siginfo_t si{};
    if (!exited && ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == pid) {
      exited = true;
      grace_end = Clock::now() + std::chrono::milliseconds(100);
    }
  }
  // Whatever is left in the group is either a timed-out command or a
  // leftover background process; neither may outlive the call.
  ::kill(-pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  tool::Output o;
  o.full_bytes = out.total();
  o.content = tool::SanitizeUtf8(out.Finish(&o.truncated));
  if (timed_out) {
    o.is_error = true;
    o.content += "\n[timed out after " + std::to_string(req.timeout_ms) +
                 " ms; the command and its process group were killed]";
    return o;
  }
  if (WIFEXITED(status)) {
    o.exit_status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    o.exit_status = 128 + WTERMSIG(status);
  }
  // No duration in the content: loop detection compares results, and the
  // tool.result event carries the duration.
  o.content += "\n[exit status " + std::to_string(o.exit_status.value_or(-1)) + "]";
  return o;
}

tool::Def Make(const std::string& workspace_root, const tool::Limits& limits) {
  tool::Def d;
  d.name = "shell";
  d.description =
      "Run a bash command in the workspace. stdout and stderr are merged; long output keeps "
      "its beginning and end. Returns the exit status. Processes left running when the "
      "command exits are killed.";
  d.input_schema = {
      {"type", "object"},
      {"properties",
       {{"command", {{"type", "string"}, {"minLength", 1}, {"description", "bash command"}}},
        {"timeout_ms",
         {{"type", "integer"},
          {"minimum", 1},
          {"maximum", limits.shell_max_timeout_ms},
          {"description", "time limit in milliseconds"}}}}},
      {"required", {"command"}},
      {"additionalProperties", false}};
  d.run = [workspace_root, limits](const nlohmann::json& input) {
    Request r;
    r.command = tool::StringArg(input, "command");
    r.cwd = workspace_root;
    r.timeout_ms = input.value("timeout_ms", limits.shell_timeout_ms);
    r.max_output_bytes = limits.max_output_bytes;
    return Run(r);
  };
  return d;
}

}  // namespace kiln::tool_shell
