// kiln's HTTP server on a TCP port (Boost.Beast): one io thread for the
// sockets, a pool of workers for the handler. Reads and writes are
// asynchronous with deadlines, so a client that stalls holds nothing but its
// own connection, and only until its deadline.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <poll.h>
#include <sys/socket.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <climits>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
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
  bool alive = true;       // guarded by mu
  std::set<int> streamed;  // the sockets of streamed exchanges; guarded by mu
};

// Streamed exchanges at once (git transfers); more wait for one to end.
constexpr int kStreamers = 4;

constexpr size_t kStreamBacklog = 4 << 20;

// A response's head as kiln sends every one: its status, the Server and
// Content-Type headers (none for a 204) and the response's own.
template <typename Res>
void SetHead(Res& res, const ApiResponse& r) {
  res.result(static_cast<unsigned>(r.status));
  res.set(http::field::server, "kiln");
  if (r.status != 204) res.set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res.insert(name, value);
}

// A connected socket for Beast's synchronous reads and writes on a worker,
// each one given kIoTimeout (Beast's own timeouts are for asynchronous use).
class FdStream {
 public:
  explicit FdStream(int fd) : fd_(fd) {}

  template <typename Buffers>
  size_t read_some(const Buffers& buffers, beast::error_code& ec) {
    auto b = *asio::buffer_sequence_begin(buffers);
    if (!Wait(POLLIN, ec)) return 0;
    ssize_t n = ::recv(fd_, b.data(), b.size(), MSG_DONTWAIT);
    if (n > 0) return static_cast<size_t>(n);
    ec = n == 0 ? beast::error_code(asio::error::eof)
                : beast::error_code(errno, beast::system_category());
    return 0;
  }
  template <typename Buffers>
  size_t read_some(const Buffers& buffers) {
    return OrThrow([&](beast::error_code& ec) { return read_some(buffers, ec); });
  }
  template <typename Buffers>
  size_t write_some(const Buffers& buffers, beast::error_code& ec) {
    std::vector<iovec> iov;
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      asio::const_buffer b = *it;
      if (b.size() > 0) iov.push_back({const_cast<void*>(b.data()), b.size()});
    }
    if (iov.empty()) return 0;
    if (!Wait(POLLOUT, ec)) return 0;
    msghdr m{};
    m.msg_iov = iov.data();
    m.msg_iovlen = std::min<size_t>(iov.size(), IOV_MAX);
    ssize_t n = ::sendmsg(fd_, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<size_t>(n);
    ec = beast::error_code(errno, beast::system_category());
    return 0;
  }
  template <typename Buffers>
  size_t write_some(const Buffers& buffers) {
    return OrThrow([&](beast::error_code& ec) { return write_some(buffers, ec); });
  }

 private:
  // The throwing form Beast's stream concepts also ask for.
  template <typename Op>
  static size_t OrThrow(Op op) {
    beast::error_code ec;
    size_t n = op(ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }
  bool Wait(short events, beast::error_code& ec) {
    pollfd p{fd_, events, 0};
    for (;;) {
      int n =
          ::poll(&p, 1,
                 static_cast<int>(
                     std::chrono::duration_cast<std::chrono::milliseconds>(kIoTimeout).count()));
      if (n > 0) return true;
      if (n < 0 && errno == EINTR) continue;
      ec = n == 0 ? beast::error_code(beast::error::timeout)
                  : beast::error_code(errno, beast::system_category());
      return false;
    }
  }
  int fd_;
};

// What a streamed route's handler reads and writes through: the request's
// parser (its head read, its body not), the bytes already read past the
// head, the socket.
class SyncExchange : public Exchange {
 public:
  SyncExchange(int fd, beast::flat_buffer& buffer, http::request_parser<http::empty_body>&& head,
               unsigned version)
      : fd_(fd), stream_(fd), buffer_(buffer), parser_(std::move(head)), version_(version) {
    parser_.body_limit(std::numeric_limits<uint64_t>::max());
  }

  Result<std::string> ReadBody(size_t max) override {
    if (max == 0) return Error::Invalid("reading the request's body: 0 bytes asked for");
    std::string out(max, '\0');
    while (!parser_.is_done()) {
      parser_.get().body().data = out.data();
      parser_.get().body().size = out.size();
      beast::error_code ec;
      http::read_some(stream_, buffer_, parser_, ec);
      if (ec && ec != http::error::need_buffer) {
        return Error::Invalid("reading the request's body: " + ec.message());
      }
      const size_t got = out.size() - parser_.get().body().size;
      if (got > 0) {
        out.resize(got);
        return out;
      }
    }
    return std::string();
  }

  Status Reply(const ApiResponse& r) override {
    if (sent_) return Error::Invalid("replying: a reply was sent already");
    sent_ = true;
    http::response<http::string_body> res;
    res.version(version_);
    SetHead(res, r);
    res.keep_alive(false);
    res.body() = r.body;
    res.prepare_payload();
    beast::error_code ec;
    http::write(stream_, res, ec);
    return Done(ec, "the reply");
  }

  Status Begin(const ApiResponse& r) override {
    if (sent_) return Error::Invalid("replying: a reply was sent already");
    sent_ = true;
    res_.emplace();
    res_->version(version_);
    SetHead(*res_, r);
    res_->keep_alive(false);
    // HTTP/1.0 has no chunks: the body runs to the connection's close.
    res_->chunked(version_ >= 11);
    res_->body().data = nullptr;
    res_->body().more = true;
    serializer_.emplace(*res_);
    beast::error_code ec;
    http::write_header(stream_, *serializer_, ec);
    return Done(ec, "the reply's head");
  }

  Status Write(std::string_view piece) override {
    if (!serializer_) return Error::Invalid("writing the reply's body before its head");
    if (piece.empty()) return Ok();
    res_->body().data = const_cast<char*>(piece.data());
    res_->body().size = piece.size();
    res_->body().more = true;
    beast::error_code ec;
    http::write(stream_, *serializer_, ec);
    return Done(ec == http::error::need_buffer ? beast::error_code() : ec, "the reply's body");
  }

  Status End() override {
    if (!serializer_) return Error::Invalid("ending a reply not begun");
    res_->body().data = nullptr;
    res_->body().size = 0;
    res_->body().more = false;
    beast::error_code ec;
    http::write(stream_, *serializer_, ec);
    return Done(ec, "the reply's end");
  }

  // Whether anything of a reply went out (after a handler that threw, a 500
  // still may).
  bool sent() const { return sent_; }

  // Before the close: what the client still sends is read and dropped
  // (for at most kLinger, 64 MiB), so that closing with unread bytes does
  // not reset the connection and lose the reply (a refused push's pack).
  void Linger() {
    ::shutdown(fd_, SHUT_WR);
    const auto until = std::chrono::steady_clock::now() + kLinger;
    char sink[65536];
    size_t dropped = 0;
    while (dropped < (64u << 20) && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) continue;
      ssize_t n = ::recv(fd_, sink, sizeof sink, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return;
      if (n > 0) dropped += static_cast<size_t>(n);
    }
  }

 private:
  static constexpr auto kLinger = std::chrono::seconds(5);
  static Status Done(beast::error_code ec, const std::string& what) {
    if (!ec) return Ok();
    return Error::Invalid("writing " + what + ": " + ec.message());
  }

  int fd_;
  FdStream stream_;
  beast::flat_buffer& buffer_;
  http::request_parser<http::buffer_body> parser_;
  unsigned version_;
  bool sent_ = false;
  std::optional<http::response<http::buffer_body>> res_;
  std::optional<http::response_serializer<http::buffer_body>> serializer_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const ApiServer::Handler* handler,
          const ApiServer::StreamedRoute* streamed, uint64_t body_limit, asio::thread_pool* workers,
          asio::thread_pool* streamers, std::shared_ptr<Gate> gate)
      : stream_(std::move(socket)),
        handler_(handler),
        streamed_(streamed),
        body_limit_(body_limit),
        workers_(workers),
        streamers_(streamers),
        gate_(std::move(gate)) {}

  // A request's head first: a streamed route may take it over; any other
  // request's body is read whole, up to body_limit.
  void Read() {
    header_.emplace();
    // No limit yet (boost::none would refuse every length in Boost 1.74):
    // a streamed route's body has none, any other's is checked after.
    header_->body_limit(std::numeric_limits<uint64_t>::max());
    header_->header_limit(kHeaderLimit);
    stream_.expires_after(kIoTimeout);
    http::async_read_header(
        stream_, buffer_, *header_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
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

  // A request's method, target and headers.
  template <typename Req>
  static ApiRequest HeadOf(const Req& req) {
    ApiRequest in;
    in.method = std::string(req.method_string());
    in.target = std::string(req.target());
    in.authorization = std::string(req[http::field::authorization]);
    for (const auto& field : req) {
      in.headers[Lower(std::string(field.name_string()))] = std::string(field.value());
    }
    return in;
  }

  void TooLarge() {
    Reply(
        413,
        nlohmann::json{{"message", "the request body is larger than " + Size(body_limit_)}}.dump() +
            "\n",
        false);
  }

  void OnHeader(beast::error_code ec) {
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
    if (streamed_->wants) {
      ApiRequest head = HeadOf(header_->get());
      if (streamed_->wants(head)) {
        TakeOver(std::move(head));
        return;
      }
    }
    // Beast checks a declared length against the limit with the head, which
    // was read without one.
    if (auto length = header_->content_length(); length && *length > body_limit_) {
      TooLarge();
      return;
    }
    parser_.emplace(std::move(*header_));
    header_.reset();
    parser_->body_limit(body_limit_);
    if (parser_->is_done()) {  // no body
      OnRead({});
      return;
    }
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  // The connection goes to the streamed route's handler on a worker of
  // the streamed routes' own (a clone that takes its time holds none of the
  // pages' workers), and closes after it.
  void TakeOver(ApiRequest head) {
    stream_.expires_never();
    asio::post(*streamers_, [self = shared_from_this(), head = std::move(head)]() {
      const int fd = self->stream_.socket().native_handle();
      {
        std::lock_guard lock(self->gate_->mu);
        if (!self->gate_->alive) return;
        self->gate_->streamed.insert(fd);
      }
      {
        const unsigned version = self->header_->get().version();
        SyncExchange x(fd, self->buffer_, std::move(*self->header_), version);
        try {
          self->streamed_->handle(head, x);
        } catch (const std::exception& e) {
          // A surprise in the handler ends this exchange, not the server.
          if (!x.sent()) {
            ApiResponse out;
            out.status = 500;
            out.content_type = "text/plain; charset=utf-8";
            out.body = std::string("kiln: ") + e.what() + "\n";
            (void)x.Reply(out);
          }
        }
        x.Linger();
      }
      std::lock_guard lock(self->gate_->mu);
      self->gate_->streamed.erase(fd);
      if (!self->gate_->alive) return;
      asio::post(self->stream_.get_executor(), [self] { self->Close(); });
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      TooLarge();
      return;
    }
    if (ec) {
      Close();
      return;
    }
    const auto& req = parser_->get();
    ApiRequest in = HeadOf(req);
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
    SetHead(res_, out);
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
  std::optional<http::request_parser<http::empty_body>> header_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  const ApiServer::Handler* handler_;
  const ApiServer::StreamedRoute* streamed_;
  const uint64_t body_limit_;
  asio::thread_pool* workers_;
  asio::thread_pool* streamers_;  // null without a streamed route
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
  ApiServer::StreamedRoute streamed;
  uint64_t body_limit = ApiServer::kDefaultBodyLimit;
  std::thread thread;
  std::unique_ptr<asio::thread_pool> workers;
  std::unique_ptr<asio::thread_pool> streamers;
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
        std::make_shared<Session>(std::move(socket), &handler, &streamed, body_limit, workers.get(),
                                  streamers.get(), gate)
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
    // A transfer under way ends at its next read or write.
    for (int fd : impl_->gate->streamed) ::shutdown(fd, SHUT_RDWR);
  }
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->workers->stop();
  impl_->workers->join();
  if (impl_->streamers) impl_->streamers->join();
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
                                                    uint64_t body_limit, int workers,
                                                    StreamedRoute streamed) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Error::Invalid("listen address " + Quote(listen) + ": expected HOST:PORT");
  }
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->streamed = std::move(streamed);
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
  if (impl->streamed.wants) impl->streamers = std::make_unique<asio::thread_pool>(kStreamers);
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

}  // namespace kiln::forge
