// kiln-proxy-forward --listen 127.0.0.1:3128 --socket /run/kiln/proxy.sock -- CMD [ARGS...]
//
// Runs inside a sandbox, whose only interface is loopback, as the parent of
// CMD: every TCP connection accepted on --listen is relayed to a new
// connection to the proxy endpoint's unix socket, byte for byte in both
// directions (half-closes included), until CMD exits. Exits with CMD's status
// (128+N when signal N killed it), 125 when it cannot start, and 127/126 when
// CMD is not found or cannot be executed, like a shell. SIGTERM, SIGINT and
// SIGHUP are passed on to CMD. Plain POSIX: one poll loop, non-blocking
// sockets, bounded buffers, every descriptor close-on-exec.
//
// It runs as the agent's own uid, in the agent's pid namespace: it makes
// itself non-dumpable (no ptrace, no /proc/<pid>/mem or /fd by that uid) and
// keeps none of the descriptors it hands to CMD (kiln-runtime's event and
// steering pipes), so that nothing the agent can reach holds what feeds the
// session log.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr int kExitCannotStart = 125;
constexpr size_t kBufferSize = 32 * 1024;  // per direction per connection
constexpr size_t kMaxConnections = 256;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "kiln-proxy-forward: %s\n", message.c_str());
  std::exit(kExitCannotStart);
}

std::string SysError(const std::string& what) { return what + ": " + std::strerror(errno); }

// Bytes read from `from`, not yet written to `to`.
struct Direction {
  int from;
  int to;
  char data[kBufferSize];
  size_t start = 0;
  size_t end = 0;
  bool eof = false;      // nothing more will come from `from`
  bool shut_to = false;  // `to` was shut down for writing after the last byte
};

struct Link {
  Link(int tcp, int unix_fd) : up{tcp, unix_fd, {}}, down{unix_fd, tcp, {}} {}
  ~Link() {
    close(up.from);
    close(up.to);
  }
  Direction up;    // client (TCP) -> proxy (unix)
  Direction down;  // proxy -> client
  bool broken = false;
  bool done() const { return broken || (up.shut_to && down.shut_to); }
};

// Moves what it can without blocking. A read error counts as the end of the
// stream (what was read is still delivered); a write error breaks the link.
void Transfer(Direction& d, bool& broken) {
  if (!d.eof && d.end < kBufferSize) {
    ssize_t n = read(d.from, d.data + d.end, kBufferSize - d.end);
    if (n > 0) d.end += static_cast<size_t>(n);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) d.eof = true;
  }
  while (d.start < d.end) {
    ssize_t n = send(d.to, d.data + d.start, d.end - d.start, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) broken = true;
      break;
    }
    d.start += static_cast<size_t>(n);
  }
  if (d.start == d.end) d.start = d.end = 0;
  if (d.eof && d.end == 0 && !d.shut_to) {
    shutdown(d.to, SHUT_WR);
    d.shut_to = true;
  }
}

short Events(const Direction& in, const Direction& out) {
  short events = 0;
  if (!in.eof && in.end < kBufferSize) events |= POLLIN;
  if (out.end > out.start) events |= POLLOUT;
  return events;
}

int Listen(const std::string& address) {
  size_t colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  char* end = nullptr;
  unsigned long port =
      colon == std::string::npos ? 0 : std::strtoul(address.c_str() + colon + 1, &end, 10);
  if (colon == std::string::npos || end == nullptr || *end != '\0' || port > 65535 ||
      colon + 1 == address.size() ||
      inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
    Die("--listen " + address + ": expected IPV4-ADDRESS:PORT, e.g. 127.0.0.1:3128");
  }
  sa.sin_port = htons(static_cast<uint16_t>(port));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) Die(SysError("socket(AF_INET)"));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    Die(SysError("bind(" + address + ")"));
  }
  if (listen(fd, 128) != 0) Die(SysError("listen(" + address + ")"));
  return fd;
}

// A blocking connect (the proxy's listener is local), then non-blocking use.
int ConnectProxy(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

void AcceptAll(int listener, const std::string& socket_path,
               std::vector<std::unique_ptr<Link>>& links) {
  static bool warned = false;
  while (links.size() < kMaxConnections) {
    int tcp = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (tcp < 0) return;  // EAGAIN, or a transient error (the next poll retries)
    // A relay passes on what it read at once: with Nagle's algorithm the
    // second small write of a response (its body after its head) waited for
    // the client's delayed ACK, 40 ms a model turn.
    int one = 1;
    setsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int proxy = ConnectProxy(socket_path);
    if (proxy < 0) {
      if (!warned)
        std::fprintf(stderr, "kiln-proxy-forward: %s\n",
                     SysError("connect(" + socket_path + ")").c_str());
      warned = true;
      close(tcp);
      continue;
    }
    links.push_back(std::make_unique<Link>(tcp, proxy));
  }
}

// The child: back to the original signal mask, then CMD. Messages like a shell's.
[[noreturn]] void Exec(char** argv, const sigset_t& mask) {
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  execvp(argv[0], argv);
  int err = errno;
  bool not_found = err == ENOENT && std::strchr(argv[0], '/') == nullptr;
  std::fprintf(stderr, "kiln-proxy-forward: %s: %s\n", argv[0],
               not_found ? "command not found" : std::strerror(err));
  _exit(err == ENOENT ? 127 : 126);
}

// What was inherited for CMD: every descriptor above stderr that is not
// close-on-exec (ours all are). Listed before the fork, closed after it, so
// that nothing can fail once CMD runs.
std::vector<int> Inherited() {
  std::vector<int> inherited;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      char* end = nullptr;
      long fd = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0' || fd <= 2 || fd == dirfd(d)) continue;
      int flags = fcntl(static_cast<int>(fd), F_GETFD);
      if (flags >= 0 && (flags & FD_CLOEXEC) == 0) inherited.push_back(static_cast<int>(fd));
    }
    closedir(d);
  } else {
    Die(SysError("opendir(/proc/self/fd)"));
  }
  return inherited;
}

int ExitCode(int status) {
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen_address;
  std::string socket_path;
  int i = 1;
  for (; i < argc && std::strcmp(argv[i], "--") != 0; i += 2) {
    if (i + 1 >= argc) Die(std::string("missing value for ") + argv[i]);
    if (std::strcmp(argv[i], "--listen") == 0) {
      listen_address = argv[i + 1];
    } else if (std::strcmp(argv[i], "--socket") == 0) {
      socket_path = argv[i + 1];
    } else {
      Die(std::string("unknown option ") + argv[i]);
    }
  }
  if (listen_address.empty() || socket_path.empty() || i + 1 >= argc) {
    Die("usage: kiln-proxy-forward --listen ADDRESS:PORT --socket PATH -- COMMAND [ARG...]");
  }
  if (socket_path.size() >= sizeof(sockaddr_un::sun_path)) Die("--socket path too long");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) Die(SysError("prctl(PR_SET_DUMPABLE)"));
  int listener = Listen(listen_address);

  sigset_t forwarded;
  sigset_t original;
  sigemptyset(&forwarded);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&forwarded, sig);
  sigprocmask(SIG_BLOCK, &forwarded, &original);
  int signals = signalfd(-1, &forwarded, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signals < 0) Die(SysError("signalfd"));
  const std::vector<int> inherited = Inherited();
  pid_t child = fork();
  if (child < 0) Die(SysError("fork"));
  if (child == 0) Exec(argv + i + 1, original);
  for (int fd : inherited) close(fd);

  std::vector<std::unique_ptr<Link>> links;
  std::vector<pollfd> fds;
  for (;;) {
    fds.assign({{signals, POLLIN, 0}, {listener, 0, 0}});
    if (links.size() < kMaxConnections) fds[1].events = POLLIN;
    for (const auto& link : links) {
      // An fd with nothing to wait for is left out (-1): a hung-up socket would
      // otherwise report POLLHUP on every round while the other side catches up.
      short tcp_events = Events(link->up, link->down);
      short proxy_events = Events(link->down, link->up);
      fds.push_back({tcp_events != 0 ? link->up.from : -1, tcp_events, 0});
      fds.push_back({proxy_events != 0 ? link->down.from : -1, proxy_events, 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) Die(SysError("poll"));

    signalfd_siginfo info;
    while (read(signals, &info, sizeof info) == sizeof info) {
      if (info.ssi_signo != SIGCHLD) {
        kill(child, static_cast<int>(info.ssi_signo));
        continue;
      }
      // Reap every child (orphans too, should this be PID 1), noting CMD's status.
      int status = 0;
      for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;) {
        if (pid == child) return ExitCode(status);
      }
    }
    for (size_t k = 0; 2 + 2 * k < fds.size(); ++k) {
      const pollfd& tcp = fds[2 + 2 * k];
      const pollfd& proxy = fds[3 + 2 * k];
      if (tcp.revents == 0 && proxy.revents == 0) continue;
      Transfer(links[k]->up, links[k]->broken);
      Transfer(links[k]->down, links[k]->broken);
    }
    std::erase_if(links, [](const auto& link) { return link->done(); });
    if (fds[1].revents & POLLIN) AcceptAll(listener, socket_path, links);
  }
}
