// Process attacks: namespaces, other processes (host processes, the
// sandbox's init), /proc knobs, identity and limits, terminal injection
// (CVE-2017-5226), and the two bombs.
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tests/escape/attack.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace kiln::attack {

namespace {

struct NsFlag {
  unsigned long flag;
  const char* name;
};
constexpr NsFlag kNamespaces[] = {
    {CLONE_NEWNS, "CLONE_NEWNS"},    {CLONE_NEWNET, "CLONE_NEWNET"},
    {CLONE_NEWPID, "CLONE_NEWPID"},  {CLONE_NEWIPC, "CLONE_NEWIPC"},
    {CLONE_NEWUTS, "CLONE_NEWUTS"},  {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"},
    {CLONE_NEWTIME, "CLONE_NEWTIME"}};

// struct clone_args, version 0 (the kernel's header clashes with <sched.h>).
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

// clone() with namespace flags; a child that exists at all is the escape.
void CloneWith(unsigned long flags, const std::string& name, Verdict& v) {
  errno = 0;
  long pid = syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, 0);
  int err = errno;
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
  v.Expect("clone(" + name + ")", pid, err);
}

void Clone3With(uint64_t flags, const std::string& name, Verdict& v) {
  CloneArgs ca{};
  ca.flags = flags;
  ca.exit_signal = SIGCHLD;
  errno = 0;
  long pid = syscall(SYS_clone3, &ca, sizeof ca);
  int err = errno;
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
  v.Expect("clone3(" + name + ")", pid, err);
}

void Unshare(const Args&, Verdict& v) {
  for (const NsFlag& ns : kNamespaces) {
    KILN_TRY(v, std::string("unshare(") + ns.name + ")", unshare(static_cast<int>(ns.flag)));
  }
  // clone cannot carry CLONE_NEWTIME (its bit is part of the exit signal).
  for (const NsFlag& ns : kNamespaces) {
    if (ns.flag != CLONE_NEWTIME) CloneWith(ns.flag, ns.name, v);
  }
  Clone3With(CLONE_NEWNS | CLONE_NEWPID, "CLONE_NEWNS|CLONE_NEWPID", v);
}

void Userns(const Args&, Verdict& v) {
  std::string before, after;
  ReadSome("/proc/self/uid_map", &before);
  KILN_TRY(v, "unshare(CLONE_NEWUSER)", unshare(CLONE_NEWUSER));
  KILN_TRY(v, "unshare(CLONE_NEWUSER|CLONE_NEWNS)", unshare(CLONE_NEWUSER | CLONE_NEWNS));
  CloneWith(CLONE_NEWUSER, "CLONE_NEWUSER", v);
  CloneWith(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID, "CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID",
            v);
  Clone3With(CLONE_NEWUSER, "CLONE_NEWUSER", v);
  ReadSome("/proc/self/uid_map", &after);
  if (before != after) v.Escaped("the process's user namespace changed: " + after);
}

void Setns(const Args& args, Verdict& v) {
  const char* kinds[] = {"mnt", "net", "pid", "user", "uts", "ipc", "cgroup"};
  for (const char* kind : kinds) {
    // init is in the host's user namespace; its ns files must not even open.
    std::string init_ns = std::string("/proc/1/ns/") + kind;
    errno = 0;
    int fd = open(init_ns.c_str(), O_RDONLY | O_CLOEXEC);
    int err = errno;
    if (fd < 0) {
      v.Blocked("open(" + init_ns + ")", err);
    } else {
      v.Escaped("opened " + init_ns);
      KILN_TRY(v, "setns(" + init_ns + ")", setns(fd, 0));
      close(fd);
    }
    std::string own = std::string("/proc/self/ns/") + kind;
    fd = open(own.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      KILN_TRY(v, "setns(" + own + ")", setns(fd, 0));
      close(fd);
    }
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, 1, 0));
  if (pidfd >= 0) {
    KILN_TRY(v, "setns(pidfd of init, CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWUSER)",
             setns(pidfd, CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUSER));
    close(pidfd);
  }
  for (size_t i = 0; i < args.size(); ++i) {
    long host_pid = ArgNumber(args, i, "host pid");
    std::string p = "/proc/" + std::to_string(host_pid) + "/ns/mnt";
    KILN_TRY(v, "open(" + p + ") of a host process", open(p.c_str(), O_RDONLY | O_CLOEXEC));
  }
  // A namespace fd leaked into the sandbox would be the way in.
  for (int fd = 3; fd < 256; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0) KILN_TRY(v, "setns(fd " + std::to_string(fd) + ")", setns(fd, 0));
  }
}

// --- other processes -----------------------------------------------------

void Ptrace(const Args& args, Verdict& v) {
  long host_pid = ArgNumber(args, 0, "host pid");
  char buf[64];
  iovec local{buf, sizeof buf};
  for (long pid : {host_pid, 1L}) {
    std::string who = pid == 1 ? "init" : "host pid " + std::to_string(pid);
    KILN_TRY(v, "ptrace(PTRACE_ATTACH, " + who + ")",
             syscall(SYS_ptrace, PTRACE_ATTACH, pid, 0, 0));
    KILN_TRY(v, "ptrace(PTRACE_SEIZE, " + who + ")", syscall(SYS_ptrace, PTRACE_SEIZE, pid, 0, 0));
    // Any readable address will do: the stack of the target is not needed.
    iovec remote{reinterpret_cast<void*>(0x400000), sizeof buf};
    KILN_TRY(v, "process_vm_readv(" + who + ")",
             syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0));
    std::string mem = "/proc/" + std::to_string(pid) + "/mem";
    KILN_TRY(v, "open(" + mem + ", O_RDWR)", open(mem.c_str(), O_RDWR | O_CLOEXEC));
  }
}

void Kill(const Args& args, Verdict& v) {
  long host_pid = ArgNumber(args, 0, "host pid");
  std::string who = "host pid " + std::to_string(host_pid);
  KILN_TRY(v, "kill(" + who + ", SIGKILL)", kill(static_cast<pid_t>(host_pid), SIGKILL));
  KILN_TRY(v, "tgkill(" + who + ", SIGKILL)", syscall(SYS_tgkill, host_pid, host_pid, SIGKILL));
  KILN_TRY(v, "pidfd_open(" + who + ")", syscall(SYS_pidfd_open, host_pid, 0));
  // Everything this process may signal: only the sandbox (init ignores it).
  errno = 0;
  int rc = kill(-1, SIGKILL);
  std::fprintf(stderr, "kiln-attack: kill(-1, SIGKILL) = %d (%s)\n", rc,
               rc ? std::strerror(errno) : "sent");
  errno = 0;
  rc = kill(1, SIGKILL);
  int err = errno;
  usleep(100 * 1000);
  if (rc != 0) {
    v.Blocked("kill(init, SIGKILL)", err);
  } else if (getppid() == 1 && kill(1, 0) == 0) {
    v.Blocked("kill(init, SIGKILL)", "delivered, but a pid namespace's init ignores it");
  } else {
    v.Escaped("kill(init, SIGKILL) killed init");
  }
}

void InitProc(const Args&, Verdict& v) {
  // init is the supervisor's copy: its environment, memory and descriptors
  // (its end of the supervisor socket) belong to the host side.
  for (const char* f :
       {"environ", "mem", "auxv", "syscall", "stack", "pagemap", "io", "personality"}) {
    std::string p = std::string("/proc/1/") + f;
    std::string data;
    errno = 0;
    if (!ReadSome(p, &data, 65536)) {
      v.Blocked("open(" + p + ")", errno);
    } else if (data.empty()) {
      v.Blocked("read(" + p + ")", "empty");
    } else {
      v.Escaped("read " + std::to_string(data.size()) + " bytes of " + p);
    }
  }
  for (const char* f : {"root", "cwd", "fd", "map_files", "ns"}) {
    std::string p = std::string("/proc/1/") + f + "/";
    KILN_TRY(v, "open(" + p + ")", open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  char target[256];
  KILN_TRY(v, "readlink(/proc/1/root)", readlink("/proc/1/root", target, sizeof target));
}

// --- /proc knobs ---------------------------------------------------------

void Sysrq(const Args&, Verdict& v) {
  // 'h' only prints help to the kernel log: harmless if it ever gets through.
  WriteKnob("/proc/sysrq-trigger", "h", v);
  WriteKnob("/proc/sys/kernel/sysrq", "1", v);
}

// Writes a value other than the current one, so that a success is visible.
void FlipKnob(const std::string& path, const char* a, const char* b, Verdict& v) {
  std::string cur;
  ReadSome(path, &cur);
  WriteKnob(path, cur.rfind(a, 0) == 0 ? b : a, v);
}

void ProcSys(const Args&, Verdict& v) {
  // core_pattern and modprobe run a program as host root: the classic way out.
  WriteKnob("/proc/sys/kernel/core_pattern", "|/attack/kiln-attack core %P", v);
  WriteKnob("/proc/sys/kernel/modprobe", "/attack/kiln-attack", v);
  WriteKnob("/proc/sys/kernel/hostname", "kiln-escaped", v);
  FlipKnob("/proc/sys/kernel/randomize_va_space", "0", "2", v);
  FlipKnob("/proc/sys/fs/suid_dumpable", "2", "0", v);
  FlipKnob("/proc/sys/kernel/ctrl-alt-del", "0", "1", v);
  FlipKnob("/proc/sys/net/ipv4/ip_forward", "1", "0", v);
}

// --- identity and limits -------------------------------------------------

void Rlimit(const Args&, Verdict& v) {
  struct {
    int res;
    const char* name;
  } limits[] = {{RLIMIT_NOFILE, "RLIMIT_NOFILE"}, {RLIMIT_CORE, "RLIMIT_CORE"},
                {RLIMIT_FSIZE, "RLIMIT_FSIZE"},   {RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"},
                {RLIMIT_RTPRIO, "RLIMIT_RTPRIO"}, {RLIMIT_NICE, "RLIMIT_NICE"}};
  for (const auto& l : limits) {
    rlimit cur{};
    getrlimit(l.res, &cur);
    if (cur.rlim_max == RLIM_INFINITY) continue;  // nothing above it to reach
    rlimit raised{cur.rlim_max + 1, cur.rlim_max + 1};
    std::string above =
        std::string(l.name) + " above the hard limit " + std::to_string(cur.rlim_max);
    KILN_TRY(v, "setrlimit(" + above + ")", setrlimit(l.res, &raised));
    KILN_TRY(v, "prlimit(self, " + above + ")",
             prlimit(0, static_cast<__rlimit_resource>(l.res), &raised, nullptr));
    rlimit after{};
    getrlimit(l.res, &after);
    if (after.rlim_max > cur.rlim_max) v.Escaped(std::string(l.name) + " hard limit rose");
  }
  rlimit big{1 << 20, 1 << 20};
  KILN_TRY(v, "prlimit(init, RLIMIT_NOFILE)", prlimit(1, RLIMIT_NOFILE, &big, nullptr));
}

void Capset(const Args&, Verdict& v) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct all[2];
  for (auto& d : all) d.effective = d.permitted = d.inheritable = ~0u;
  KILN_TRY(v, "capset(every capability)", syscall(SYS_capset, &hdr, all));
  KILN_TRY(v, "prctl(PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN)",
           prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0));
  KILN_TRY(v, "prctl(PR_SET_SECUREBITS, 0)", prctl(PR_SET_SECUREBITS, 0, 0, 0, 0));
  KILN_TRY(v, "prctl(PR_SET_KEEPCAPS, 1)", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
  KILN_TRY(v, "prctl(PR_SET_NO_NEW_PRIVS, 0)", prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0));
  if (getuid() != 0) KILN_TRY(v, "setresuid(0, 0, 0)", setresuid(0, 0, 0));
  if (getgid() != 0) KILN_TRY(v, "setresgid(0, 0, 0)", setresgid(0, 0, 0));
  gid_t none[1] = {0};
  KILN_TRY(v, "setgroups({0})", setgroups(1, none));
  std::string status;
  ReadSome("/proc/self/status", &status, 1 << 16);
  for (const char* key : {"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"}) {
    size_t at = status.find(key);
    if (at == std::string::npos) continue;
    unsigned long long caps = std::strtoull(status.c_str() + at + std::strlen(key), nullptr, 16);
    if (caps != 0) v.Escaped(std::string(key) + " is " + std::to_string(caps));
  }
}

void Hostname(const Args&, Verdict& v) {
  utsname before{};
  uname(&before);
  KILN_TRY(v, "sethostname(kiln-escaped)", sethostname("kiln-escaped", 12));
  KILN_TRY(v, "setdomainname(kiln-escaped)", setdomainname("kiln-escaped", 12));
  utsname after{};
  uname(&after);
  if (std::strcmp(before.nodename, after.nodename) != 0)
    v.Escaped(std::string("hostname is now ") + after.nodename);
}

// --- terminal injection (CVE-2017-5226) ----------------------------------

// Pushes text into the terminal's input queue, as if typed by the user of
// the session the terminal belongs to. Returns the errno of the first
// failure, 0 when every character went in.
int Inject(int fd, const std::string& text) {
  for (char c : text) {
    if (ioctl(fd, TIOCSTI, &c) != 0) return errno;
  }
  return 0;
}

void Tiocsti(const Args& args, Verdict& v) {
  const std::string text = (args.empty() ? std::string("id") : args[0]) + "\n";
  int ttys = 0;
  for (int fd : {0, 1, 2}) {
    if (!isatty(fd)) continue;
    ++ttys;
    std::string on = "TIOCSTI(fd " + std::to_string(fd) + ")";
    if (int err = Inject(fd, text); err != 0) {
      v.Blocked(on, err);
    } else {
      v.Escaped(on + " injected input into the host's terminal");
    }
  }
  if (ttys == 0) return v.Error("no terminal on fds 0-2 to attack");
  // Make the terminal ours first, then inject.
  for (int steal : {0, 1}) {
    std::string step = "ioctl(fd 0, TIOCSCTTY, " + std::to_string(steal) + ")";
    errno = 0;
    if (ioctl(0, TIOCSCTTY, steal) != 0) {
      v.Blocked(step, errno);
    } else {
      v.Escaped(step + " made the host's terminal ours");
      if (Inject(0, text) == 0) v.Escaped("TIOCSTI after TIOCSCTTY injected input");
    }
  }
  int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (tty < 0) {
    v.Blocked("open(/dev/tty)", errno);
  } else {
    if (Inject(tty, text) == 0) v.Escaped("TIOCSTI on /dev/tty injected input");
    close(tty);
  }
  char paste = 3;  // TIOCL_PASTESEL: the console selection as input
  KILN_TRY(v, "ioctl(fd 0, TIOCLINUX, TIOCL_PASTESEL)", ioctl(0, TIOCLINUX, &paste));
}

// --- bombs ---------------------------------------------------------------

struct BombStats {
  std::atomic<unsigned long> forks{0}, failures{0};
  std::atomic<int> last_errno{0};
};

[[noreturn]] void Bomb(BombStats* stats) {
  for (;;) {
    pid_t pid = fork();
    if (pid == 0) continue;  // the child bombs too
    if (pid > 0) {
      stats->forks.fetch_add(1, std::memory_order_relaxed);
    } else {
      stats->failures.fetch_add(1, std::memory_order_relaxed);
      stats->last_errno.store(errno, std::memory_order_relaxed);
      sched_yield();
    }
  }
}

void ForkBomb(const Args& args, Verdict& v) {
  long ms = ArgNumber(args, 0, "duration in ms");
  auto* stats = static_cast<BombStats*>(
      mmap(nullptr, sizeof(BombStats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (stats == MAP_FAILED) return v.Error(Errno("mmap", errno));
  new (stats) BombStats;
  std::fflush(nullptr);
  pid_t bomber = fork();
  if (bomber < 0) return v.Error(Errno("fork", errno));
  if (bomber == 0) Bomb(stats);
  usleep(static_cast<useconds_t>(ms) * 1000);
  unsigned long forks = stats->forks.load(), failures = stats->failures.load();
  std::string what =
      std::to_string(forks) + " forks, then " + std::to_string(failures) + " refusals";
  if (failures > 0) {
    v.Blocked("fork bomb: " + what, stats->last_errno.load());
  } else {
    v.Escaped("fork bomb: " + what + ": no limit was reached in " + std::to_string(ms) + " ms");
  }
  // Leaving ends the sandbox: init kills whatever is left of the bomb.
}

void MemoryBomb(const Args& args, Verdict& v) {
  long target_mib = ArgNumber(args, 0, "MiB to allocate");
  int p[2];
  if (pipe(p) != 0) return v.Error(Errno("pipe", errno));
  std::fflush(nullptr);
  pid_t worker = fork();
  if (worker < 0) return v.Error(Errno("fork", errno));
  if (worker == 0) {
    close(p[0]);
    for (long i = 0; i < target_mib; ++i) {
      void* m = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) _exit(3);
      std::memset(m, 0x6b, 1 << 20);  // touch every page: charge it
      (void)!write(p[1], "m", 1);
    }
    _exit(0);
  }
  close(p[1]);
  long mib = static_cast<long>(ReadFd(p[0], static_cast<size_t>(target_mib) + 1).size());
  close(p[0]);
  int st = 0;
  waitpid(worker, &st, 0);
  std::string what =
      "memory bomb: worker " +
      std::string(WIFSIGNALED(st) ? "killed by signal " + std::to_string(WTERMSIG(st))
                                  : "exited " + std::to_string(WEXITSTATUS(st))) +
      " after " + std::to_string(mib) + " MiB";
  if (mib >= target_mib) {
    v.Escaped(what + " (all it asked for)");
  } else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
    v.Blocked(what, "OOM-killed");
  } else if (WIFEXITED(st) && WEXITSTATUS(st) == 3) {
    v.Blocked(what, "mmap refused");
  } else {
    v.Error(what);
  }
}

}  // namespace

void AddProcAttacks(std::vector<Attack>& out) {
  out.insert(out.end(), {
                            {"unshare", Unshare},
                            {"userns", Userns},
                            {"setns", Setns},
                            {"ptrace", Ptrace},
                            {"kill", Kill},
                            {"init-proc", InitProc},
                            {"sysrq", Sysrq},
                            {"proc-sys", ProcSys},
                            {"rlimit", Rlimit},
                            {"capset", Capset},
                            {"hostname", Hostname},
                            {"tiocsti", Tiocsti},
                            {"fork-bomb", ForkBomb},
                            {"memory-bomb", MemoryBomb},
                        });
}

}  // namespace kiln::attack
