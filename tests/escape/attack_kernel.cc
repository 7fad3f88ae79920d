// Kernel-surface attacks: interfaces that are not namespaced (keyrings,
// BPF, perf, modules, the clock, reboot), interfaces with a long history of
// exploitable bugs (io_uring, userfaultfd), the other system call ABIs (x32,
// i386) and the seccomp filter itself.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "tests/escape/attack.h"

namespace kiln::attack {

namespace {

constexpr long kX32Bit = 0x40000000;

void Keyctl(const Args&, Verdict& v) {
  // Keyrings are not namespaced: keys live per host uid, across sandboxes.
  KILN_TRY(v, "add_key(user, kiln-escape, @u)",
           syscall(SYS_add_key, "user", "kiln-escape", "payload", 7, KEY_SPEC_USER_KEYRING));
  KILN_TRY(v, "keyctl(KEYCTL_JOIN_SESSION_KEYRING, kiln-escape)",
           syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "kiln-escape"));
  KILN_TRY(v, "keyctl(KEYCTL_GET_KEYRING_ID, @u, create)",
           syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 1));
  KILN_TRY(v, "request_key(user, kiln-escape)",
           syscall(SYS_request_key, "user", "kiln-escape", nullptr, KEY_SPEC_USER_KEYRING));
}

void Bpf(const Args&, Verdict& v) {
  bpf_attr map{};
  map.map_type = BPF_MAP_TYPE_ARRAY;
  map.key_size = 4;
  map.value_size = 4;
  map.max_entries = 1;
  KILN_TRY(v, "bpf(BPF_MAP_CREATE)", syscall(SYS_bpf, BPF_MAP_CREATE, &map, sizeof map));
  // r0 = 0; exit
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[1].code = BPF_JMP | BPF_EXIT;
  char license[] = "GPL";
  bpf_attr prog{};
  prog.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  prog.insns = reinterpret_cast<uint64_t>(insns);
  prog.insn_cnt = 2;
  prog.license = reinterpret_cast<uint64_t>(license);
  KILN_TRY(v, "bpf(BPF_PROG_LOAD, socket filter)",
           syscall(SYS_bpf, BPF_PROG_LOAD, &prog, sizeof prog));
  // Walking the host's loaded programs.
  bpf_attr next{};
  KILN_TRY(v, "bpf(BPF_PROG_GET_NEXT_ID)",
           syscall(SYS_bpf, BPF_PROG_GET_NEXT_ID, &next, sizeof next));
}

void Perf(const Args&, Verdict& v) {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  KILN_TRY(v, "perf_event_open(cpu-clock, self)",
           syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
  KILN_TRY(v, "perf_event_open(cpu-clock, every process on cpu 0)",
           syscall(SYS_perf_event_open, &attr, -1, 0, -1, 0));
  attr.type = PERF_TYPE_HARDWARE;
  attr.config = PERF_COUNT_HW_CPU_CYCLES;
  KILN_TRY(v, "perf_event_open(cycles, self)", syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}

void IoUring(const Args&, Verdict& v) {
  io_uring_params params{};
  KILN_TRY(v, "io_uring_setup(8)", syscall(SYS_io_uring_setup, 8, &params));
  // With no ring, EBADF would mean the call itself is let through.
  KILN_TRY_ERRNO(v, "io_uring_enter(-1)", syscall(SYS_io_uring_enter, -1, 0, 0, 0, nullptr, 0),
                 EPERM);
  KILN_TRY_ERRNO(v, "io_uring_register(-1)", syscall(SYS_io_uring_register, -1, 0, nullptr, 0),
                 EPERM);
}

void Userfaultfd(const Args&, Verdict& v) {
  constexpr int kUserModeOnly = 1;  // UFFD_USER_MODE_ONLY
  KILN_TRY(v, "userfaultfd(O_CLOEXEC)", syscall(SYS_userfaultfd, O_CLOEXEC));
  KILN_TRY(v, "userfaultfd(UFFD_USER_MODE_ONLY)",
           syscall(SYS_userfaultfd, O_CLOEXEC | kUserModeOnly));
  KILN_TRY(v, "open(/dev/userfaultfd)", open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
}

void X32(const Args&, Verdict& v) {
  // The x32 ABI shares the x86_64 entry point, marked by bit 30 of the
  // number. The filter must refuse it (EPERM) before the kernel sees it.
  KILN_TRY_ERRNO(v, "x32 getpid", syscall(kX32Bit | SYS_getpid), EPERM);
  KILN_TRY_ERRNO(v, "x32 unshare(CLONE_NEWUSER)", syscall(kX32Bit | SYS_unshare, CLONE_NEWUSER),
                 EPERM);
  KILN_TRY_ERRNO(v, "x32 mount", syscall(kX32Bit | SYS_mount, "none", "/tmp", "tmpfs", 0, nullptr),
                 EPERM);
  KILN_TRY_ERRNO(v, "x32 ptrace (x32 number 521)", syscall(kX32Bit | 521, PTRACE_ATTACH, 1, 0, 0),
                 EPERM);
}

// A system call through the i386 ABI from 64-bit code.
long Int80(long nr, long a = 0, long b = 0, long c = 0) {
  long ret;
  asm volatile("int $0x80"
               : "=a"(ret)
               : "a"(nr), "b"(a), "c"(b), "d"(c)
               : "memory", "r8", "r9", "r10", "r11");
  return ret;
}

void I386Call(const std::string& step, long ret, bool pid_like, Verdict& v) {
  if (ret == -EPERM) return v.Blocked(step, EPERM);
  if (pid_like && ret > 0) return v.Escaped(step + " ran (returned " + std::to_string(ret) + ")");
  if (ret < 0 && ret > -4096)
    return v.Escaped(step + " got past the filter: " + std::strerror(static_cast<int>(-ret)));
  v.Escaped(step + " returned " + std::to_string(ret));
}

void I386(const Args&, Verdict& v) {
  I386Call("int 0x80 getpid (i386 20)", Int80(20), true, v);
  I386Call("int 0x80 unshare(CLONE_NEWUSER) (i386 310)", Int80(310, CLONE_NEWUSER), false, v);
  I386Call("int 0x80 mount (i386 21)", Int80(21, 0, 0, 0), false, v);
  I386Call("int 0x80 ptrace(PTRACE_ATTACH, 1) (i386 26)", Int80(26, PTRACE_ATTACH, 1), false, v);
  I386Call("int 0x80 socketcall(socket, AF_PACKET) (i386 102)", Int80(102, 1, 0), false, v);
}

void Modules(const Args&, Verdict& v) {
  // Each call is refused before its arguments are looked at; any other error
  // means it got past the permission check.
  static char image[64] =
      "\x7f"
      "ELF not a module";
  KILN_TRY_ERRNO(v, "init_module", syscall(SYS_init_module, image, sizeof image, ""), EPERM);
  int fd = open("/attack/kiln-attack", O_RDONLY | O_CLOEXEC);
  KILN_TRY_ERRNO(v, "finit_module(/attack/kiln-attack)", syscall(SYS_finit_module, fd, "", 0),
                 EPERM);
  if (fd >= 0) close(fd);
  KILN_TRY_ERRNO(v, "delete_module(kiln_escape_absent)",
                 syscall(SYS_delete_module, "kiln_escape_absent", O_NONBLOCK), EPERM);
}

void Reboot(const Args&, Verdict& v) {
  // CAD_OFF only changes what Ctrl-Alt-Del does, and is refused in a child
  // pid namespace anyway: safe to try for real.
  KILN_TRY_ERRNO(v, "reboot(LINUX_REBOOT_CMD_CAD_OFF)",
                 syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                         LINUX_REBOOT_CMD_CAD_OFF, nullptr),
                 EPERM);
  KILN_TRY_ERRNO(v, "kexec_load(no segments)", syscall(SYS_kexec_load, 0, 0, nullptr, 0), EPERM);
  KILN_TRY_ERRNO(v, "kexec_file_load(unload)",
                 syscall(SYS_kexec_file_load, -1, -1, 0, nullptr, 2 /*UNLOAD*/), EPERM);
}

void Clock(const Args&, Verdict& v) {
  // Setting the clock to what it already says: harmless if it got through.
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  KILN_TRY(v, "clock_settime(CLOCK_REALTIME, now)", clock_settime(CLOCK_REALTIME, &now));
  timeval tv{};
  gettimeofday(&tv, nullptr);
  KILN_TRY(v, "settimeofday(now)", settimeofday(&tv, nullptr));
  timex tx{};
  tx.modes = ADJ_TICK;
  tx.tick = 10000;  // the default tick at USER_HZ 100
  KILN_TRY(v, "clock_adjtime(CLOCK_REALTIME, ADJ_TICK)",
           syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx));
  KILN_TRY(v, "adjtimex(ADJ_TICK)", adjtimex(&tx));
}

// --- the seccomp filter itself -------------------------------------------

void UnshareInChild(void*) {
  long rc = syscall(SYS_unshare, CLONE_NEWUSER);
  std::printf("%ld %d\n", rc, rc == 0 ? 0 : errno);
}

void SeccompListener(const Args&, Verdict& v) {
  // A second filter whose listener is ours: if the kernel let it sit beside
  // kiln's (whose denials also go to a listener), our "continue" answer
  // would let a call run that kiln's filter denies.
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  errno = 0;
  long listener =
      syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  int err = errno;
  if (listener < 0) {
    v.Blocked("seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)", err);
  } else {
    std::fflush(nullptr);
    int p[2];
    (void)!pipe(p);
    pid_t child = fork();
    if (child == 0) {
      close(p[0]);
      dup2(p[1], 1);
      UnshareInChild(nullptr);
      std::fflush(nullptr);
      _exit(0);
    }
    close(p[1]);
    seccomp_notif req{};
    seccomp_notif_resp resp{};
    if (ioctl(static_cast<int>(listener), SECCOMP_IOCTL_NOTIF_RECV, &req) == 0) {
      resp.id = req.id;
      resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      ioctl(static_cast<int>(listener), SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    std::string out = ReadFd(p[0]);
    waitpid(child, nullptr, 0);
    long rc = -1;
    int child_err = 0;
    std::sscanf(out.c_str(), "%ld %d", &rc, &child_err);
    if (rc == 0) {
      v.Escaped("our own listener let unshare(CLONE_NEWUSER) through kiln's filter");
    } else {
      v.Blocked("installed a second listener, but unshare(CLONE_NEWUSER)", child_err);
    }
  }
  // An allow-everything filter on top changes nothing: the strictest wins.
  sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  sock_fprog allow_prog{1, allow};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &allow_prog) == 0) {
    KILN_TRY(v, "unshare(CLONE_NEWUSER) under an allow-all filter",
             syscall(SYS_unshare, CLONE_NEWUSER));
  }
  // Nor does asking for the strict mode's opposite: there is no way back.
  KILN_TRY(v, "prctl(PR_SET_SECCOMP, SECCOMP_MODE_DISABLED)",
           syscall(SYS_prctl, 22 /*PR_SET_SECCOMP*/, 0, 0, 0, 0));
}

// --- flooding the supervisor with denials --------------------------------

struct FloodStats {
  std::atomic<unsigned long> calls{0}, not_eperm{0};
};

// One made-up system call number through the given ABI; the kernel's (or the
// filter's) answer as -errno.
long MadeUpCall(bool i386, long nr) {
  if (i386) return Int80(nr);
  return syscall(kX32Bit | nr) < 0 ? -errno : 0;
}

void DenialFlood(const Args& args, Verdict& v) {
  // Every denial is answered by the supervisor, outside the sandbox's
  // cgroup: distinct made-up numbers must not grow what it keeps. Both other
  // ABIs reach it with numbers of the caller's choosing: x32 on any x86_64
  // kernel (the filter refuses the x32 bit before the kernel looks), i386
  // where the kernel has IA32 emulation.
  if (args.empty() || (args[0] != "x32" && args[0] != "i386")) {
    return v.Error("usage: denial-flood x32|i386 MS [WORKERS]");
  }
  const bool i386 = args[0] == "i386";
  long ms = ArgNumber(args, 1, "duration in ms");
  long workers = args.size() > 2 ? ArgNumber(args, 2, "workers") : 1;
  auto* stats = static_cast<FloodStats*>(
      mmap(nullptr, sizeof(FloodStats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (stats == MAP_FAILED) return v.Error(Errno("mmap", errno));
  new (stats) FloodStats;
  std::fflush(nullptr);
  std::vector<pid_t> pids;
  for (long w = 0; w < workers; ++w) {
    pid_t pid = fork();
    if (pid == 0) {
      for (long nr = 0x10000000 + w * 0x01000000;; ++nr) {
        long ret = MadeUpCall(i386, nr);
        stats->calls.fetch_add(1, std::memory_order_relaxed);
        if (ret != -EPERM) stats->not_eperm.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (pid > 0) pids.push_back(pid);
  }
  usleep(static_cast<useconds_t>(ms) * 1000);
  for (pid_t pid : pids) kill(pid, SIGKILL);
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  std::string what =
      std::to_string(stats->calls.load()) + " distinct " + args[0] + " system call numbers";
  if (stats->not_eperm.load() != 0) {
    v.Escaped(what + ": " + std::to_string(stats->not_eperm.load()) + " were not answered EPERM");
  } else {
    v.Blocked(what, EPERM);
  }
}

}  // namespace

void AddKernelAttacks(std::vector<Attack>& out) {
  out.insert(out.end(), {
                            {"keyctl", Keyctl},
                            {"bpf", Bpf},
                            {"perf", Perf},
                            {"io-uring", IoUring},
                            {"userfaultfd", Userfaultfd},
                            {"x32", X32},
                            {"i386", I386},
                            {"modules", Modules},
                            {"reboot", Reboot},
                            {"clock", Clock},
                            {"seccomp-listener", SeccompListener},
                            {"denial-flood", DenialFlood},
                        });
}

}  // namespace kiln::attack
