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

}  // namespace kiln::runner
