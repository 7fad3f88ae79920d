#include "sandbox/state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>  // rename, renameat2
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "base/fd.h"
#include "sandbox/cgroup.h"
#include "sandbox/procfs.h"

namespace kiln::sandbox::state {

namespace {

constexpr const char* kSuffix = ".json";
constexpr const char* kClaimPrefix = ".claim-";  // a record being written

std::string SpareDir(const std::string& state_dir) { return state_dir + "/run/.spare"; }

// The names in dir that do not start with a dot; only the first when first.
std::vector<std::string> ListDir(const std::string& dir, bool first = false) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      out.emplace_back(e->d_name);
      if (first) break;
    }
    ::closedir(d);
  }
  return out;
}

// Where a sandbox's cgroup may be, in either layout; missing ones are fine.
std::vector<std::string> CgroupDirs(const std::string& root, const std::string& parent,
                                    const std::string& id) {
  std::vector<std::string> dirs;
  for (const char* ctrl : {"memory", "pids", "cpu", "unified", ""}) {
    std::string base = *ctrl ? root + "/" + ctrl : root;
    dirs.push_back(base + "/" + parent + "/" + id);
  }
  return dirs;
}

// Renames from to to unless to exists. File systems without RENAME_NOREPLACE
// (NFS, some FUSE) get link and unlink, which fails as surely on an existing
// name.
Status PutInPlace(const std::string& from, const std::string& to, const std::string& id) {
  int rc = ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE);
  if (rc != 0 && (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP)) {
    rc = ::link(from.c_str(), to.c_str());
    if (rc == 0) ::unlink(from.c_str());
  }
  if (rc == 0) return Ok();
  if (errno == EEXIST) return Error::Invalid("sandbox id " + Quote(id) + " is already in use");
  return Error::Sys("rename(" + Quote(from) + ", " + Quote(to) + ")", errno);
}

}  // namespace

std::string DefaultDir() {
  if (::geteuid() == 0) return "/var/lib/kiln";
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/kiln";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/tmp") + "/.local/state/kiln";
}

Status Prepare(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Error(Error::Code::kIO, "creating state directory " + Quote(dir) + ": " + ec.message());
  }
  for (const std::string& sub : {dir + "/run", SpareDir(dir), MountPoint(dir)}) {
    if (::mkdir(sub.c_str(), 0700) != 0 && errno != EEXIST) {
      return Error::Sys("mkdir(" + Quote(sub) + ")", errno);
    }
  }
  return Ok();
}

std::string MountPoint(const std::string& state_dir) { return state_dir + "/mnt"; }

std::string RecordPath(const std::string& state_dir, const std::string& id) {
  return state_dir + "/run/" + id + kSuffix;
}

uint64_t ProcessStartTime(pid_t pid) {
  std::string p = std::to_string(pid);
  return procfs::IsZombie(p) ? 0 : procfs::StatField(p, 22);
}

Status Create(const std::string& state_dir, const Record& r) {
  nlohmann::json j = {{"id", r.id},
                      {"supervisor_pid", r.supervisor_pid},
                      {"supervisor_start", r.supervisor_start},
                      {"cgroup_root", r.cgroup_root},
                      {"cgroup_parent", r.cgroup_parent}};
  const std::string path = RecordPath(state_dir, r.id);
  // Written under a name of this process's own, then put in place without
  // replacing another record: a record is never seen half-written, and
  // putting it in place claims the id.
  const std::string claim =
      state_dir + "/run/" + kClaimPrefix + r.id + "." + std::to_string(::getpid());
  UniqueFd fd;
  // A spare (another sandbox may take it first; then a new file is made).
  for (const std::string& spare : ListDir(SpareDir(state_dir), true)) {
    if (::rename((SpareDir(state_dir) + "/" + spare).c_str(), claim.c_str()) == 0) {
      fd = UniqueFd(::open(claim.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
      // A claim is young by its mtime (gc); the spare's is old.
      if (fd.valid()) ::futimens(fd.get(), nullptr);
    }
  }
  if (!fd.valid()) {
    fd = UniqueFd(
        ::open(claim.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) return Error::Sys("open(" + Quote(claim) + ")", errno);
  }
  // No fsync: after a host crash there is no sandbox left to clean up.
  // Overwritten, then cut to length, so that the spare's block is reused.
  const std::string text = j.dump();
  Status st = WriteAll(fd.get(), text);
  if (st.ok() && ::ftruncate(fd.get(), static_cast<off_t>(text.size())) != 0) {
    st = Error::Sys("ftruncate(" + Quote(claim) + ")", errno);
  }
  if (st.ok()) st = PutInPlace(claim, path, r.id);
  if (!st.ok()) ::unlink(claim.c_str());
  return st;
}

Result<Record> Read(const std::string& state_dir, const std::string& id) {
  std::string path = RecordPath(state_dir, id);
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  try {
    auto j = nlohmann::json::parse(text);
    Record r;
    r.id = j.at("id").get<std::string>();
    r.supervisor_pid = j.at("supervisor_pid").get<pid_t>();
    r.supervisor_start = j.at("supervisor_start").get<uint64_t>();
    r.cgroup_root = j.at("cgroup_root").get<std::string>();
    r.cgroup_parent = j.at("cgroup_parent").get<std::string>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Error(Error::Code::kCorruption, Quote(path) + ": " + e.what());
  }
}

Status Remove(const std::string& state_dir, const std::string& id) {
  std::string path = RecordPath(state_dir, id);
  if (::rename(path.c_str(), (SpareDir(state_dir) + "/" + id).c_str()) == 0) return Ok();
  // Not there (removed already), or no spare directory (a state directory
  // of an older kiln; ENOENT too): unlinked.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Error::Sys("unlink(" + Quote(path) + ")", errno);
  }
  return Ok();
}

GcResult Gc(const std::string& state_dir, const std::string& cgroup_root,
            const std::string& cgroup_parent) {
  GcResult out;
  std::set<std::string> kept;  // sandboxes whose cgroups must stay
  std::set<std::pair<std::string, std::string>> parents = {{cgroup_root, cgroup_parent}};
  for (const std::string& name : ListDir(state_dir + "/run")) {
    if (!name.ends_with(kSuffix)) continue;
    std::string id = name.substr(0, name.size() - std::string_view(kSuffix).size());
    kept.insert(id);
    auto rec = Read(state_dir, id);
    if (rec) {
      uint64_t start = ProcessStartTime(rec->supervisor_pid);
      if (start != 0 && start == rec->supervisor_start) {
        out.alive.push_back(id);
        continue;
      }
      if (!rec->cgroup_root.empty()) {
        parents.insert({rec->cgroup_root, rec->cgroup_parent});
        if (auto s = cgroup::RemoveLeftover(CgroupDirs(rec->cgroup_root, rec->cgroup_parent, id));
            !s) {
          out.errors.push_back(id + ": " + s.error().message());
          continue;
        }
      }
    } else {
      // A torn record: its supervisor died while writing it, or is writing
      // it now. Leave young ones alone.
      struct stat st {};
      if (::stat(RecordPath(state_dir, id).c_str(), &st) == 0 && time(nullptr) - st.st_mtime < 60) {
        out.alive.push_back(id);
        continue;
      }
    }
    if (auto s = Remove(state_dir, id); !s) {
      out.errors.push_back(id + ": " + s.error().message());
      continue;
    }
    kept.erase(id);
    out.removed.push_back(id);
  }
  // Claims of supervisors killed between taking a record file and naming it
  // (ListDir skips them: their names start with a dot). Young ones may be
  // being written now.
  if (DIR* d = ::opendir((state_dir + "/run").c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (!name.starts_with(kClaimPrefix)) continue;
      std::string path = state_dir + "/run/" + std::string(name);
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0 && time(nullptr) - st.st_mtime >= 60) {
        ::unlink(path.c_str());
      }
    }
    ::closedir(d);
  }
  // Cgroups of no running sandbox.
  for (const auto& [root, parent] : parents) {
    for (const std::string& dir : CgroupDirs(root, parent, "")) {
      for (const std::string& name : ListDir(dir)) {
        std::string path = dir + name;
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || kept.count(name)) continue;
        if (auto s = cgroup::RemoveLeftover({path}); !s) {
          out.errors.push_back(name + ": " + s.error().message());
        } else if (std::find(out.removed.begin(), out.removed.end(), name) == out.removed.end()) {
          out.removed.push_back(name);
        }
      }
    }
  }
  return out;
}

}  // namespace kiln::sandbox::state
