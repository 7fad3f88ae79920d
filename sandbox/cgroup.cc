#include "sandbox/cgroup.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <sstream>
#include <thread>

#include "base/fd.h"
#include "base/strings.h"

namespace kiln::sandbox::cgroup {

namespace {
constexpr long kCgroup2SuperMagic = 0x63677270;
constexpr long kCgroupSuperMagic = 0x27e0eb;

bool IsFs(const std::string& path, long magic) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 && st.f_type == magic;
}
}  // namespace

Result<Version> Detect(const std::string& root) {
  if (IsFs(root, kCgroup2SuperMagic)) return Version::kV2;
  for (const char* ctrl : {"memory", "pids", "cpu"}) {
    if (!IsFs(root + "/" + ctrl, kCgroupSuperMagic)) {
      return Error::Unsupported("no cgroup found: " + Quote(root) + " is not cgroup2 and " +
                                Quote(root + "/" + ctrl) +
                                " is not a cgroup v1 hierarchy (is cgroupfs mounted?)");
    }
  }
  return Version::kV1;
}

Result<std::unique_ptr<Cgroup>> Create(Version version, const std::string& name,
                                       const Limits& limits, const Options& options) {
  if (version == Version::kV2) return CreateV2(name, limits, options);
  return CreateV1(name, limits, options);
}

Result<std::vector<pid_t>> ReadProcs(const std::string& dir) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(dir + "/cgroup.procs"));
  std::vector<pid_t> pids;
  std::istringstream in(text);
  pid_t pid;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

Status KillProcs(const std::string& dir) {
  using namespace std::chrono;
  auto deadline = steady_clock::now() + seconds(10);
  for (;;) {
    auto procs = ReadProcs(dir);
    if (!procs) {
      if (procs.error().code() == Error::Code::kNotFound) return Ok();
      return procs.error();
    }
    if (procs->empty()) return Ok();
    for (pid_t pid : *procs) ::kill(pid, SIGKILL);
    if (steady_clock::now() > deadline) {
      return Error(Error::Code::kTimeout, "processes in " + Quote(dir) +
                                              " survived SIGKILL for 10 s (" +
                                              std::to_string(procs->size()) + " left)");
    }
    std::this_thread::sleep_for(milliseconds(2));
  }
}

Status RemoveDir(const std::string& dir) {
  using namespace std::chrono;
  auto deadline = steady_clock::now() + seconds(5);
  for (;;) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Ok();
    if (errno != EBUSY || steady_clock::now() > deadline) {
      return Error::Sys("rmdir(" + Quote(dir) + ")", errno);
    }
    std::this_thread::sleep_for(milliseconds(2));
  }
}

std::optional<uint64_t> ReadKeyed(const std::string& file, const std::string& key) {
  auto text = ReadFile(file);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string k;
  uint64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::optional<uint64_t> ReadNumber(const std::string& file) {
  auto text = ReadFile(file);
  if (!text) return std::nullopt;
  auto v = ParseUint(Trim(*text), file);
  if (!v) return std::nullopt;
  return *v;
}

Status Cgroup::Destroy() {
  if (destroyed_) return Ok();
  bool busy = false;
  for (const std::string& dir : paths()) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) continue;
    if (errno != EBUSY) return Error::Sys("rmdir(" + Quote(dir) + ")", errno);
    busy = true;
  }
  if (busy) {
    KILN_TRY(KillAll());
    for (const std::string& dir : paths()) KILN_TRY(RemoveDir(dir));
  }
  destroyed_ = true;
  return Ok();
}

Status RemoveLeftover(const std::vector<std::string>& paths) {
  for (const std::string& dir : paths) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) continue;
    KILN_TRY(KillProcs(dir));
    KILN_TRY(RemoveDir(dir));
  }
  return Ok();
}

}  // namespace kiln::sandbox::cgroup
