// What the verbs of kiln-controller share: the exit statuses, how an error
// is reported, and which configuration is read.
#pragma once

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "controller/app/daemon.h"
#include "controller/config/config.h"
#include "controller/store/store.h"

namespace kiln::controller::cli {

// Exit statuses of `kiln run` (and `kiln runs show` of a finished run);
// the other verbs use 0, kFailed, kUsage and kInfrastructure alike.
constexpr int kSucceeded = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;
constexpr int kBudget = 3;
constexpr int kCancelled = 4;
constexpr int kInfrastructure = 125;

constexpr char kDefaultConfig[] = "/etc/kiln/kiln.yaml";

// Where a run's session log can be read on this host: on a fleet, a
// verified copy fetched from the host that ran it (controller/fleet), asked
// for with this host's key; null where this host has no key yet (it can
// then read only its own logs). Defined in cli.cc.
std::function<Result<std::string>(const store::Run&)> LogHere(const config::Config& cfg,
                                                              store::Store& store);

inline int Fail(const Error& e, int code = kUsage) {
  spdlog::error("{}", e.message());
  return code;
}

// --config FILE, or /etc/kiln/kiln.yaml when it exists, or the defaults.
inline Result<config::Config> LoadConfig(const std::string& path) {
  if (!path.empty()) return config::Load(path);
  if (::access(kDefaultConfig, F_OK) == 0) return config::Load(kDefaultConfig);
  return config::Defaults();
}

// The configuration and the controller; on failure logs why and sets *code.
std::unique_ptr<daemon::Controller> OpenController(const std::string& config_path, int* code);

}  // namespace kiln::controller::cli
