#include "controller/app/metrics.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <sstream>
#include <thread>

namespace kiln::metrics {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr std::array<double, 10> kOverheadBuckets = {0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,  1,     2.5,  5};
constexpr std::array<double, 10> kPhaseBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                  0.025,  0.05,  0.1,    0.5,   2.5};

template <size_t N>
void Observe(const std::array<double, N>& bounds, std::array<uint64_t, N>& buckets, uint64_t& count,
             double& sum, double v) {
  for (size_t i = 0; i < N; ++i) {
    if (v <= bounds[i]) ++buckets[i];
  }
  ++count;
  sum += v;
}

void Header(std::ostringstream& o, const std::string& name, const std::string& help) {
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
}

// One histogram's series; labels ("phase=\"tree\"") go before le.
template <size_t N>
void Series(std::ostringstream& o, const std::string& name, const std::string& labels,
            const std::array<double, N>& bounds, const std::array<uint64_t, N>& buckets,
            uint64_t count, double sum) {
  std::string before = labels.empty() ? "" : labels + ",";
  std::string only = labels.empty() ? "" : "{" + labels + "}";
  for (size_t i = 0; i < N; ++i) {
    o << name << "_bucket{" << before << "le=\"" << bounds[i] << "\"} " << buckets[i] << "\n";
  }
  o << name << "_bucket{" << before << "le=\"+Inf\"} " << count << "\n";
  o << name << "_sum" << only << " " << sum << "\n"
    << name << "_count" << only << " " << count << "\n";
}

}  // namespace

void Metrics::RunFinished(store::Status status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++finished_[status];
  Observe(kDurationBuckets, durations_.buckets, durations_.count, durations_.sum, seconds);
}

void Metrics::Phase(const std::string& name, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  Histogram& h = phases_[name];
  Observe(kPhaseBuckets, h.buckets, h.count, h.sum, seconds);
}

void Metrics::SandboxFailure() {
  std::lock_guard<std::mutex> lock(mu_);
  ++sandbox_failures_;
}

void Metrics::Overhead(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  Observe(kOverheadBuckets, overhead_.buckets, overhead_.count, overhead_.sum, seconds);
}

std::string Metrics::Render(store::Store& store, const proxy::Proxy* proxy) {
  std::ostringstream o;
  auto counts = store.CountByStatus();
  if (counts) {
    o << "# HELP kiln_runs Runs in the store, by status.\n# TYPE kiln_runs gauge\n";
    for (const auto& [status, n] : *counts) {
      o << "kiln_runs{status=\"" << store::ToString(status) << "\"} " << n << "\n";
    }
    o << "# HELP kiln_queue_depth Runs waiting to run.\n# TYPE kiln_queue_depth gauge\n"
      << "kiln_queue_depth " << (*counts)[store::Status::kQueued] << "\n";
  }
  std::lock_guard<std::mutex> lock(mu_);
  o << "# HELP kiln_runs_finished_total Attempts this process finished, by status.\n"
    << "# TYPE kiln_runs_finished_total counter\n";
  for (const auto& [status, n] : finished_) {
    o << "kiln_runs_finished_total{status=\"" << store::ToString(status) << "\"} " << n << "\n";
  }
  Header(o, "kiln_run_duration_seconds", "Wall time of finished attempts.");
  Series(o, "kiln_run_duration_seconds", "", kDurationBuckets, durations_.buckets, durations_.count,
         durations_.sum);
  Header(o, "kiln_run_overhead_seconds",
         "Controller time per attempt outside the sandbox (provisioning, result, teardown).");
  Series(o, "kiln_run_overhead_seconds", "", kOverheadBuckets, overhead_.buckets, overhead_.count,
         overhead_.sum);
  if (!phases_.empty()) {
    Header(o, "kiln_run_phase_seconds",
           "Time of each phase of an attempt (docs/controller.md, a run's own cost).");
    for (const auto& [phase, h] : phases_) {
      Series(o, "kiln_run_phase_seconds", "phase=\"" + phase + "\"", kPhaseBuckets, h.buckets,
             h.count, h.sum);
    }
  }
  o << "# HELP kiln_sandbox_failures_total Sandboxes that failed to start or run the agent.\n"
    << "# TYPE kiln_sandbox_failures_total counter\n"
    << "kiln_sandbox_failures_total " << sandbox_failures_ << "\n";
  if (proxy) {
    const proxy::Totals& t = proxy->totals();
    o << "# HELP kiln_proxy_requests_total Egress proxy requests, by decision.\n"
      << "# TYPE kiln_proxy_requests_total counter\n"
      << "kiln_proxy_requests_total{decision=\"allowed\"} " << t.requests_allowed.load() << "\n"
      << "kiln_proxy_requests_total{decision=\"denied\"} " << t.requests_denied.load() << "\n"
      << "# HELP kiln_proxy_bytes_total Egress proxy bytes, by direction.\n"
      << "# TYPE kiln_proxy_bytes_total counter\n"
      << "kiln_proxy_bytes_total{direction=\"sent\"} " << t.bytes_sent.load() << "\n"
      << "kiln_proxy_bytes_total{direction=\"received\"} " << t.bytes_received.load() << "\n";
  }
  return o.str();
}

struct Server::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::function<std::string()> render;
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      Serve(std::move(socket));
      Accept();
    });
  }

  // One request per connection; scrapes are rare and small.
  void Serve(tcp::socket socket) {
    boost::system::error_code ec;
    boost::beast::flat_buffer buf;
    http::request<http::string_body> req;
    http::request_parser<http::string_body> parser;
    parser.body_limit(1 << 16);
    // A client that connects and says nothing must not stall the scrapes.
    timeval tv{5, 0};
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    http::read(socket, buf, parser, ec);
    if (ec) return;
    req = parser.release();
    http::response<http::string_body> res;
    res.version(11);
    res.keep_alive(false);
    if (req.method() != http::verb::get) {
      res.result(http::status::method_not_allowed);
      res.body() = "only GET\n";
    } else if (req.target() == "/metrics") {
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = render();
    } else if (req.target() == "/healthz") {
      res.result(http::status::ok);
      res.body() = "ok\n";
    } else {
      res.result(http::status::not_found);
      res.body() = "not found: try /metrics\n";
    }
    res.prepare_payload();
    http::write(socket, res, ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t Server::port() const { return impl_->acceptor.local_endpoint().port(); }

Result<std::unique_ptr<Server>> Server::Start(const std::string& listen,
                                              std::function<std::string()> render) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Error::Invalid("metrics_listen " + Quote(listen) + ": expected HOST:PORT");
  }
  auto impl = std::make_unique<Impl>();
  impl->render = std::move(render);
  try {
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    auto port = static_cast<uint16_t>(std::stoul(listen.substr(colon + 1)));
    tcp::endpoint ep(asio::ip::make_address(host), port);
    impl->acceptor.open(ep.protocol());
    impl->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl->acceptor.bind(ep);
    impl->acceptor.listen();
  } catch (const std::exception& e) {
    return Error::Invalid("metrics_listen " + Quote(listen) + ": " + e.what());
  }
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

}  // namespace kiln::metrics
