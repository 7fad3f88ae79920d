#include "controller/run/services.h"

namespace kiln::runner {

std::string RunDir(const config::Config& config, const std::string& run_id) {
  return config.state_dir + "/runs/" + run_id;
}

std::string LogPath(const config::Config& config, const store::Run& run) {
  std::string name = run.attempt > 1 ? run.id + "." + std::to_string(run.attempt) : run.id;
  return config.log_dir + "/" + name + ".log";
}

std::string SandboxId(const store::Run& run) { return run.id + "-" + std::to_string(run.attempt); }

}  // namespace kiln::runner
