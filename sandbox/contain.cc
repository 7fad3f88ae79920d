#include "sandbox/contain.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/caps.h"
#include "sandbox/net.h"
#include "sandbox/procfs.h"
#include "sandbox/proto.h"

namespace kiln::sandbox::contain {

namespace {

// Exit statuses for failures before the command runs (as in podman/docker).
constexpr int kSetupFailed = 125;
constexpr int kNotExecutable = 126;
constexpr int kNotFound = 127;

[[noreturn]] void Fail(int control_fd, int status, const std::string& what) {
  proto::Message m{proto::Type::kError};
  m.value = status;
  m.SetText(what);
  proto::Send(control_fd, m);
  _exit(status);
}

[[noreturn]] void FailErrno(int control_fd, const char* step, int err) {
  Fail(control_fd, kSetupFailed, std::string(step) + ": " + std::strerror(err));
}

// The command's side, between fork and exec: limits, identity, capabilities,
// file descriptors, and seccomp last. Uses no allocation after the filter is
// installed.
[[noreturn]] void CommandMain(const InitArgs& a, int sync_fd) {
  const Spec& spec = *a.spec;
  const int ctl = a.control_fd;
  if (sync_fd >= 0) {  // wait until init has written our id maps
    char c;
    if (read(sync_fd, &c, 1) != 1) _exit(kSetupFailed);
    close(sync_fd);
  }
  if (setsid() < 0) FailErrno(ctl, "setsid", errno);

  const struct {
    int res;
    rlim_t value;
    const char* name;
  } rlimits[] = {
      {RLIMIT_NOFILE, spec.limits.nofile, "setrlimit(RLIMIT_NOFILE)"},
      {RLIMIT_CORE, 0, "setrlimit(RLIMIT_CORE)"},
      {RLIMIT_FSIZE, spec.limits.fsize_bytes, "setrlimit(RLIMIT_FSIZE)"},
  };
  for (const auto& r : rlimits) {
    rlimit lim{r.value, r.value};
    if (setrlimit(r.res, &lim) != 0) FailErrno(ctl, r.name, errno);
  }
  // Without a cgroup, the process limit is RLIMIT_NPROC; the kernel counts it
  // per user namespace, so it caps the sandbox's processes, not the host user's.
  if (!spec.use_cgroup && spec.limits.pids) {
    rlimit lim{*spec.limits.pids, *spec.limits.pids};
    if (setrlimit(RLIMIT_NPROC, &lim) != 0) FailErrno(ctl, "setrlimit(RLIMIT_NPROC)", errno);
  }

  // Unprivileged sandboxes have setgroups denied (the kernel requires it);
  // there the caller's supplementary groups stay, as with bubblewrap.
  if (!a.mapping.rootless && setgroups(0, nullptr) != 0) FailErrno(ctl, "setgroups", errno);
  const char* step = nullptr;
  if (int err = caps::LockAndDropBounding(-1, &step); err != 0) FailErrno(ctl, step, -err);
  if (setresgid(spec.gid, spec.gid, spec.gid) != 0) FailErrno(ctl, "setresgid", errno);
  if (setresuid(spec.uid, spec.uid, spec.uid) != 0) FailErrno(ctl, "setresuid", errno);
  if (int err = caps::ClearSets(-1, &step); err != 0) FailErrno(ctl, step, -err);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    FailErrno(ctl, "prctl(PR_SET_NO_NEW_PRIVS)", errno);

  std::string workdir = spec.workdir.empty() ? (spec.workspace ? "/workspace" : "/") : spec.workdir;
  if (chdir(workdir.c_str()) != 0) {
    Fail(ctl, kSetupFailed, "chdir(" + Quote(workdir) + "): " + std::strerror(errno));
  }

  // Every inherited descriptor closes at exec except stdio and the ones
  // passed on purpose.
  if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0)
    FailErrno(ctl, "close_range", errno);
  for (int fd : spec.pass_fds) {
    if (fcntl(fd, F_SETFD, 0) != 0) {
      Fail(ctl, kSetupFailed, "passing fd " + std::to_string(fd) + ": " + std::strerror(errno));
    }
  }

  sigset_t none;
  sigemptyset(&none);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  std::vector<char*> argv;
  for (const std::string& s : spec.argv) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& s : a.env) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  // Written here, completed without allocating if execvpe fails.
  proto::Message exec_failed{proto::Type::kError};
  exec_failed.SetText("execvp(" + Quote(spec.argv[0]) + "): ");

  auto listener = seccomp::Install(*a.seccomp);
  if (!listener) Fail(ctl, kSetupFailed, listener.error().message());
  if (listener->valid()) {
    proto::Message m{proto::Type::kListener};
    if (int err = proto::Send(ctl, m, listener->get()); err != 0) _exit(kSetupFailed);
    listener->reset();
  }
  // execvpe searches the PATH of `environ`, not of envp: make them one.
  environ = envp.data();
  execvpe(argv[0], argv.data(), envp.data());
  int err = errno;
  exec_failed.value = err == ENOENT ? kNotFound : kNotExecutable;
  exec_failed.AppendText(strerror(err));
  proto::Send(ctl, exec_failed);
  _exit(exec_failed.value);
}

// Reaps every child; forwards the supervisor's signals to the command. When
// the command ends, kills what is left of the namespace and reports.
[[noreturn]] void Reap(int ctl, pid_t command) {
  sigset_t set;
  sigfillset(&set);
  int status = 0;
  bool done = false;
  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&set, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      // Forward only what comes from outside the namespace (the supervisor):
      // its sender has no pid here, so si_pid is 0.
      if (info.si_pid == 0) kill(command, sig);
      continue;
    }
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
      // A stop (a command that asked to be traced by its parent) is not an end.
      if (p == command && (WIFEXITED(st) || WIFSIGNALED(st))) {
        status = st;
        done = true;
      }
    }
    if (done) break;
  }
  // As pid 1, kill(-1) reaches every other process of the namespace.
  kill(-1, SIGKILL);
  while (waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
  }
  proto::Message m{proto::Type::kExit};
  m.value = status;
  proto::Send(ctl, m);
  _exit(0);
}

// Init is a copy of the supervisor, and /proc/1/cmdline is readable by every
// process in the sandbox: blank the supervisor's arguments (host paths, the
// state directory, --env values) and name init for what it is.
void HideCommandLine() {
  unsigned long arg_start = procfs::StatField("self", 48);
  unsigned long arg_end = procfs::StatField("self", 49);
  if (arg_start == 0 || arg_end <= arg_start) return;
  char* args = reinterpret_cast<char*>(arg_start);
  size_t len = arg_end - arg_start;
  std::memset(args, 0, len);
  constexpr char kName[] = "kiln-init";
  if (len > sizeof kName) std::memcpy(args, kName, sizeof kName);
  prctl(PR_SET_NAME, kName, 0, 0, 0);
}

// Init keeps only CAP_KILL (to end the command) and cannot be inspected.
void DropInitPrivileges(int ctl) {
  const char* step = nullptr;
  if (int err = caps::LockAndDropBounding(CAP_KILL, &step); err != 0) FailErrno(ctl, step, -err);
  if (int err = caps::ClearSets(CAP_KILL, &step); err != 0) FailErrno(ctl, step, -err);
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) FailErrno(ctl, "prctl(PR_SET_DUMPABLE)", errno);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    FailErrno(ctl, "prctl(PR_SET_NO_NEW_PRIVS)", errno);
}

}  // namespace

void InitMain(const InitArgs& a) {
  const int ctl = a.control_fd;
  // Die with the supervisor; the kernel then kills the whole pid namespace.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) _exit(kSetupFailed);
  HideCommandLine();
  proto::Message go{};
  int unused_fd;
  if (proto::Receive(ctl, &go, &unused_fd) != 1 || go.type != proto::Type::kGo) _exit(kSetupFailed);

  const Spec& spec = *a.spec;
  if (a.mapping.rootless) {
    if (setresgid(spec.gid, spec.gid, spec.gid) != 0) FailErrno(ctl, "setresgid", errno);
    if (setresuid(spec.uid, spec.uid, spec.uid) != 0) FailErrno(ctl, "setresuid", errno);
  }
  if (sethostname(spec.hostname.data(), spec.hostname.size()) != 0)
    FailErrno(ctl, "sethostname", errno);
  if (int err = net::LoopbackUp(); err != 0) FailErrno(ctl, "bringing up loopback", -err);
  if (auto s = mnt::BuildRoot(spec, a.layout); !s) Fail(ctl, kSetupFailed, s.error().message());
  // The supervisor joins us to the cgroup while the filesystem is built;
  // nothing may start before that, and the cgroup becomes our cgroup root.
  proto::Message joined{};
  if (proto::Receive(ctl, &joined, &unused_fd) != 1 || joined.type != proto::Type::kJoined)
    _exit(kSetupFailed);
  if (unshare(CLONE_NEWCGROUP) != 0) FailErrno(ctl, "unshare(CLONE_NEWCGROUP)", errno);

  // As root, init is in the host's user namespace, so the command gets its
  // own, mapped to an unprivileged host range; init writes its maps.
  int sync[2] = {-1, -1};
  unsigned long flags = SIGCHLD;
  if (!a.mapping.rootless) {
    if (pipe2(sync, O_CLOEXEC) != 0) FailErrno(ctl, "pipe2", errno);
    flags |= CLONE_NEWUSER;
  }
  pid_t command = static_cast<pid_t>(syscall(SYS_clone, flags, nullptr, nullptr, nullptr, 0));
  if (command < 0) FailErrno(ctl, "clone(command)", errno);
  if (command == 0) {
    if (sync[1] >= 0) close(sync[1]);
    CommandMain(a, sync[0]);
  }
  if (!a.mapping.rootless) {
    close(sync[0]);
    if (auto s = userns::WriteMaps(command, a.mapping); !s) {
      kill(command, SIGKILL);
      Fail(ctl, kSetupFailed, s.error().message());
    }
    if (write(sync[1], "g", 1) != 1) FailErrno(ctl, "starting the command", errno);
    close(sync[1]);
  }
  DropInitPrivileges(ctl);
  Reap(ctl, command);
}

}  // namespace kiln::sandbox::contain
