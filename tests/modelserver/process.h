// Runs kiln-model-server as a child process, for tests that drive the real
// kiln-runtime binary against it and for the benchmark.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "base/result.h"

namespace kiln::modelserver {

class ServerProcess {
 public:
  // Starts `binary --script script [--record record]` and reads its port.
  static Result<std::unique_ptr<ServerProcess>> Start(const std::string& binary,
                                                      const std::string& script,
                                                      const std::string& record = "");
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  uint16_t port() const { return port_; }
  std::string anthropic_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string openai_url() const { return anthropic_url() + "/v1"; }

 private:
  ServerProcess(pid_t pid, uint16_t port) : pid_(pid), port_(port) {}
  pid_t pid_;
  uint16_t port_;
};

}  // namespace kiln::modelserver
