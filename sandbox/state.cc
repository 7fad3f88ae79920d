#include "sandbox/state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "base/fd.h"
#include "sandbox/cgroup.h"
#include "sandbox/procfs.h"

namespace kiln::sandbox::state {

namespace {

constexpr const char* kSuffix = ".json";

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') out.emplace_back(e->d_name);
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
  for (const std::string& sub : {dir + "/run", MountPoint(dir)}) {
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
  std::string path = RecordPath(state_dir, r.id);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    if (errno == EEXIST) return Error::Invalid("sandbox id " + Quote(r.id) + " is already in use");
    return Error::Sys("open(" + Quote(path) + ")", errno);
  }
  // No fsync: after a host crash there is no sandbox left to clean up.
  if (auto s = WriteAll(fd.get(), j.dump()); !s) {
    ::unlink(path.c_str());
    return s.error().Wrap(Quote(path));
  }
  return Ok();
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
