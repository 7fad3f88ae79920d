#include "tests/modelserver/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "tests/modelserver/wire.h"

namespace kiln::modelserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Server::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
};

namespace {

// Sleeps up to ms, waking early when the server stops.
void Nap(uint64_t ms, const std::atomic<bool>& stopping) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!stopping && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Asks the player for the reply to rec and renders it (or the error that
// takes its place); records which conversation, cursor and step answered.
Rendered Answer(Player& player, Format f, RecordedRequest& rec, size_t request_bytes,
                std::optional<Reply>* reply) {
  RequestSeen seen;
  try {
    seen = Seen(f, rec.body);
  } catch (const std::exception& e) {  // a member of an unexpected JSON type
    return RenderError(f, 400, "", std::string("unexpected request body: ") + e.what(), rec.no);
  }
  Served served = player.Next(seen);
  rec.step = served.step;
  rec.conversation = served.conversation;
  rec.cursor = served.cursor;
  rec.notes = served.notes;
  std::string which;
  if (served.conversation) {
    which = " in conversations[" + std::to_string(*served.conversation) + "] (run " +
            served.cursor.substr(0, 12) + ")";
  } else if (player.conversations() > 0) {
    which = " (no conversation matched its system prompt or first user message)";
  }
  for (const auto& note : served.notes) {
    std::fprintf(stderr, "kiln-model-server: request %llu (%s, run %s): %s\n",
                 static_cast<unsigned long long>(rec.no), served.step.c_str(),
                 served.cursor.substr(0, 12).c_str(), note.c_str());
  }
  if (served.error) return RenderError(f, 500, "", *served.error, rec.no);
  if (!served.reply) {
    return RenderError(f, 500, "",
                       "the script has no reply left for request " + std::to_string(rec.no) + which,
                       rec.no);
  }
  *reply = std::move(served.reply);
  return Render(f, **reply, rec.body, rec.no, request_bytes);
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(Script script, Options opts) {
  std::unique_ptr<Server> s(new Server(std::move(script)));
  s->opts_ = opts;
  s->impl_ = std::make_unique<Impl>();
  try {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), opts.port);
    s->impl_->acceptor.open(ep.protocol());
    s->impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    s->impl_->acceptor.bind(ep);
    s->impl_->acceptor.listen();
    s->port_ = s->impl_->acceptor.local_endpoint().port();
  } catch (const std::exception& e) {
    return Error(Error::Code::kIO,
                 "listening on 127.0.0.1:" + std::to_string(opts.port) + ": " + e.what());
  }
  s->acceptor_thread_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  return s;
}

Server::Server(Script script) : player_(std::move(script)) {}

Server::~Server() { Stop(); }

std::string Server::anthropic_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
std::string Server::openai_url() const { return anthropic_url() + "/v1"; }

std::vector<RecordedRequest> Server::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void Server::Stop() {
  if (stopping_.exchange(true)) return;
  // shutdown() wakes the threads blocked in accept() and read().
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  if (acceptor_thread_.joinable()) acceptor_thread_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

void Server::AcceptLoop() {
  while (!stopping_) {
    boost::system::error_code ec;
    tcp::socket sock(impl_->io);
    impl_->acceptor.accept(sock, ec);
    if (ec || stopping_) break;
    sock.set_option(tcp::no_delay(true), ec);
    int fd = sock.release(ec);
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.push_back(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void Server::Serve(int fd) {
  asio::io_context io;
  tcp::socket sock(io, tcp::v4(), fd);
  beast::flat_buffer buf;
  for (;;) {
    boost::system::error_code ec;
    http::request_parser<http::string_body> parser;
    parser.body_limit(256u << 20);
    http::read(sock, buf, parser, ec);
    if (ec || stopping_) break;
    auto req = parser.release();
    RecordedRequest rec;
    rec.no = ++counter_;
    rec.method = std::string(req.method_string());
    rec.target = std::string(req.target());
    for (const auto& h : req) {
      std::string name(h.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      rec.headers[name] = std::string(h.value());
    }
    rec.body = nlohmann::json::parse(req.body(), nullptr, false);
    if (rec.body.is_discarded()) rec.body = nullptr;

    std::string target = rec.target.substr(0, rec.target.find('?'));
    // A client talking to us as its HTTP proxy sends the absolute form.
    if (target.rfind("http://", 0) == 0) {
      size_t slash = target.find('/', 7);
      target = slash == std::string::npos ? "/" : target.substr(slash);
    }
    Rendered out;
    uint64_t delay = 0;
    std::optional<Fault> fault;
    Format f = Format::kAnthropic;
    if (req.method() != http::verb::post ||
        (target != "/v1/messages" && target != "/v1/chat/completions" &&
         target != "/chat/completions")) {
      out = RenderError(f, 404, "not_found_error", "no route for " + rec.method + " " + target,
                        rec.no);
    } else {
      f = target == "/v1/messages" ? Format::kAnthropic : Format::kOpenAI;
      if (rec.body.is_null()) {
        out = RenderError(f, 400, "", "request body is not JSON", rec.no);
      } else {
        std::optional<Reply> reply;
        out = Answer(player_, f, rec, req.body().size(), &reply);
        if (reply) {
          delay = reply->delay_ms;
          fault = reply->fault;
        }
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(rec);
      if (!opts_.record_path.empty()) {
        nlohmann::json line = {{"no", rec.no},           {"target", rec.target},
                               {"headers", rec.headers}, {"body", rec.body},
                               {"step", rec.step},       {"conversation", nullptr},
                               {"cursor", nullptr}};
        if (rec.conversation) line["conversation"] = *rec.conversation;
        if (!rec.cursor.empty()) line["cursor"] = rec.cursor;
        if (!rec.notes.empty()) line["notes"] = rec.notes;
        std::ofstream log(opts_.record_path, std::ios::app);
        log << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      }
    }
    if (delay) Nap(delay, stopping_);
    bool cut = fault && fault->kind == "cut";
    bool stall = fault && fault->kind == "stall";
    size_t at = fault ? static_cast<size_t>(std::max(0, fault->after_events)) : 0;
    if (!out.stream) {
      http::response<http::string_body> res{static_cast<http::status>(out.status), req.version()};
      res.set(http::field::content_type, "application/json");
      for (const auto& [k, v] : out.headers) res.set(k, v);
      res.keep_alive(req.keep_alive() && !cut);
      res.body() = out.body;
      res.prepare_payload();
      if (cut || stall) {
        // Headers promise the whole body; half of it comes (after the stall).
        http::response_serializer<http::string_body> sr{res};
        http::write_header(sock, sr, ec);
        if (stall) Nap(fault->stall_ms, stopping_);
        if (cut) {
          asio::write(sock, asio::buffer(out.body.data(), out.body.size() / 2), ec);
          break;
        }
        asio::write(sock, asio::buffer(out.body), ec);
      } else {
        http::write(sock, res, ec);
      }
      if (ec || !res.keep_alive()) break;
      continue;
    }
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache");
    for (const auto& [k, v] : out.headers) res.set(k, v);
    res.chunked(true);
    res.keep_alive(req.keep_alive() && !cut);
    http::response_serializer<http::empty_body> sr{res};
    http::write_header(sock, sr, ec);
    for (size_t i = 0; i < out.events.size() && !ec; ++i) {
      if (i == at && cut) break;
      if (i == at && stall) Nap(fault->stall_ms, stopping_);
      asio::write(sock, http::make_chunk(asio::buffer(out.events[i])), ec);
    }
    if (cut || ec) break;  // closing without the last chunk: a cut stream
    asio::write(sock, http::make_chunk_last(), ec);
    if (ec || !res.keep_alive()) break;
  }
  boost::system::error_code ignored;
  sock.shutdown(tcp::socket::shutdown_both, ignored);
  std::lock_guard<std::mutex> lock(mu_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), sock.native_handle()),
                  open_fds_.end());
  sock.close(ignored);
}

}  // namespace kiln::modelserver
