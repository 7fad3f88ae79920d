#include "controller/proxy/endpoint.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/strand.hpp>
#include <cerrno>

#include "controller/proxy/connection.h"

namespace kiln::proxy {

namespace asio = boost::asio;
using stream_protocol = asio::local::stream_protocol;

Result<std::shared_ptr<EndpointState>> EndpointState::Open(
    asio::io_context& io, std::shared_ptr<Totals> totals, const std::string& path, Policy policy,
    std::function<void(const Request&)> callback) {
  Result<std::vector<GatewayRoute>> gateways = BuildGatewayRoutes(policy.gateways);
  if (!gateways.ok()) return gateways.error();
  if (policy.max_connections == 0) return Error::Invalid("proxy policy: max_connections is 0");
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    return Error::Invalid("proxy socket " + Quote(path) + " already exists");
  }
  auto state = std::make_shared<EndpointState>(io, std::move(totals), path, std::move(policy),
                                               std::move(*gateways), std::move(callback));
  std::lock_guard lock(state->mu_);
  boost::system::error_code ec;
  // Its own strand: accept handlers never run concurrently with each other.
  auto& acceptor = state->acceptor_.emplace(asio::make_strand(io));
  state->retry_timer_.emplace(acceptor.get_executor());
  if (acceptor.open(stream_protocol(), ec); ec) {
    return Error::Sys("socket(AF_UNIX)", ec.value());
  }
  if (acceptor.bind(stream_protocol::endpoint(path), ec); ec) {
    return Error::Sys("bind(" + Quote(path) + ")", ec.value());
  }
  if (::lstat(path.c_str(), &st) != 0) {
    int err = errno;
    return Error::Sys("lstat(" + Quote(path) + ")", err);
  }
  state->inode_ = st.st_ino;
  // Whatever the umask: the sandbox's uid must be able to connect.
  if (::chmod(path.c_str(), 0666) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return Error::Sys("chmod(" + Quote(path) + ", 0666)", err);
  }
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    ::unlink(path.c_str());
    return Error::Sys("listen(" + Quote(path) + ")", ec.value());
  }
  state->Accept();
  return state;
}

EndpointState::EndpointState(asio::io_context& io, std::shared_ptr<Totals> totals, std::string path,
                             Policy policy, std::vector<GatewayRoute> gateways,
                             std::function<void(const Request&)> callback)
    : io_(io),
      totals_(std::move(totals)),
      path_(std::move(path)),
      policy_(std::move(policy)),
      gateways_(std::move(gateways)),
      callback_(std::move(callback)) {}

void EndpointState::Accept() {
  accepting_ = true;
  // any_io_executor, so the accepted socket has the default socket type; a
  // strand of its own serialises each connection's handlers.
  acceptor_->async_accept(
      asio::any_io_executor(asio::make_strand(io_)),
      [self = shared_from_this()](boost::system::error_code ec, UnixSocket socket) {
        self->OnAccept(ec, std::move(socket));
      });
}

void EndpointState::OnAccept(boost::system::error_code ec, UnixSocket socket) {
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard lock(mu_);
    accepting_ = false;
    if (closing_) {
      cv_.notify_all();
      return;
    }
    if (ec) {
      // EMFILE and the like: the listener stays readable, so retrying at once
      // would spin until a descriptor is freed.
      spdlog::warn("proxy {}: accept: {}; retrying in 100 ms", path_, ec.message());
      accepting_ = true;
      retry_timer_->expires_after(std::chrono::milliseconds(100));
      retry_timer_->async_wait([self = shared_from_this()](boost::system::error_code) {
        std::lock_guard lock(self->mu_);
        self->accepting_ = false;
        if (self->closing_) {
          self->cv_.notify_all();
        } else {
          self->Accept();
        }
      });
      return;
    }
    if (connections_.size() >= policy_.max_connections) {
      spdlog::warn("proxy {}: {} connections open, refusing another", path_, connections_.size());
    } else {
      uint64_t id = next_id_++;
      connection = std::make_shared<Connection>(shared_from_this(), id, std::move(socket));
      connections_.emplace(id, connection);
    }
    Accept();
  }
  if (connection) connection->Start();
}

void EndpointState::Unregister(uint64_t id) {
  std::lock_guard lock(mu_);
  connections_.erase(id);
  if (closing_ && connections_.empty()) cv_.notify_all();
}

void EndpointState::Close() {
  std::vector<std::weak_ptr<Connection>> connections;
  {
    std::lock_guard lock(mu_);
    if (!closing_) {
      closing_ = true;
      boost::system::error_code ec;
      acceptor_->close(ec);    // the pending accept completes with operation_aborted
      retry_timer_->cancel();  // or its retry does
      for (const auto& [id, connection] : connections_) connections.push_back(connection);
    }
  }
  // Outside the lock: the last reference to a connection may go here, and its
  // destructor unregisters under the lock.
  for (const auto& weak : connections) {
    if (auto connection = weak.lock()) Connection::Abort(std::move(connection));
  }
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !accepting_ && connections_.empty(); });
  if (closed_) return;
  closed_ = true;
  acceptor_.reset();  // before the io_context can go away
  retry_timer_.reset();
  struct stat st;
  if (::lstat(path_.c_str(), &st) == 0 && st.st_ino == inode_ && ::unlink(path_.c_str()) != 0) {
    spdlog::warn("proxy: unlink('{}'): {}", path_, std::strerror(errno));
  }
}

const GatewayRoute* EndpointState::FindGateway(std::string_view name) const {
  for (const GatewayRoute& route : gateways_) {
    if (route.config.name == name) return &route;
  }
  return nullptr;
}

std::string EndpointState::GatewayNames() const {
  std::string out;
  for (const GatewayRoute& route : gateways_) {
    out += out.empty() ? route.config.name : ", " + route.config.name;
  }
  return out.empty() ? "none" : out;
}

void EndpointState::Report(const Request& request) {
  (request.allowed ? totals_->requests_allowed : totals_->requests_denied) += 1;
  if (!callback_) return;
  try {
    callback_(request);
  } catch (const std::exception& e) {
    spdlog::error("proxy {}: request callback threw: {}", path_, e.what());
  }
}

void EndpointState::CountBytes(uint64_t sent, uint64_t received) {
  totals_->bytes_sent += sent;
  totals_->bytes_received += received;
}

}  // namespace kiln::proxy
