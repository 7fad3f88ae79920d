#include "controller/proxy/proxy.h"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <mutex>
#include <thread>

#include "controller/proxy/endpoint.h"

namespace kiln::proxy {
namespace {

namespace asio = boost::asio;

class EndpointImpl : public Endpoint {
 public:
  explicit EndpointImpl(std::shared_ptr<EndpointState> state) : state_(std::move(state)) {}
  ~EndpointImpl() override { state_->Close(); }
  const std::string& socket_path() const override { return state_->path(); }

 private:
  std::shared_ptr<EndpointState> state_;
};

}  // namespace

struct Proxy::Impl {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::shared_ptr<Totals> totals = std::make_shared<Totals>();
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<std::weak_ptr<EndpointState>> endpoints;  // guarded by mu
};

Proxy::Proxy(int threads) : impl_(std::make_unique<Impl>()) {
  for (int i = 0; i < std::max(threads, 1); ++i) {
    impl_->threads.emplace_back([io = &impl_->io] {
      // A handler that throws (it should not) must not take the thread down.
      for (;;) {
        try {
          io->run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("proxy: unexpected exception in a handler: {}", e.what());
        }
      }
    });
  }
}

Proxy::~Proxy() {
  std::vector<std::weak_ptr<EndpointState>> endpoints;
  {
    std::lock_guard lock(impl_->mu);
    endpoints.swap(impl_->endpoints);
  }
  for (const auto& weak : endpoints) {
    if (auto state = weak.lock()) state->Close();
  }
  impl_->work.reset();
  impl_->io.stop();
  for (std::thread& t : impl_->threads) t.join();
}

Result<std::unique_ptr<Endpoint>> Proxy::Open(const std::string& socket_path, Policy policy,
                                              std::function<void(const Request&)> on_request) {
  Result<std::shared_ptr<EndpointState>> state = EndpointState::Open(
      impl_->io, impl_->totals, socket_path, std::move(policy), std::move(on_request));
  if (!state.ok()) return state.error().Wrap("opening proxy endpoint");
  std::lock_guard lock(impl_->mu);
  std::erase_if(impl_->endpoints, [](const auto& weak) { return weak.expired(); });
  impl_->endpoints.push_back(*state);
  return std::unique_ptr<Endpoint>(std::make_unique<EndpointImpl>(std::move(*state)));
}

const Totals& Proxy::totals() const { return *impl_->totals; }

}  // namespace kiln::proxy
