// The web view's benchmark driver (tests/bench/web.sh): prints one JSON
// object.
//
//   kiln_web_bench DIR [RECORDS] [PAGES] [EVENTS_PER_S] [SECONDS]
//
// page: a finished run whose log holds RECORDS records; its run page asked
// for over HTTP on loopback, cold (the log read and verified) and warm.
// fanout: PAGES event streams (in a child process) on a running run while a
// thread appends EVENTS_PER_S records a second for SECONDS; every page must
// see every item; the controller's added CPU per record is the process's
// CPU less the writer thread's and less the same streams' idle CPU.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/forge/api.h"
#include "controller/forge/users.h"
#include "controller/sessionlog/signer.h"
#include "controller/sessionlog/writer.h"
#include "controller/store/store.h"
#include "controller/web/site.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "kiln_web_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(kiln::Result<T> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.error().message());
  return std::move(*r);
}

double CpuMs(int who) {
  rusage ru{};
  ::getrusage(who, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

double ThreadCpuMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) Die("connect");
  return fd;
}

// One HTTP/1.1 GET; the whole reply.
std::string Get(uint16_t port, const std::string& target, const std::string& token) {
  int fd = Connect(port);
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer " + token +
                    "\r\nConnection: close\r\n\r\n";
  if (::write(fd, req.data(), req.size()) < 0) Die("write");
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

void Append(kiln::sessionlog::Writer& log, uint64_t i) {
  std::string id = "c" + std::to_string(i);
  if (i % 2 == 0) {
    Must(log.Append("tool.call", {{"turn", i / 2},
                                  {"call_id", id},
                                  {"tool", "shell"},
                                  {"input", {{"command", "echo " + std::to_string(i)}}}}),
         "append");
  } else {
    Must(log.Append("tool.result", {{"call_id", "c" + std::to_string(i - 1)},
                                    {"exit_status", 0},
                                    {"output", std::string(200, 'x')}}),
         "append");
  }
}

// The child: pages streams, each reading until it has seen `want` items
// (or 60 s). Writes the fewest any stream saw, as text, to out_fd.
[[noreturn]] void Readers(uint16_t port, const std::string& run, const std::string& token,
                          int pages, size_t want, int ready_fd, int out_fd) {
  std::vector<int> fds;
  std::vector<std::string> bufs(static_cast<size_t>(pages));
  std::vector<std::set<std::string>> seen(static_cast<size_t>(pages));
  std::string req = "GET /api/v1/runs/" + run +
                    "/events HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer " + token + "\r\n\r\n";
  for (int i = 0; i < pages; ++i) {
    int fd = Connect(port);
    if (::write(fd, req.data(), req.size()) < 0) Die("write");
    fds.push_back(fd);
  }
  char one = 1;
  if (::write(ready_fd, &one, 1) < 0) Die("ready");
  auto deadline = Clock::now() + std::chrono::seconds(60);
  char buf[65536];
  auto done = [&] {
    for (const auto& s : seen) {
      if (s.size() < want) return false;
    }
    return true;
  };
  while (!done() && Clock::now() < deadline) {
    std::vector<pollfd> p;
    for (int fd : fds) p.push_back({fd, POLLIN, 0});
    ::poll(p.data(), p.size(), 200);
    for (size_t i = 0; i < p.size(); ++i) {
      if (!p[i].revents) continue;
      ssize_t n = ::read(fds[i], buf, sizeof buf);
      if (n <= 0) continue;
      bufs[i].append(buf, static_cast<size_t>(n));
      for (size_t at; (at = bufs[i].find("\"id\":\"t")) != std::string::npos;) {
        size_t end = bufs[i].find('"', at + 6);
        if (end == std::string::npos) break;
        seen[i].insert(bufs[i].substr(at + 6, end - at - 6));
        bufs[i].erase(0, end);
      }
    }
  }
  size_t fewest = SIZE_MAX;
  for (const auto& s : seen) fewest = std::min(fewest, s.size());
  std::string msg = std::to_string(fewest);
  if (::write(out_fd, msg.data(), msg.size()) < 0) Die("result");
  std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Die("usage: kiln_web_bench DIR [RECORDS] [PAGES] [EVENTS_PER_S] [SECONDS]");
  const std::string dir = argv[1];
  const uint64_t records = argc > 2 ? std::stoull(argv[2]) : 10'000;
  const int pages = argc > 3 ? std::stoi(argv[3]) : 50;
  const uint64_t rate = argc > 4 ? std::stoull(argv[4]) : 1'000;
  const int seconds = argc > 5 ? std::stoi(argv[5]) : 5;
  const std::string store_path = dir + "/kiln.db";
  auto store = Must(kiln::store::OpenSqlite(store_path), "store");
  auto users = Must(kiln::forge::Users::Open(store_path), "users");
  const std::string token = Must(users->Add("bench", false, 1), "user");
  auto signer_u = Must(kiln::sessionlog::LoadOrCreateSigner(dir + "/keys"), "key");
  std::shared_ptr<const kiln::sessionlog::Signer> signer(std::move(signer_u));
  kiln::web::SiteOptions so;
  so.store_path = store_path;
  so.key_dir = dir + "/keys";
  auto site = Must(kiln::web::Site::Open(*store, so), "site");
  kiln::web::Site* raw = site.get();
  auto server =
      Must(kiln::forge::ApiServer::Start(
               "127.0.0.1:0", [raw](const kiln::forge::ApiRequest& r) { return raw->Handle(r); },
               1 << 20, 4),
           "server");
  const uint16_t port = server->port();
  kiln::store::RunRequest req;
  req.role = "bench";
  req.repo = "/bench";
  req.commit = "HEAD";
  req.task = "bench";
  json out;

  // A finished run whose log holds `records` records: its id.
  auto finished_run = [&](const std::string& name) {
    auto run = Must(store->Enqueue(req, 1), "enqueue");
    Must(store->Start(run.id, "bench:1", 2), "start");
    const std::string log_path = dir + "/" + name + ".log";
    auto log = Must(kiln::sessionlog::Writer::Create(log_path, run.id, signer), "log");
    Must(log->Append("run.start", {{"run_id", run.id}, {"budgets", {{"max_turns", 50}}}}), "start");
    for (uint64_t i = 0; i + 2 < records; ++i) Append(*log, i);
    Must(log->Close({{"status", "succeeded"}}), "close");
    kiln::store::Progress pr;
    pr.log_path = log_path;
    if (!store->SetProgress(run.id, pr).ok()) Die("progress");
    kiln::store::Finish f{kiln::store::Status::kSucceeded, "submitted", nullptr, "", ""};
    if (!store->Complete(run.id, f, 3).ok()) Die("complete");
    return run.id;
  };

  // The page of a finished run with a long log, over HTTP.
  {
    const std::string id = finished_run("page");
    auto t0 = Clock::now();
    std::string cold = Get(port, "/runs/" + id, token);
    auto t1 = Clock::now();
    std::string warm = Get(port, "/runs/" + id, token);
    auto t2 = Clock::now();
    if (cold.find("200 OK") == std::string::npos || cold.find("verified") == std::string::npos) {
      Die("the run page: " + cold.substr(0, 300));
    }
    out["page"] = {{"records", records},
                   {"cold_ms", std::chrono::duration<double, std::milli>(t1 - t0).count()},
                   {"warm_ms", std::chrono::duration<double, std::milli>(t2 - t1).count()},
                   {"html_bytes", warm.size()}};
  }

  // The same page of another such run, opened in chromium: the first
  // opening cold, the next ones warm (KILN_BENCH_WEB_BROWSER: the command
  // that opens it, tests/browser/open-time.mjs).
  if (const char* browser = std::getenv("KILN_BENCH_WEB_BROWSER"); browser && *browser) {
    const std::string url =
        "http://127.0.0.1:" + std::to_string(port) + "/runs/" + finished_run("browser");
    const std::string cmd = std::string(browser) + " '" + url + "' '" + token + "' 6";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) Die("popen " + cmd);
    std::string text;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
    if (::pclose(p) != 0) Die("the browser: " + cmd);
    json opened = json::parse(text, nullptr, false);
    if (opened.is_discarded() || !opened.contains("openings")) Die("the browser said " + text);
    out["browser"] = opened["openings"];
  }

  // Fan-out to many pages of one running run.
  {
    auto run = Must(store->Enqueue(req, 1), "enqueue");
    Must(store->Start(run.id, "bench:1", 2), "start");
    const std::string log_path = dir + "/live.log";
    auto log = Must(kiln::sessionlog::Writer::Create(log_path, run.id, signer), "log");
    Must(log->Append("run.start", {{"run_id", run.id}}), "start");
    kiln::store::Progress pr;
    pr.log_path = log_path;
    if (!store->SetProgress(run.id, pr).ok()) Die("progress");
    const uint64_t total = rate * static_cast<uint64_t>(seconds);
    int ready[2], result[2];
    if (::pipe(ready) != 0 || ::pipe(result) != 0) Die("pipe");
    pid_t child = ::fork();
    if (child == 0) Readers(port, run.id, token, pages, total / 2, ready[1], result[1]);
    char c;
    if (::read(ready[0], &c, 1) != 1) Die("readers");
    // Idle: the streams open, nothing written.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    double idle0 = CpuMs(RUSAGE_SELF);
    auto i0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    double idle_ms_per_s =
        (CpuMs(RUSAGE_SELF) - idle0) / std::chrono::duration<double>(Clock::now() - i0).count();
    // Busy: the writer at rate.
    double writer_cpu = 0;
    double cpu0 = CpuMs(RUSAGE_SELF);
    auto w0 = Clock::now();
    std::thread writer([&] {
      double t = ThreadCpuMs();
      for (uint64_t i = 0; i < total; ++i) {
        Append(*log, i);
        std::this_thread::sleep_until(w0 + std::chrono::microseconds(i * 1'000'000 / rate));
      }
      writer_cpu = ThreadCpuMs() - t;
    });
    writer.join();
    std::string fewest(32, '\0');
    ssize_t n = ::read(result[0], fewest.data(), fewest.size());
    fewest.resize(n > 0 ? static_cast<size_t>(n) : 0);
    auto w1 = Clock::now();
    double cpu = CpuMs(RUSAGE_SELF) - cpu0;
    double secs = std::chrono::duration<double>(w1 - w0).count();
    int ws = 0;
    ::waitpid(child, &ws, 0);
    double added = cpu - writer_cpu - idle_ms_per_s * secs;
    out["fanout"] = {
        {"pages", pages},
        {"records", total},
        {"items", total / 2},
        {"fewest_items_seen", std::stoull(fewest.empty() ? "0" : fewest)},
        {"seconds", secs},
        {"process_cpu_ms", cpu},
        {"writer_cpu_ms", writer_cpu},
        {"idle_cpu_ms_per_s", idle_ms_per_s},
        {"added_cpu_us_per_record", added * 1000.0 / static_cast<double>(total)},
        {"writer_cpu_us_per_record", writer_cpu * 1000.0 / static_cast<double>(total)}};
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
