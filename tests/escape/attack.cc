// kiln-attack's entry point, the verdict and the helpers the families share.
#include "tests/escape/attack.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kiln::attack {

void Verdict::Blocked(const std::string& step, int err) {
  Blocked(step, std::string(std::strerror(err)));
}

void Verdict::Blocked(const std::string& step, const std::string& why) {
  std::fprintf(stderr, "kiln-attack: blocked: %s: %s\n", step.c_str(), why.c_str());
  blocked_.push_back(step + ": " + why);
}

void Verdict::Escaped(const std::string& what) {
  std::fprintf(stderr, "kiln-attack: ESCAPED: %s\n", what.c_str());
  escaped_.push_back(what);
}

void Verdict::Error(const std::string& why) {
  std::fprintf(stderr, "kiln-attack: error: %s\n", why.c_str());
  errors_.push_back(why);
}

bool Verdict::Expect(const std::string& step, long rc, int err) {
  if (rc < 0) {
    Blocked(step, err);
    return true;
  }
  Escaped(step + " succeeded (returned " + std::to_string(rc) + ")");
  return false;
}

bool Verdict::ExpectErrno(const std::string& step, long rc, int err, int blocked_errno) {
  if (rc < 0 && err == blocked_errno) {
    Blocked(step, err);
    return true;
  }
  if (rc < 0) {
    Escaped(step + " got past the permission check: " + std::strerror(err));
  } else {
    Escaped(step + " succeeded (returned " + std::to_string(rc) + ")");
  }
  return false;
}

int Verdict::Finish() const {
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : "; ") + x;
    return s;
  };
  if (!escaped_.empty()) {
    std::printf("ESCAPED %s\n", join(escaped_).c_str());
    return 1;
  }
  if (!errors_.empty() || blocked_.empty()) {
    std::printf("ERROR %s\n", errors_.empty() ? "no attempt was made" : join(errors_).c_str());
    return 2;
  }
  std::printf("BLOCKED %s\n", join(blocked_).c_str());
  return 0;
}

std::string Errno(const std::string& what, int err) { return what + ": " + std::strerror(err); }

bool ReadSome(const std::string& path, std::string* out, size_t max) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  *out = ReadFd(fd, max);
  close(fd);
  return true;
}

std::string ReadFd(int fd, size_t max) {
  std::string s;
  char buf[4096];
  while (s.size() < max) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
  }
  if (s.size() > max) s.resize(max);
  return s;
}

void WriteKnob(const std::string& path, const std::string& value, Verdict& v) {
  errno = 0;
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  int err = errno;
  if (fd < 0) return v.Blocked("open(" + path + ", O_WRONLY)", err);
  ssize_t n = write(fd, value.data(), value.size());
  err = errno;
  close(fd);
  if (n < 0) return v.Blocked("write(" + path + ")", err);
  v.Escaped("wrote '" + value + "' to " + path);
}

std::vector<int> VisiblePids() {
  std::vector<int> pids;
  DIR* d = opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0') pids.push_back(static_cast<int>(pid));
  }
  closedir(d);
  return pids;
}

long ArgNumber(const Args& args, size_t i, const char* what) {
  if (i >= args.size()) {
    std::printf("ERROR missing argument: %s\n", what);
    std::exit(2);
  }
  char* end = nullptr;
  long v = std::strtol(args[i].c_str(), &end, 0);
  if (end == args[i].c_str() || *end != '\0') {
    std::printf("ERROR bad argument for %s: %s\n", what, args[i].c_str());
    std::exit(2);
  }
  return v;
}

int InChild(void (*fn)(void* ctx), void* ctx, std::string* out) {
  int p[2] = {-1, -1};
  if (out != nullptr && pipe2(p, O_CLOEXEC) != 0) return -1;
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (out != nullptr) dup2(p[1], 1);
    fn(ctx);
    std::fflush(nullptr);
    _exit(0);
  }
  if (out != nullptr) {
    close(p[1]);
    *out = ReadFd(p[0]);
    close(p[0]);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return st;
}

}  // namespace kiln::attack

int main(int argc, char** argv) {
  using namespace kiln::attack;
  std::vector<Attack> attacks;
  AddFsAttacks(attacks);
  AddProcAttacks(attacks);
  AddKernelAttacks(attacks);
  AddNetAttacks(attacks);

  Args args;
  for (int i = 2; i < argc; ++i) {
    if (std::strncmp(argv[i], "marker:", 7) != 0) args.push_back(argv[i]);
  }
  // Stdout carries the verdict line only: make it reach the test even if a
  // child writes too, and never interleave with stderr's details.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc >= 2) {
    for (const Attack& a : attacks) {
      if (std::strcmp(a.name, argv[1]) != 0) continue;
      Verdict v;
      a.fn(args, v);
      std::fflush(stderr);
      return v.Finish();
    }
  }
  std::fprintf(stderr, "usage: kiln-attack <attack> [args...]\nattacks:");
  for (const Attack& a : attacks) std::fprintf(stderr, " %s", a.name);
  std::fprintf(stderr, "\n");
  std::printf("ERROR unknown attack %s\n", argc >= 2 ? argv[1] : "(none)");
  return 2;
}
