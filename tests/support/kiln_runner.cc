#include "tests/support/kiln_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace kiln::testing {

namespace fs = std::filesystem;

std::string KilnBinary() { return KILN_BINARY; }
std::string HelperDir() { return KILN_HELPER_DIR; }

const std::string& TestStateDir() {
  static const std::string& dir = *new std::string([] {
    std::string d = "/tmp/kiln-test-state-" + std::to_string(getpid());
    fs::create_directories(d);
    ::chmod(d.c_str(), 0755);
    return d;
  }());
  return dir;
}

namespace {
// State directories made for unprivileged runs, one per uid.
// Never destroyed: the exit handler below reads it after static destructors
// may have run.
std::set<std::string>& UidStateDirs() {
  static auto* dirs = new std::set<std::string>;
  return *dirs;
}

// The per-process cgroup parents and state directory are the test's own;
// remove them when the test binary exits (they are empty by then, or a test
// has already failed on what was left).
void RemoveTestScaffolding() {
  std::error_code ec;
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    ::rmdir((h.path() / TestCgroupParent()).c_str());
  }
  fs::remove_all(TestStateDir(), ec);
  for (const std::string& dir : UidStateDirs()) fs::remove_all(dir, ec);
}
}  // namespace

const std::string& TestCgroupParent() {
  static const std::string& parent = *new std::string([] {
    std::atexit(RemoveTestScaffolding);
    return "kiln-test-" + std::to_string(getpid());
  }());
  return parent;
}

Daemon::Daemon(const std::string& config, const std::string& log, const std::string& log_format) {
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl(KilnBinary().c_str(), "kiln", "--log-format", log_format.c_str(), "serve", "--config",
            config.c_str(), nullptr);
    _exit(127);
  }
}

int Daemon::Stop(int sig) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  return st;
}

Outcome Run(const std::vector<std::string>& argv, const RunOptions& options) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (int fd : options.keep_fds) fcntl(fd, F_SETFD, 0);
    if (options.as_gid && setresgid(*options.as_gid, *options.as_gid, *options.as_gid) != 0)
      _exit(121);
    if (options.as_uid) {
      if (setgroups(0, nullptr) != 0 ||
          setresuid(*options.as_uid, *options.as_uid, *options.as_uid) != 0)
        _exit(122);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(123);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (!options.stdin_data.empty()) {
    (void)!write(in[1], options.stdin_data.data(), options.stdin_data.size());
  }
  close(in[1]);
  Outcome o;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_seconds);
  bool out_open = true, err_open = true, killed = false;
  while (out_open || err_open) {
    pollfd fds[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    int n = poll(fds, 2, 200);
    if (!killed && std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      killed = true;
    }
    if (n <= 0) continue;
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (!fds[i].revents) continue;
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? o.out : o.err).append(buf, static_cast<size_t>(r));
      }
    }
  }
  close(out[0]);
  close(err[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  o.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  if (killed)
    o.err +=
        "\n[test harness: kiln killed after " + std::to_string(options.timeout_seconds) + " s]";
  return o;
}

Outcome Sandbox(const std::vector<std::string>& sandbox_args,
                const std::vector<std::string>& command, const RunOptions& options) {
  std::vector<std::string> argv = {KilnBinary(), "sandbox", "run"};
  if (options.as_uid) {
    // An unprivileged kiln keeps its state in a directory it owns.
    std::string dir = TestStateDir() + "-u" + std::to_string(*options.as_uid);
    UidStateDirs().insert(dir);
    fs::create_directories(dir);
    (void)!::chown(dir.c_str(), *options.as_uid, options.as_gid.value_or(*options.as_uid));
    argv.insert(argv.end(), {"--state-dir", dir});
  } else {
    argv.insert(argv.end(), {"--state-dir", TestStateDir(), "--cgroup-parent", TestCgroupParent()});
  }
  argv.insert(argv.end(), sandbox_args.begin(), sandbox_args.end());
  argv.push_back("--");
  argv.insert(argv.end(), command.begin(), command.end());
  return Run(argv, options);
}

HostState Snapshot() {
  HostState s;
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);) {
    std::istringstream in(line);
    std::string f[10];
    for (int i = 0; i < 5; ++i) in >> f[i];
    std::string tok, fstype;
    while (in >> tok && tok != "-") {
    }
    in >> fstype;
    // Other test processes (the controller's and the workspace tests) mount
    // under their own /tmp/kiln-* directories while this one runs; only
    // this process's state directory is ours to check there.
    const std::string& point = f[4];
    if (point.rfind("/tmp/kiln-", 0) == 0 && point.rfind(TestStateDir() + "/", 0) != 0) continue;
    s.mounts.insert(point + " " + fstype);
  }
  std::error_code ec;
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    fs::path parent = h.path() / TestCgroupParent();
    for (const auto& c : fs::directory_iterator(parent, ec)) {
      if (c.is_directory()) s.cgroups.insert(c.path().string());
    }
  }
  // Records; .spare holds the files of removed ones, for reuse (state.h).
  for (const auto& r : fs::directory_iterator(TestStateDir() + "/run", ec)) {
    if (r.path().filename() != ".spare") s.run_dirs.insert(r.path().string());
  }
  return s;
}

std::string Diff(const HostState& before, const HostState& after) {
  std::ostringstream d;
  auto cmp = [&](const char* what, const std::set<std::string>& a, const std::set<std::string>& b) {
    for (const auto& x : b) {
      if (!a.count(x)) d << "new " << what << ": " << x << "\n";
    }
    for (const auto& x : a) {
      if (!b.count(x)) d << "gone " << what << ": " << x << "\n";
    }
  };
  cmp("mount", before.mounts, after.mounts);
  cmp("cgroup", before.cgroups, after.cgroups);
  cmp("state dir", before.run_dirs, after.run_dirs);
  return d.str();
}

std::vector<pid_t> ProcessesMatching(const std::string& marker) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = ReadAll(e.path().string() + "/cmdline");
    for (char& c : cmd) {
      if (c == '\0') c = ' ';
    }
    if (cmd.find(marker) != std::string::npos) out.push_back(std::stoi(name));
  }
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

void WriteAll(const std::string& path, const std::string& data, int mode) {
  std::ofstream(path, std::ios::binary) << data;
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

}  // namespace kiln::testing
