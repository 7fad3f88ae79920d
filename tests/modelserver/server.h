// The scripted model server: a real HTTP/1.1 server on 127.0.0.1 (Boost.Beast
// over Asio, a thread per connection, keep-alive) that answers
// POST /v1/messages (Anthropic) and POST /v1/chat/completions (OpenAI) from a
// Script, streaming when the request asks for it, and records every request.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "tests/modelserver/player.h"
#include "tests/modelserver/script.h"

namespace kiln::modelserver {

struct RecordedRequest {
  uint64_t no = 0;  // 1-based arrival order
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  nlohmann::json body;                         // null if the body was not JSON
  std::string step;                            // which script entry answered
  std::optional<size_t> conversation;          // which conversation; nullopt: top level
  std::string cursor;                          // which run in it (hex SHA-256 of its task)
  std::vector<std::string> notes;              // placeholders left verbatim, and why
};

struct Options {
  uint16_t port = 0;        // 0: the kernel picks one
  std::string record_path;  // append each request as a JSON line; "" none
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> Start(Script script, Options opts = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const { return port_; }
  // http://127.0.0.1:PORT (Anthropic base URL); the OpenAI one adds /v1.
  std::string anthropic_url() const;
  std::string openai_url() const;
  std::vector<RecordedRequest> requests() const;
  void Stop();

 private:
  struct Impl;
  explicit Server(Script script);
  void AcceptLoop();
  void Serve(int fd);

  Player player_;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> counter_{0};
  mutable std::mutex mu_;
  std::vector<RecordedRequest> requests_;
  std::vector<int> open_fds_;
  std::vector<std::thread> threads_;
  std::thread acceptor_thread_;
  Options opts_;
};

}  // namespace kiln::modelserver
