#include "tests/escape/escape_support.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "base/digest.h"

namespace kiln::testing::escape {

namespace fs = std::filesystem;

namespace {

// Host-global knobs an attack tries to change (or that a successful attack
// would have to change to get out).
const std::vector<std::string>& Knobs() {
  static const std::vector<std::string> kKnobs = [] {
    std::vector<std::string> k = {
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/modprobe",
        "/proc/sys/kernel/hostname",
        "/proc/sys/kernel/domainname",
        "/proc/sys/kernel/randomize_va_space",
        "/proc/sys/kernel/ctrl-alt-del",
        "/proc/sys/kernel/sysrq",
        "/proc/sys/fs/suid_dumpable",
        "/proc/sys/net/ipv4/ip_forward",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/kernel/uevent_helper",
        "/sys/class/net/lo/mtu",
        "/sys/module/kernel/parameters/panic",
    };
    // CVE-2022-0492: every v1 hierarchy's release agent.
    std::error_code ec;
    for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      for (const char* f : {"release_agent", "notify_on_release"}) {
        if (fs::exists(h.path() / f, ec)) k.push_back((h.path() / f).string());
      }
    }
    return k;
  }();
  return kKnobs;
}

// Host uids of sandboxes (root-started ones map to kInsideRootOnHost+) that
// own kernel keys: a keyring an attack managed to create.
std::string SandboxKeyUsers() {
  std::istringstream in(ReadAll("/proc/key-users"));
  std::string out;
  for (std::string line; std::getline(in, line);) {
    unsigned long uid = std::strtoul(line.c_str(), nullptr, 10);
    if (uid >= kInsideRootOnHost) out += std::to_string(uid) + " ";
  }
  return out;
}

// Removes what the test runner leaves per process (its state directories
// and cgroup parents), once every test of this process has run.
class CleanupEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    if (geteuid() != 0) return;
    std::error_code ec;
    for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      fs::path parent = h.path() / TestCgroupParent();
      if (fs::exists(parent, ec)) ::rmdir(parent.c_str());
    }
    fs::remove_all(TestStateDir(), ec);
    fs::remove_all(TestStateDir() + "-u65534", ec);
  }
};
[[maybe_unused]] const auto* const kCleanup =
    ::testing::AddGlobalTestEnvironment(new CleanupEnvironment);

}  // namespace

std::string AttackBinary() { return HelperDir() + "/kiln-attack"; }

std::string Sha256(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  kiln::Sha256 sha;
  sha.Init();
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return kiln::Hex(sha.Final());
}

std::string FileStamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "absent";
  std::ostringstream s;
  s << "sha256 " << Sha256(path) << " mtime " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec
    << " size " << st.st_size << " mode " << std::oct << st.st_mode << std::dec << " owner "
    << st.st_uid << ":" << st.st_gid;
  return s.str();
}

HostWatch HostWatch::Capture(const std::vector<std::string>& extra_files) {
  HostWatch w;
  std::vector<std::string> files = {KilnBinary(),  AttackBinary(), "/etc/passwd",
                                    "/etc/shadow", "/etc/group",   "/etc/hostname"};
  files.insert(files.end(), extra_files.begin(), extra_files.end());
  for (const auto& f : files) w.files_[f] = FileStamp(f);
  for (const auto& k : Knobs()) {
    if (::access(k.c_str(), R_OK) == 0) w.knobs_[k] = ReadAll(k);
  }
  utsname u{};
  ::uname(&u);
  w.other_["hostname"] = u.nodename;
  w.other_["sandbox uids owning keys"] = SandboxKeyUsers();
  w.other_["/proc/modules"] = ReadAll("/proc/modules");
  return w;
}

std::string HostWatch::DiffTo(const HostWatch& after) const {
  std::ostringstream d;
  auto cmp = [&](const char* what, const std::map<std::string, std::string>& a,
                 const std::map<std::string, std::string>& b) {
    for (const auto& [k, v] : a) {
      auto it = b.find(k);
      std::string now = it == b.end() ? "(unreadable)" : it->second;
      if (now != v) d << what << " " << k << " changed: '" << v << "' -> '" << now << "'\n";
    }
  };
  cmp("host file", files_, after.files_);
  cmp("host knob", knobs_, after.knobs_);
  cmp("host", other_, after.other_);
  return d.str();
}

void HostWatch::Restore(const HostWatch& after) const {
  for (const auto& [k, v] : knobs_) {
    auto it = after.knobs_.find(k);
    if (it == after.knobs_.end() || it->second == v) continue;
    int fd = ::open(k.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) continue;
    (void)!::write(fd, v.data(), v.size());
    ::close(fd);
  }
}

HostProcess::HostProcess(std::optional<uid_t> as_uid) {
  pid_ = ::fork();
  if (pid_ == 0) {
    if (as_uid && (::setgroups(0, nullptr) != 0 || ::setresgid(*as_uid, *as_uid, *as_uid) != 0 ||
                   ::setresuid(*as_uid, *as_uid, *as_uid) != 0)) {
      _exit(122);
    }
    ::execl("/bin/sleep", "sleep", "600", nullptr);
    _exit(127);
  }
  // Until it runs sleep, it is still this test's copy.
  for (int i = 0; i < 200 && ReadAll("/proc/" + std::to_string(pid_) + "/comm") != "sleep\n"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

HostProcess::~HostProcess() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

bool HostProcess::Alive() const {
  int st;
  return ::waitpid(pid_, &st, WNOHANG) == 0 && ::kill(pid_, 0) == 0;
}

std::string HostProcess::TracerPid() const {
  std::istringstream in(ReadAll("/proc/" + std::to_string(pid_) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("TracerPid:", 0) == 0) return line.substr(line.find_first_not_of(" \t", 10));
  }
  return "?";
}

double HostSpawnSeconds() {
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid;
  char* argv[] = {const_cast<char*>("true"), nullptr};
  if (::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) != 0) return 1e9;
  ::waitpid(pid, nullptr, 0);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

uint64_t HostMemAvailable() {
  std::istringstream in(ReadAll("/proc/meminfo"));
  for (std::string key; in >> key;) {
    uint64_t kb;
    if (key == "MemAvailable:" && in >> kb) return kb * 1024;
  }
  return 0;
}

nlohmann::json ReadReport(const std::string& path) {
  std::string text = ReadAll(path);
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

std::string VerdictLine(const Outcome& o) {
  if (o.out.empty() || o.out.back() != '\n' || o.out.find('\n') != o.out.size() - 1) return "";
  return o.out.substr(0, o.out.size() - 1);
}

::testing::AssertionResult Blocked(const Outcome& o, const std::vector<std::string>& fragments,
                                   int status) {
  std::string line = VerdictLine(o);
  auto fail = [&](const std::string& why) {
    return ::testing::AssertionFailure() << why << "\nkiln status: " << o.status
                                         << "\nstdout: " << o.out << "\nstderr: " << o.err;
  };
  if (line.rfind("BLOCKED ", 0) != 0) return fail("the attack did not report BLOCKED on one line");
  if (o.status != status)
    return fail("kiln exited " + std::to_string(o.status) + ", not " + std::to_string(status));
  for (const auto& f : fragments) {
    if (line.find(f) == std::string::npos) return fail("the verdict does not mention '" + f + "'");
  }
  return ::testing::AssertionSuccess();
}

void EscapeTest::SetUp() {
  if (geteuid() != 0)
    GTEST_SKIP() << "the escape suite runs as root (rootless is tested by dropping to nobody)";
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  marker_ = std::string("kiln-escape-") + info->test_suite_name() + "-" + info->name() + "-" +
            std::to_string(getpid());
  for (char& c : marker_) {
    if (c == '/') c = '-';
  }
  before_ = Snapshot();
  watch_ = HostWatch::Capture(extra_files_);
}

void EscapeTest::TearDown() {
  if (IsSkipped()) return;
  EXPECT_EQ(Diff(before_, Snapshot()), "") << "the sandbox left something behind";
  HostWatch after = HostWatch::Capture(extra_files_);
  std::string changed = watch_.DiffTo(after);
  watch_.Restore(after);
  EXPECT_EQ(changed, "") << "the attack changed the host";
  std::vector<pid_t> left = ProcessesMatching(marker_);
  for (int i = 0; i < 100 && !left.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    left = ProcessesMatching(marker_);
  }
  EXPECT_TRUE(left.empty()) << left.size()
                            << " process(es) of the attack outlived the sandbox, e.g. pid "
                            << (left.empty() ? 0 : left[0]);
}

std::vector<std::string> EscapeTest::AttackArgv(const std::string& kiln, const std::string& name,
                                                const std::vector<std::string>& args,
                                                const std::vector<std::string>& sandbox_args,
                                                const std::optional<uid_t>& as_uid) {
  std::vector<std::string> argv = {kiln, "sandbox", "run"};
  if (as_uid) {
    // As Sandbox() does: an unprivileged kiln keeps its state where it may write.
    std::string dir = TestStateDir() + "-u" + std::to_string(*as_uid);
    fs::create_directories(dir);
    (void)!::chown(dir.c_str(), *as_uid, *as_uid);
    argv.insert(argv.end(), {"--state-dir", dir});
  } else {
    argv.insert(argv.end(), {"--state-dir", TestStateDir(), "--cgroup-parent", TestCgroupParent()});
  }
  argv.insert(argv.end(), {"--bind", HelperDir() + ":/attack:ro"});
  argv.insert(argv.end(), sandbox_args.begin(), sandbox_args.end());
  if (std::find(sandbox_args.begin(), sandbox_args.end(), "--timeout") == sandbox_args.end()) {
    argv.insert(argv.end(), {"--timeout", "60s"});
  }
  argv.insert(argv.end(), {"--", kAttackInside, name});
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("marker:" + marker_);
  return argv;
}

Outcome EscapeTest::Attack(const std::string& name, const std::vector<std::string>& args,
                           const std::vector<std::string>& sandbox_args,
                           const RunOptions& options) {
  return kiln::testing::Run(AttackArgv(KilnBinary(), name, args, sandbox_args, options.as_uid),
                            options);
}

}  // namespace kiln::testing::escape
