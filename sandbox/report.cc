#include <nlohmann/json.hpp>

#include "sandbox/supervisor.h"

namespace kiln::sandbox {

std::string ReportJson(const Report& r) {
  nlohmann::json j;
  j["id"] = r.id;
  j["status"] = r.status;
  j["exit_code"] = r.exit_code ? nlohmann::json(*r.exit_code) : nlohmann::json(nullptr);
  j["signal"] = r.signal ? nlohmann::json(*r.signal) : nlohmann::json(nullptr);
  j["error"] = r.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.error);
  j["wall_seconds"] = r.wall_seconds;
  j["cpu_seconds"] = r.cpu_seconds;
  j["memory_peak_bytes"] =
      r.memory_peak_bytes ? nlohmann::json(*r.memory_peak_bytes) : nlohmann::json(nullptr);
  j["oom_killed"] = r.oom_killed;
  j["timed_out"] = r.timed_out;
  j["pids_peak"] = r.pids_peak ? nlohmann::json(*r.pids_peak) : nlohmann::json(nullptr);
  j["seccomp_denials"] = r.seccomp_denials;
  j["denied_syscalls"] = r.denied_syscalls;
  return j.dump(2) + "\n";
}

}  // namespace kiln::sandbox
