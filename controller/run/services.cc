#include "controller/run/services.h"

#include <sys/stat.h>

namespace kiln::runner {

std::string RunDir(const config::Config& config, const store::Run& run) {
  return config.state_dir + "/runs/" + SandboxId(run);
}

std::string LogPath(const config::Config& config, const store::Run& run) {
  std::string name = run.attempt > 1 ? run.id + "." + std::to_string(run.attempt) : run.id;
  return config.log_dir + "/" + name + ".log";
}

Result<std::string> FindLog(store::Store& store, const std::string& target,
                            const std::function<Result<std::string>(const store::Run&)>& log_of) {
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0) return target;
  auto run = store.Get(target);
  if (!run) {
    return Error::Invalid(Quote(target) + " is neither a session log nor a run in the store (" +
                          run.error().message() + ")");
  }
  if (run->log_path.empty()) {
    return Error::Invalid("run " + run->id + " has no session log: it never started");
  }
  return log_of ? log_of(*run) : run->log_path;
}

std::string SandboxId(const store::Run& run) { return run.id + "-" + std::to_string(run.attempt); }

nlohmann::json LiveJson(const Usage& usage, int attempt) {
  return {{"attempt", attempt},
          {"turns", usage.turns},
          {"input_tokens", usage.input_tokens},
          {"output_tokens", usage.output_tokens},
          {"tool_calls", usage.tool_calls}};
}

std::optional<Usage> LiveUsageOf(const LiveUsage* here, const store::Run& run) {
  if (run.status != store::Status::kRunning) return std::nullopt;
  if (here) {
    if (auto mine = here->Get(run.id)) return mine;
  }
  const nlohmann::json& j = run.live;
  if (!j.is_object() || j.value("attempt", -1) != run.attempt) return std::nullopt;
  auto count = [&](const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t{0};
  };
  return Usage{count("turns"), count("input_tokens"), count("output_tokens"), count("tool_calls")};
}

}  // namespace kiln::runner
