#include "controller/run/launch.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace kiln::launch {

Result<Child> Child::Start(const std::vector<std::string>& argv, int output_fd,
                           const std::vector<int>& pass_fds) {
  std::vector<char*> args;
  for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_fd.valid()) return Error::Sys("open('/dev/null')", errno);
  // The child's exec error, if any; exec closes it.
  KILN_ASSIGN_OR_RETURN(Pipe err, MakePipe());
  const pid_t parent = ::getpid();
  std::vector<int> keep(pass_fds.begin(), pass_fds.end());
  keep.push_back(err.write.get());
  std::sort(keep.begin(), keep.end());

  pid_t pid = ::fork();
  if (pid < 0) return Error::Sys("fork", errno);
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec: the parent has threads.
    auto fail = [&](int e) {
      (void)!::write(err.write.get(), &e, sizeof e);
      _exit(127);
    };
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) fail(errno);
    if (::getppid() != parent) _exit(127);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(null_fd.get(), 0) < 0 || ::dup2(output_fd, 1) < 0 || ::dup2(output_fd, 2) < 0) {
      fail(errno);
    }
    for (int fd : pass_fds) {
      int flags = ::fcntl(fd, F_GETFD);
      if (flags < 0 || ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) != 0) fail(errno);
    }
    // Everything else was opened O_CLOEXEC by kiln; close what a library did not.
    unsigned first = 3;
    for (int fd : keep) {
      if (static_cast<unsigned>(fd) > first) ::syscall(SYS_close_range, first, fd - 1u, 0u);
      first = static_cast<unsigned>(fd) + 1;
    }
    ::syscall(SYS_close_range, first, ~0u, 0u);
    ::execv(args[0], args.data());
    fail(errno);
  }
  err.write.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err.read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (n == sizeof child_errno) {
    ::waitpid(pid, nullptr, 0);
    return Error::Sys("exec(" + Quote(argv[0]) + ")", child_errno);
  }
  if (!pidfd.valid()) {
    int e = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return Error::Sys("pidfd_open", e);
  }
  return Child(pid, std::move(pidfd));
}

Child::~Child() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

Status Child::Signal(int sig) const {
  if (pid_ <= 0) return Ok();
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0 && errno != ESRCH) {
    return Error::Sys("pidfd_send_signal", errno);
  }
  return Ok();
}

Result<int> Child::Wait() {
  int st = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &st, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Error::Sys("waitpid", errno);
  pid_ = -1;
  return st;
}

}  // namespace kiln::launch
