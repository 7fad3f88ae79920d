#include "sandbox/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>

#include "base/fd.h"
#include "sandbox/cgroup.h"
#include "sandbox/contain.h"
#include "sandbox/filter_cache.h"
#include "sandbox/hostimage.h"
#include "sandbox/proto.h"
#include "sandbox/seccomp.h"
#include "sandbox/state.h"

namespace kiln::sandbox {

namespace {

constexpr int kSetupFailed = 125;
constexpr int kForwardedSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
// More than the system calls of every ABI together; denials beyond that many
// distinct names are counted under kOtherDenials.
constexpr size_t kMaxDeniedNames = 1024;
constexpr const char* kOtherDenials = "other";

std::string NewId() {
  uint32_t r[2] = {};
  (void)!::getrandom(r, sizeof r, 0);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", r[0], r[1]);
  return buf;
}

Result<std::string> Canonical(const std::string& path, const std::string& what, bool want_dir) {
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real) == nullptr) {
    return Error::Sys(what + " " + Quote(path), errno);
  }
  struct stat st {};
  if (::stat(real, &st) != 0) return Error::Sys(what + " " + Quote(path), errno);
  if (want_dir && !S_ISDIR(st.st_mode))
    return Error::Invalid(what + " " + Quote(path) + " is not a directory");
  return std::string(real);
}

// True when `inner` is `outer` or lies below it (both canonical).
bool Within(const std::string& inner, const std::string& outer) {
  if (outer == "/" || inner == outer) return true;
  return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
         inner[outer.size()] == '/';
}

// kiln's state directory configures every later sandbox: the cached seccomp
// programs, the host image (their lower layer), the run records. Unprivileged,
// it belongs to the very host user the sandbox runs as, so a writable mount of
// it (`--workspace ~` holds ~/.local/state/kiln) would let one sandbox rewrite
// the seccomp filter of the next. Refuse writable mounts that hold it or lie
// inside the parts kiln uses.
Status CheckStateOutOfReach(const Spec& spec, const std::string& state_dir) {
  KILN_ASSIGN_OR_RETURN(std::string state, Canonical(state_dir, "state directory", true));
  auto exposes = [&](const std::string& source) {
    if (Within(state, source)) return true;
    for (const char* sub : {"/seccomp", "/images", "/run", "/mnt"}) {
      if (Within(source, state + sub)) return true;
    }
    return false;
  };
  auto refuse = [&](const std::string& what, const std::string& source) {
    return Error::Invalid(what + " " + Quote(source) + " would make kiln's state directory " +
                          Quote(state) +
                          " writable inside the sandbox; bind it read-only or use another "
                          "--state-dir");
  };
  if (spec.workspace && exposes(*spec.workspace)) return refuse("--workspace", *spec.workspace);
  for (const BindMount& b : spec.binds) {
    if (!b.read_only && exposes(b.source)) return refuse("--bind", b.source);
  }
  return Ok();
}

std::vector<std::string> BuildEnv(const Spec& spec) {
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      spec.uid == 0 ? "HOME=/root" : "HOME=/tmp",
      "HOSTNAME=" + spec.hostname,
  };
  for (const std::string& kv : spec.env) {
    std::string name = kv.substr(0, kv.find('='));
    std::erase_if(
        env, [&](const std::string& e) { return e.compare(0, name.size() + 1, name + "=") == 0; });
    env.push_back(kv);
  }
  return env;
}

// Owns what a sandbox leaves on the host until it is torn down: its cgroup
// and its state directory. Destruction removes both, on every path out.
class Leftovers {
 public:
  Leftovers(std::string state_dir, std::string id)
      : state_dir_(std::move(state_dir)), id_(std::move(id)) {}
  ~Leftovers() {
    if (cgroup_) {
      if (auto s = cgroup_->Destroy(); !s) spdlog::error("teardown: {}", s.error().message());
    }
    if (auto s = state::Remove(state_dir_, id_); !s)
      spdlog::error("teardown: {}", s.error().message());
  }
  Leftovers(const Leftovers&) = delete;
  Leftovers& operator=(const Leftovers&) = delete;

  std::unique_ptr<cgroup::Cgroup> cgroup_;

 private:
  std::string state_dir_, id_;
};

Status ArmTimer(int tfd, uint64_t ms) {
  itimerspec its{};
  its.it_value.tv_sec = static_cast<time_t>(ms / 1000);
  its.it_value.tv_nsec = static_cast<long>((ms % 1000) * 1000000);
  if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
  if (::timerfd_settime(tfd, 0, &its, nullptr) != 0) return Error::Sys("timerfd_settime", errno);
  return Ok();
}

// The supervisor's wait: messages from init, the end of init, the timeout,
// forwarded signals and seccomp denials.
class Watch {
 public:
  Watch(const Spec& spec, pid_t init, int pidfd, int ctl, int sigfd, cgroup::Cgroup* cg,
        Report* report)
      : spec_(spec),
        init_(init),
        pidfd_(pidfd),
        ctl_(ctl),
        sigfd_(sigfd),
        cg_(cg),
        report_(report) {}

  Status Loop() {
    UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
    if (!timer.valid()) return Error::Sys("timerfd_create", errno);
    if (spec_.limits.timeout_ms > 0) KILN_TRY(ArmTimer(timer.get(), spec_.limits.timeout_ms));
    while (!init_done_ || ctl_open_) {
      pollfd fds[5] = {{ctl_open_ ? ctl_ : -1, POLLIN, 0},
                       {init_done_ ? -1 : pidfd_, POLLIN, 0},
                       {timer.get(), POLLIN, 0},
                       {sigfd_, POLLIN, 0},
                       {listener_.get(), POLLIN, 0}};
      int n = ::poll(fds, 5, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::Sys("poll", errno);
      if (fds[4].revents & POLLIN)
        OnDenial();
      else if (fds[4].revents & (POLLHUP | POLLERR))
        listener_.reset();
      if (fds[0].revents) OnMessage();
      if (fds[1].revents) OnInitExit();
      if (fds[2].revents & POLLIN) KILN_TRY(OnTimer(timer.get()));
      if (fds[3].revents & POLLIN) OnSignal();
    }
    return Ok();
  }

  bool got_exit() const { return got_exit_; }
  int exit_status() const { return exit_status_; }

 private:
  void OnMessage() {
    proto::Message m{};
    int fd = -1;
    int rc = proto::Receive(ctl_, &m, &fd);
    if (rc <= 0) {
      ctl_open_ = false;
      return;
    }
    switch (m.type) {
      case proto::Type::kError:
        if (report_->error.empty()) {
          report_->error = m.text;
          report_->status = m.value;
        }
        break;
      case proto::Type::kExit:
        got_exit_ = true;
        exit_status_ = m.value;
        break;
      case proto::Type::kListener:
        listener_.reset(fd);
        fd = -1;
        break;
      default:
        break;
    }
    if (fd >= 0) ::close(fd);
  }

  void OnInitExit() {
    int st;
    if (::waitpid(init_, &st, WNOHANG) == init_) init_done_ = true;
  }

  Status OnTimer(int tfd) {
    uint64_t ticks;
    (void)!::read(tfd, &ticks, sizeof ticks);
    if (!report_->timed_out) {
      report_->timed_out = true;
      ::kill(init_, SIGTERM);  // init forwards it to the command
      return ArmTimer(tfd, spec_.limits.grace_ms);
    }
    // Grace is over: killing init ends its whole pid namespace.
    ::kill(init_, SIGKILL);
    if (cg_) (void)cg_->KillAll();
    return Ok();
  }

  void OnSignal() {
    signalfd_siginfo si{};
    if (::read(sigfd_, &si, sizeof si) == sizeof si) ::kill(init_, static_cast<int>(si.ssi_signo));
  }

  void OnDenial() {
    auto d = seccomp::AnswerDenial(listener_.get());
    if (!d) return;  // the caller died before we answered; nothing to count
    ++report_->seccomp_denials;
    // The number comes from the sandbox: through the i386 and x32 ABIs any
    // 32-bit value arrives here, named "syscall_<nr>" when unknown. Cap the
    // distinct names, so that a flood of made-up numbers cannot grow the
    // supervisor (outside the sandbox's memory cgroup) or the report.
    auto& named = report_->denied_syscalls;
    if (named.size() < kMaxDeniedNames || named.count(d->syscall) != 0) {
      ++named[d->syscall];
    } else {
      ++named[kOtherDenials];
    }
    if (spec_.seccomp_log) {
      spdlog::warn("seccomp: denied {}(0x{:x}, 0x{:x}, 0x{:x}, ...) in pid {}", d->syscall,
                   d->args[0], d->args[1], d->args[2], d->pid);
    }
  }

  const Spec& spec_;
  pid_t init_;
  int pidfd_, ctl_, sigfd_;
  cgroup::Cgroup* cg_;
  Report* report_;
  UniqueFd listener_;
  bool init_done_ = false;
  bool ctl_open_ = true;
  bool got_exit_ = false;
  int exit_status_ = 0;
};

// Blocks the forwarded signals for the duration of a run and restores the
// previous mask afterwards.
class SignalForwarding {
 public:
  SignalForwarding() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : kForwardedSignals) sigaddset(&set, s);
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
    fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  }
  ~SignalForwarding() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  int fd() const { return fd_.get(); }

 private:
  sigset_t old_;
  UniqueFd fd_;
};

}  // namespace

Result<Report> Run(const Spec& input) {
  auto started = std::chrono::steady_clock::now();
  KILN_TRY(Validate(input));
  Spec spec = input;
  const std::string state_dir = spec.state_dir.empty() ? state::DefaultDir() : spec.state_dir;
  KILN_TRY(state::Prepare(state_dir));
  if (spec.id.empty()) spec.id = NewId();

  // Everything that can be checked before anything is created.
  mnt::Layout layout;
  layout.in_user_ns = ::geteuid() != 0;
  if (!spec.layers.empty()) {
    for (auto it = spec.layers.rbegin(); it != spec.layers.rend(); ++it) {
      KILN_ASSIGN_OR_RETURN(std::string dir, Canonical(*it, "--layer", true));
      layout.lowers.push_back(std::move(dir));
    }
  } else if (spec.image == "host") {
    KILN_ASSIGN_OR_RETURN(std::string dir, hostimage::Ensure(state_dir));
    layout.lowers.push_back(std::move(dir));
    layout.host_image = true;
  } else {
    KILN_ASSIGN_OR_RETURN(std::string dir, Canonical(spec.image, "image", true));
    layout.lowers.push_back(std::move(dir));
  }
  for (BindMount& b : spec.binds) {
    KILN_ASSIGN_OR_RETURN(b.source, Canonical(b.source, "--bind source", false));
  }
  if (spec.workspace) {
    KILN_ASSIGN_OR_RETURN(*spec.workspace, Canonical(*spec.workspace, "--workspace", true));
  }
  KILN_TRY(CheckStateOutOfReach(spec, state_dir));
  for (int fd : spec.pass_fds) {
    if (::fcntl(fd, F_GETFD) < 0)
      return Error::Invalid("--pass-fd " + std::to_string(fd) + ": not an open descriptor");
  }
  KILN_ASSIGN_OR_RETURN(seccomp::Program program, filter_cache::Load(state_dir, spec.seccomp_policy,
                                                                     {.notify_denials = true}));
  std::optional<cgroup::Version> cg_version;
  if (spec.use_cgroup) {
    KILN_ASSIGN_OR_RETURN(cg_version, cgroup::Detect(spec.cgroup_root));
  }

  // The record comes first, so that gc can always find what follows; from
  // here on, the Leftovers owner removes what we create.
  state::Record record{spec.id, ::getpid(), state::ProcessStartTime(::getpid()),
                       cg_version ? spec.cgroup_root : "", spec.cgroup_parent};
  KILN_TRY(state::Create(state_dir, record));
  Leftovers leftovers(state_dir, spec.id);
  layout.scratch = state::MountPoint(state_dir);

  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
    return Error::Sys("socketpair", errno);
  UniqueFd ctl(sp[0]), child_ctl(sp[1]);
  SignalForwarding signals;

  contain::InitArgs args;
  args.spec = &spec;
  args.layout = layout;
  args.mapping = userns::ForCaller(spec.uid, spec.gid);
  args.seccomp = &program;
  args.env = BuildEnv(spec);
  args.control_fd = child_ctl.get();

  unsigned long flags =
      CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
  if (args.mapping.rootless) flags |= CLONE_NEWUSER;
  pid_t init = static_cast<pid_t>(::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, 0));
  if (init < 0) {
    int err = errno;
    std::string msg = "clone(new namespaces)";
    if (err == EPERM || err == ENOSPC) msg += " (are user namespaces disabled on this host?)";
    return Error::Sys(msg, err);
  }
  if (init == 0) {
    ctl.reset();
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_BLOCK, &all, nullptr);
    contain::InitMain(args);
  }
  child_ctl.reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, init, 0)));
  if (!pidfd.valid()) {
    ::kill(init, SIGKILL);
    ::waitpid(init, nullptr, 0);
    return Error::Sys("pidfd_open (needs Linux 5.3 or later)", errno);
  }

  Report report;
  report.id = spec.id;
  // Init builds the filesystem while we create its cgroup and join init to
  // it; init starts the command only after kJoined.
  auto start_init = [&]() -> Status {
    if (args.mapping.rootless) KILN_TRY(userns::WriteMaps(init, args.mapping));
    if (int err = proto::Send(ctl.get(), proto::Message{proto::Type::kGo}); err != 0) {
      return Error::Sys("starting the sandbox", -err);
    }
    if (cg_version) {
      cgroup::Options opts;
      opts.root = spec.cgroup_root;
      opts.parent = spec.cgroup_parent;
      KILN_ASSIGN_OR_RETURN(leftovers.cgroup_,
                            cgroup::Create(*cg_version, spec.id, spec.limits, opts));
    }
    if (leftovers.cgroup_) KILN_TRY(leftovers.cgroup_->AddProcess(init));
    if (int err = proto::Send(ctl.get(), proto::Message{proto::Type::kJoined}); err != 0) {
      return Error::Sys("starting the sandbox", -err);
    }
    return Ok();
  };
  if (auto s = start_init(); !s) {
    ::kill(init, SIGKILL);
    ::waitpid(init, nullptr, 0);
    // Init may have failed first and said why; that is the error to report.
    proto::Message m{};
    int fd;
    while (proto::Receive(ctl.get(), &m, &fd) == 1) {
      if (fd >= 0) ::close(fd);
      if (m.type == proto::Type::kError) return Error(Error::Code::kInternal, m.text);
    }
    return s.error();
  }

  Watch watch(spec, init, pidfd.get(), ctl.get(), signals.fd(), leftovers.cgroup_.get(), &report);
  Status looped = watch.Loop();
  if (!looped) {
    ::kill(init, SIGKILL);
    ::waitpid(init, nullptr, 0);
    return looped.error();
  }

  rusage ru{};
  ::getrusage(RUSAGE_CHILDREN, &ru);
  report.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  if (leftovers.cgroup_) {
    if (auto st = leftovers.cgroup_->ReadStats(); st) {
      report.memory_peak_bytes = st->memory_peak_bytes;
      report.pids_peak = st->pids_peak;
      report.oom_killed = st->oom_kills > 0;
      if (st->cpu_usec) report.cpu_seconds = static_cast<double>(*st->cpu_usec) / 1e6;
    }
  } else {
    report.memory_peak_bytes = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
  }

  if (!report.error.empty()) {
    // Setup failed inside; status already says 125, 126 or 127.
  } else if (watch.got_exit()) {
    int st = watch.exit_status();
    if (WIFEXITED(st)) {
      report.exit_code = WEXITSTATUS(st);
      report.status = *report.exit_code;
    } else if (WIFSIGNALED(st)) {
      report.signal = WTERMSIG(st);
      report.status = 128 + *report.signal;
    }
  } else if (report.timed_out) {
    report.signal = SIGKILL;
    report.status = 128 + SIGKILL;
  } else {
    report.error = "the sandbox's init died before the command finished";
    report.status = kSetupFailed;
  }
  report.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;  // ~Leftovers tears down the cgroup and the state directory
}

}  // namespace kiln::sandbox
