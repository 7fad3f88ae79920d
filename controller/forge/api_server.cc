// The forge's HTTP API on a TCP port (Boost.Beast, one io thread). Reads and
// writes are asynchronous with deadlines, so a client that stalls holds
// nothing but its own connection, and only until its deadline.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <chrono>
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

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const ApiServer::Handler* handler, uint64_t body_limit)
      : stream_(std::move(socket)), handler_(handler), body_limit_(body_limit) {}

  void Read() {
    parser_.emplace();
    parser_->body_limit(body_limit_);
    parser_->header_limit(kHeaderLimit);
    stream_.expires_after(kIoTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

 private:
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
    ApiResponse out = (*handler_)(in);
    res_ = {};
    res_.version(req.version());
    res_.result(static_cast<unsigned>(out.status));
    res_.set(http::field::server, "kiln-forge");
    if (out.status != 204) res_.set(http::field::content_type, out.content_type);
    for (const auto& [name, value] : out.headers) res_.set(name, value);
    res_.body() = std::move(out.body);
    res_.keep_alive(req.keep_alive());
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

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  const ApiServer::Handler* handler_;
  const uint64_t body_limit_;
};

}  // namespace

struct ApiServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  ApiServer::Handler handler;
  uint64_t body_limit = ApiServer::kDefaultBodyLimit;
  std::thread thread;

  asio::steady_timer backoff{io};

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        // A response's head and body are separate writes: without this the
        // body waits for the client's delayed ACK.
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), &handler, body_limit)->Read();
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
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t ApiServer::port() const { return impl_->acceptor.local_endpoint().port(); }

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const std::string& listen,
                                                    std::string store_path, std::string repos_dir,
                                                    std::string bot) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Api> api,
                        Api::Open(std::move(store_path), std::move(repos_dir), std::move(bot)));
  std::shared_ptr<Api> shared = std::move(api);
  return Start(listen, [shared](const ApiRequest& r) { return shared->Handle(r); });
}

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const std::string& listen, Handler handler,
                                                    uint64_t body_limit) {
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
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

}  // namespace kiln::forge
