// kiln's HTTP server on a TCP port (Boost.Beast): one io thread for the
// sockets, a pool of workers for the handler. Reads and writes are
// asynchronous with deadlines, so a client that stalls holds nothing but its
// own connection, and only until its deadline.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "controller/forge/api.h"

namespace kiln::forge {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto kIoTimeout = std::chrono::seconds(30);
constexpr uint32_t kHeaderLimit = 16 << 10;

std::string Size(uint64_t bytes) {
  if (bytes % (1 << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Whether the server still runs: a stream posts to the io context only
// under mu, so never to one that is gone.
struct Gate {
  std::mutex mu;
  bool alive = true;  // guarded by mu
};

constexpr size_t kStreamBacklog = 4 << 20;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const ApiServer::Handler* handler, uint64_t body_limit,
          asio::thread_pool* workers, std::shared_ptr<Gate> gate)
      : stream_(std::move(socket)),
        handler_(handler),
        body_limit_(body_limit),
        workers_(workers),
        gate_(std::move(gate)) {}

  void Read() {
    parser_.emplace();
    parser_->body_limit(body_limit_);
    parser_->header_limit(kHeaderLimit);
    stream_.expires_after(kIoTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  // The stream's side, on the io thread: queue bytes, write them in order.
  void Send(std::string bytes) {
    if (!streaming_) return;
    backlog_ += bytes.size();
    if (backlog_ > kStreamBacklog) {
      EndStream();
      return;
    }
    queue_.push_back(std::move(bytes));
    if (!writing_) WriteQueued();
  }

  std::atomic<bool> stream_open{false};

 private:
  // Holds the session weakly: the connection's pending reads and writes
  // own it, so a stream kept after the server stopped points at nothing.
  class Out : public Stream {
   public:
    Out(std::weak_ptr<Session> session, std::shared_ptr<Gate> gate)
        : session_(std::move(session)), gate_(std::move(gate)) {}
    bool Write(std::string bytes) override {
      std::lock_guard lock(gate_->mu);
      std::shared_ptr<Session> s = session_.lock();
      if (!gate_->alive || !s || !s->stream_open.load()) return false;
      asio::post(s->stream_.get_executor(),
                 [s, b = std::move(bytes)]() mutable { s->Send(std::move(b)); });
      return true;
    }
    bool open() const override {
      std::shared_ptr<Session> s = session_.lock();
      return s && s->stream_open.load();
    }

   private:
    std::weak_ptr<Session> session_;
    std::shared_ptr<Gate> gate_;
  };

  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      Reply(413,
            nlohmann::json{{"message", "the request body is larger than " + Size(body_limit_)}}
                    .dump() +
                "\n",
            false);
      return;
    }
    if (ec == http::error::header_limit) {
      Reply(431,
            R"({"message": "the request headers are larger than 16 KiB"})"
            "\n",
            false);
      return;
    }
    if (ec) {
      // end of stream, a timeout, or bytes that are not HTTP: nothing to answer.
      Close();
      return;
    }
    const auto& req = parser_->get();
    ApiRequest in;
    in.method = std::string(req.method_string());
    in.target = std::string(req.target());
    in.authorization = std::string(req[http::field::authorization]);
    for (const auto& field : req) {
      in.headers[Lower(std::string(field.name_string()))] = std::string(field.value());
    }
    in.body = req.body();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    // The handler may take its time (a git push, a log read): it runs on a
    // worker, and the io thread goes on serving the other connections.
    stream_.expires_never();
    asio::post(*workers_, [self = shared_from_this(), in = std::move(in)]() {
      ApiResponse out = (*self->handler_)(in);
      std::lock_guard lock(self->gate_->mu);
      if (!self->gate_->alive) return;
      asio::post(self->stream_.get_executor(),
                 [self, out = std::move(out)]() mutable { self->Respond(std::move(out)); });
    });
  }

  void Respond(ApiResponse out) {
    res_ = {};
    res_.version(version_);
    res_.result(static_cast<unsigned>(out.status));
    res_.set(http::field::server, "kiln");
    if (out.status != 204) res_.set(http::field::content_type, out.content_type);
    for (const auto& [name, value] : out.headers) res_.insert(name, value);
    res_.body() = std::move(out.body);
    if (out.open_stream) {
      // The body runs until the connection closes: no length, no keep-alive.
      res_.keep_alive(false);
      res_.set(http::field::cache_control, "no-store");
      open_stream_ = std::move(out.open_stream);
      WriteHead();
      return;
    }
    res_.keep_alive(keep_alive_);
    res_.prepare_payload();
    Write();
  }

  void Reply(unsigned status, std::string body, bool keep_alive) {
    res_ = {};
    res_.version(11);
    res_.result(status);
    res_.set(http::field::content_type, "application/json");
    res_.body() = std::move(body);
    res_.keep_alive(keep_alive);
    res_.prepare_payload();
    Write();
  }

  void Write() {
    stream_.expires_after(kIoTimeout);
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->res_.keep_alive()) {
        self->Close();
        return;
      }
      self->Read();
    });
  }

  void WriteHead() {
    stream_.expires_after(kIoTimeout);
    serializer_.emplace(res_);
    http::async_write(stream_, *serializer_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) {
                          self->Close();
                          return;
                        }
                        self->stream_.expires_never();
                        self->streaming_ = true;
                        self->stream_open = true;
                        self->WatchForClose();
                        auto open = std::move(self->open_stream_);
                        open(std::make_shared<Out>(self, self->gate_));
                      });
  }

  // A client that leaves is seen as the end of its side of the connection.
  void WatchForClose() {
    stream_.socket().async_read_some(asio::buffer(sink_),
                                     [self = shared_from_this()](beast::error_code ec, size_t) {
                                       if (ec) {
                                         self->EndStream();
                                         return;
                                       }
                                       self->WatchForClose();
                                     });
  }

  void WriteQueued() {
    writing_ = true;
    stream_.expires_after(kIoTimeout);
    asio::async_write(stream_, asio::buffer(queue_.front()),
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->writing_ = false;
                        if (ec || !self->streaming_) {
                          // The client went while this was written.
                          self->EndStream();
                          self->queue_.clear();
                          return;
                        }
                        self->stream_.expires_never();
                        self->backlog_ -= self->queue_.front().size();
                        self->queue_.pop_front();
                        if (!self->queue_.empty()) self->WriteQueued();
                      });
  }

  void EndStream() {
    if (!streaming_) return;
    streaming_ = false;
    stream_open = false;
    // A write in flight still reads its buffer: the queue goes when it ends.
    if (!writing_) queue_.clear();
    Close();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  const ApiServer::Handler* handler_;
  const uint64_t body_limit_;
  asio::thread_pool* workers_;
  std::shared_ptr<Gate> gate_;
  // A stream's state, on the io thread.
  std::function<void(std::shared_ptr<Stream>)> open_stream_;
  bool streaming_ = false;
  bool writing_ = false;
  std::deque<std::string> queue_;
  size_t backlog_ = 0;
  char sink_[512];
};

}  // namespace

struct ApiServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  ApiServer::Handler handler;
  uint64_t body_limit = ApiServer::kDefaultBodyLimit;
  std::thread thread;
  std::unique_ptr<asio::thread_pool> workers;
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();

  asio::steady_timer backoff{io};

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        // A response's head and body are separate writes: without this the
        // body waits for the client's delayed ACK.
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), &handler, body_limit, workers.get(), gate)
            ->Read();
        Accept();
        return;
      }
      // Out of descriptors, say: try again shortly rather than spin.
      backoff.expires_after(std::chrono::milliseconds(100));
      backoff.async_wait([this](beast::error_code) { Accept(); });
    });
  }
};

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ApiServer::~ApiServer() {
  {
    std::lock_guard lock(impl_->gate->mu);
    impl_->gate->alive = false;
  }
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->workers->stop();
  impl_->workers->join();
}

uint16_t ApiServer::port() const { return impl_->acceptor.local_endpoint().port(); }

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const std::string& listen,
                                                    std::string store_path, std::string repos_dir,
                                                    std::string bot, std::string_view web_url,
                                                    std::string_view api_url) {
  const std::string own_url = api_url.empty() ? "http://" + listen + "/api/v1" : "";
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Api> api,
                        Api::Open(std::move(store_path), std::move(repos_dir), std::move(bot),
                                  web_url, api_url.empty() ? std::string_view(own_url) : api_url));
  std::shared_ptr<Api> shared = std::move(api);
  return Start(listen, [shared](const ApiRequest& r) { return shared->Handle(r); });
}

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const std::string& listen, Handler handler,
                                                    uint64_t body_limit, int workers) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Error::Invalid("listen address " + Quote(listen) + ": expected HOST:PORT");
  }
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->body_limit = body_limit;
  try {
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    size_t used = 0;
    const std::string port_text = listen.substr(colon + 1);
    unsigned long port = std::stoul(port_text, &used);
    if (used != port_text.size() || port > 65535) throw std::invalid_argument("bad port");
    tcp::endpoint ep(asio::ip::make_address(host), static_cast<uint16_t>(port));
    impl->acceptor.open(ep.protocol());
    impl->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl->acceptor.bind(ep);
    impl->acceptor.listen();
  } catch (const std::exception& e) {
    return Error::Invalid("listen address " + Quote(listen) + ": " + e.what());
  }
  impl->workers = std::make_unique<asio::thread_pool>(std::max(workers, 1));
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

}  // namespace kiln::forge
