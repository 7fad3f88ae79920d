// Prometheus metrics of the controller, served as text format 0.0.4 at
// GET /metrics by `kiln serve` (docs/controller.md lists every series).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"
#include "controller/proxy/proxy.h"
#include "controller/run/services.h"
#include "controller/store/store.h"

namespace kiln::metrics {

class Metrics final : public runner::RunMetrics {
 public:
  void RunFinished(store::Status status, double seconds) override;
  void SandboxFailure() override;
  void Overhead(double seconds) override;
  void Phase(const std::string& name, double seconds) override;

  // The exposition text. Counts by status and the queue depth come from the
  // store at scrape time; proxy totals from the proxy.
  std::string Render(store::Store& store, const proxy::Proxy* proxy);

  static constexpr std::array<double, 10> kDurationBuckets = {1,   5,    15,   60,   300,
                                                              900, 1800, 3600, 7200, 14400};

 private:
  struct Histogram {
    std::array<uint64_t, kDurationBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  std::mutex mu_;
  std::map<store::Status, uint64_t> finished_;
  Histogram durations_;
  Histogram overhead_;
  std::map<std::string, Histogram> phases_;
  uint64_t sandbox_failures_ = 0;
};

// A minimal HTTP/1.1 server (Boost.Beast) answering GET /metrics and
// GET /healthz on listen ("host:port"); one thread.
class Server {
 public:
  static Result<std::unique_ptr<Server>> Start(const std::string& listen,
                                               std::function<std::string()> render);
  ~Server();
  uint16_t port() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::metrics
