// The shared state of one endpoint: its policy and callback, its listening
// unix socket, and the bookkeeping that lets closing wait for every
// connection. Connections hold it by shared_ptr, so it outlives the
// user-facing Endpoint object by as long as any of them still unwinds.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "controller/proxy/gateway.h"
#include "controller/proxy/proxy.h"

namespace kiln::proxy {

class Connection;

class EndpointState : public std::enable_shared_from_this<EndpointState> {
 public:
  using UnixSocket = boost::asio::local::stream_protocol::socket;

  // Binds and listens on path (which must not exist), chmod 0666, starts accepting.
  static Result<std::shared_ptr<EndpointState>> Open(boost::asio::io_context& io,
                                                     std::shared_ptr<Totals> totals,
                                                     const std::string& path, Policy policy,
                                                     std::function<void(const Request&)> callback);

  EndpointState(boost::asio::io_context& io, std::shared_ptr<Totals> totals, std::string path,
                Policy policy, std::vector<GatewayRoute> gateways,
                std::function<void(const Request&)> callback);
  EndpointState(const EndpointState&) = delete;
  EndpointState& operator=(const EndpointState&) = delete;

  // Stops accepting, aborts every connection, waits until none is left (so no
  // handler or callback of this endpoint runs any more), then closes the
  // acceptor and removes the socket file. Thread-safe and idempotent; must
  // not be called from a proxy thread (it would wait for itself).
  void Close();

  const std::string& path() const { return path_; }
  const Policy& policy() const { return policy_; }
  const GatewayRoute* FindGateway(std::string_view name) const;
  // "anthropic, openai", or "none".
  std::string GatewayNames() const;

  // Adds to the totals and calls the callback (exceptions from it are logged).
  void Report(const Request& request);
  void CountBytes(uint64_t sent, uint64_t received);

  // Held by each connection as its first member, so that it is destroyed
  // last: once every Registration is gone, no connection code runs any more.
  class Registration {
   public:
    Registration(std::shared_ptr<EndpointState> endpoint, uint64_t id)
        : endpoint_(std::move(endpoint)), id_(id) {}
    ~Registration() { endpoint_->Unregister(id_); }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    std::shared_ptr<EndpointState> endpoint_;
    uint64_t id_;
  };

 private:
  void Accept();  // requires mu_
  void OnAccept(boost::system::error_code ec, UnixSocket socket);
  void Unregister(uint64_t id);

  boost::asio::io_context& io_;
  const std::shared_ptr<Totals> totals_;
  const std::string path_;
  const Policy policy_;
  const std::vector<GatewayRoute> gateways_;
  const std::function<void(const Request&)> callback_;
  ino_t inode_ = 0;  // of the socket file we created, so Close() removes only ours

  std::mutex mu_;
  std::condition_variable cv_;
  // All below are guarded by mu_. The acceptor is only touched under it, which
  // lets Close() cancel the pending accept from any thread.
  std::optional<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::optional<boost::asio::steady_timer> retry_timer_;  // after a failed accept (EMFILE)
  bool accepting_ = false;  // an accept or its retry is pending (its handler has not run yet)
  bool closing_ = false;
  bool closed_ = false;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections_;
};

}  // namespace kiln::proxy
