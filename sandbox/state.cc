#include "sandbox/state.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "base/fd.h"
#include "sandbox/cgroup.h"

namespace kiln::sandbox::state {

namespace {

Status MkdirMode(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return Error::Sys("mkdir(" + Quote(path) + ")", errno);
  }
  return Ok();
}

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
  if (ec)
    return Error(Error::Code::kIO, "creating state directory " + Quote(dir) + ": " + ec.message());
  return MkdirMode(dir + "/run", 0700);
}

std::string RunDir(const std::string& state_dir, const std::string& id) {
  return state_dir + "/run/" + id;
}

uint64_t ProcessStartTime(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  // Field 22; the command name (field 2) may contain spaces, so skip past ')'.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(stat->substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && in >> field; ++i) {
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

Status Write(const std::string& state_dir, const Record& r) {
  nlohmann::json j = {{"id", r.id},
                      {"supervisor_pid", r.supervisor_pid},
                      {"supervisor_start", r.supervisor_start},
                      {"cgroup_paths", r.cgroup_paths}};
  return WriteFileAtomic(RunDir(state_dir, r.id) + "/record.json", j.dump(), 0600, Sync::kNoFsync);
}

Result<Record> Read(const std::string& state_dir, const std::string& id) {
  std::string path = RunDir(state_dir, id) + "/record.json";
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  try {
    auto j = nlohmann::json::parse(text);
    Record r;
    r.id = j.at("id").get<std::string>();
    r.supervisor_pid = j.at("supervisor_pid").get<pid_t>();
    r.supervisor_start = j.at("supervisor_start").get<uint64_t>();
    r.cgroup_paths = j.at("cgroup_paths").get<std::vector<std::string>>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Error(Error::Code::kCorruption, Quote(path) + ": " + e.what());
  }
}

Status Remove(const std::string& state_dir, const std::string& id) {
  std::error_code ec;
  std::filesystem::remove_all(RunDir(state_dir, id), ec);
  if (ec)
    return Error(Error::Code::kIO,
                 "removing " + Quote(RunDir(state_dir, id)) + ": " + ec.message());
  return Ok();
}

GcResult Gc(const std::string& state_dir, const std::vector<std::string>& cgroup_parents) {
  GcResult out;
  std::set<std::string> known;
  for (const std::string& id : ListDir(state_dir + "/run")) {
    known.insert(id);
    auto rec = Read(state_dir, id);
    if (rec) {
      uint64_t start = ProcessStartTime(rec->supervisor_pid);
      if (start != 0 && start == rec->supervisor_start) {
        out.alive.push_back(id);
        continue;
      }
      if (auto s = cgroup::RemoveLeftover(rec->cgroup_paths); !s) {
        out.errors.push_back(id + ": " + s.error().message());
        continue;
      }
    } else {
      // No record: the supervisor died while starting. Leave young ones alone,
      // they may still be starting.
      struct stat st {};
      if (::stat(RunDir(state_dir, id).c_str(), &st) == 0 && time(nullptr) - st.st_mtime < 60) {
        out.alive.push_back(id);
        continue;
      }
    }
    if (auto s = Remove(state_dir, id); !s) {
      out.errors.push_back(id + ": " + s.error().message());
      continue;
    }
    out.removed.push_back(id);
  }
  // Cgroups created before the record was written, by a supervisor that died.
  for (const std::string& parent : cgroup_parents) {
    for (const std::string& name : ListDir(parent)) {
      std::string dir = parent + "/" + name;
      struct stat st {};
      if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || known.count(name)) continue;
      if (auto s = cgroup::RemoveLeftover({dir}); !s) {
        out.errors.push_back(name + ": " + s.error().message());
      } else {
        out.removed.push_back(name);
      }
    }
  }
  return out;
}

}  // namespace kiln::sandbox::state
