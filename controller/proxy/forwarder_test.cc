// kiln-proxy-forward, run as a sandbox would run it (minus the sandbox): a
// command that uses the proxy through it, exit statuses, signals, half-close.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "controller/proxy/proxy.h"
#include "controller/proxy/test_servers.h"

namespace kiln::proxy {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

using testing::EchoServer;
using testing::HttpUpstream;
using testing::Recorder;
using testing::TempDir;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

class ForwarderTest : public ::testing::Test {
 protected:
  // Starts kiln-proxy-forward on 127.0.0.1:port with the command, its stdout
  // and stderr going to files; only stdio is inherited.
  pid_t Start(uint16_t port, const std::vector<std::string>& command) {
    std::vector<std::string> args = {
        KILN_PROXY_FORWARD, "--listen", "127.0.0.1:" + std::to_string(port),
        "--socket",         socket(),   "--"};
    args.insert(args.end(), command.begin(), command.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::string out = stdout_path();
    std::string err = stderr_path();
    pid_t pid = ::fork();
    if (pid == 0) {
      int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out_fd, 1);
      ::dup2(err_fd, 2);
      ::close_range(3, ~0U, 0);
      ::execv(argv[0], argv.data());
      ::_exit(99);
    }
    EXPECT_GT(pid, 0);
    return pid;
  }

  // The forwarder's exit status (it always exits, never dies by a signal).
  int Wait(pid_t pid) {
    int status = 0;
    bool exited = testing::Eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                                      std::chrono::seconds(20));
    if (!exited) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << "kiln-proxy-forward did not exit";
    }
    EXPECT_TRUE(WIFEXITED(status)) << "status " << status;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  int Run(const std::vector<std::string>& command) {
    return Wait(Start(testing::FreePort(), command));
  }

  std::unique_ptr<Endpoint> Open(std::vector<std::string> rules) {
    Policy policy;
    for (const std::string& text : rules) policy.allow.push_back(*ParseRule(text, "test"));
    auto endpoint = proxy_.Open(socket(), policy, recorder_.Callback());
    EXPECT_TRUE(endpoint.ok()) << endpoint.error().message();
    return endpoint.ok() ? std::move(*endpoint) : nullptr;
  }

  std::string socket() const { return dir_ / "proxy.sock"; }
  std::string stdout_path() const { return dir_ / "stdout"; }
  std::string stderr_path() const { return dir_ / "stderr"; }

  TempDir dir_;
  Recorder recorder_;
  Proxy proxy_{2};
};

TEST_F(ForwarderTest, CurlInsideReachesAllowedHostsThroughTheProxy) {
  HttpUpstream upstream;
  auto endpoint = Open({"127.0.0.1:" + std::to_string(upstream.port())});
  uint16_t port = testing::FreePort();
  std::string proxy = "http://127.0.0.1:" + std::to_string(port);
  std::string url = "http://127.0.0.1:" + std::to_string(upstream.port());
  // Plain forwarding, then a CONNECT tunnel (-p), then a host not allowed.
  std::string script =
      "unset NO_PROXY no_proxy; curl -q -sS --proxy " + proxy + " " + url + "/plain && echo && " +
      "curl -q -sS -p --proxy " + proxy + " " + url + "/tunneled && echo && " +
      "curl -q -s -o /dev/null -w '%{http_code}' --proxy " + proxy + " http://127.0.0.2:1/";
  EXPECT_EQ(Wait(Start(port, {"sh", "-c", script})), 0) << Slurp(stderr_path());
  EXPECT_EQ(Slurp(stdout_path()), "hello\nhello\n403");

  // Reported as each ends: the tunnel's only when curl has closed it.
  std::vector<Request> records = recorder_.WaitFor(3);
  ASSERT_EQ(records.size(), 3u);
  std::map<std::string, Request> by_kind;
  for (const Request& r : records) by_kind[r.allowed ? r.method : "denied"] = r;
  EXPECT_EQ(by_kind["GET"].path, "/plain");
  EXPECT_EQ(by_kind["GET"].status, 200);
  EXPECT_EQ(by_kind["CONNECT"].status, 200);
  EXPECT_GT(by_kind["CONNECT"].bytes_received, 0u);
  EXPECT_EQ(by_kind["denied"].host, "127.0.0.2");
  EXPECT_EQ(by_kind["denied"].status, 403);
}

TEST_F(ForwarderTest, RelaysHalfClosesAndForwardsSignals) {
  EchoServer echo;
  auto endpoint = Open({"127.0.0.1:" + std::to_string(echo.port())});
  uint16_t port = testing::FreePort();
  pid_t pid = Start(port, {"sleep", "60"});

  asio::io_context io;
  asio::ip::tcp::socket client(io);
  asio::ip::tcp::endpoint address(asio::ip::make_address("127.0.0.1"), port);
  ASSERT_TRUE(testing::Eventually([&] {
    boost::system::error_code ec;
    client.close(ec);
    client.connect(address, ec);
    return !ec;
  }));
  std::string authority = "127.0.0.1:" + std::to_string(echo.port());
  asio::write(client, asio::buffer("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority +
                                   "\r\n\r\nhalf-closed"));
  client.shutdown(asio::socket_base::shutdown_send);
  std::string received;
  boost::system::error_code ec;
  asio::read(client, asio::dynamic_buffer(received), ec);
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_EQ(received, "HTTP/1.1 200 Connection established\r\n\r\nhalf-closed");

  ::kill(pid, SIGTERM);  // passed on to sleep, which dies of it
  EXPECT_EQ(Wait(pid), 128 + SIGTERM);
}

TEST_F(ForwarderTest, ExitsWithTheCommandsStatus) {
  auto endpoint = Open({});
  EXPECT_EQ(Run({"sh", "-c", "exit 3"}), 3);
  EXPECT_EQ(Run({"sh", "-c", "kill -KILL $$"}), 128 + SIGKILL);
  EXPECT_EQ(Run({"true"}), 0);
}

TEST_F(ForwarderTest, ReportsCommandsThatCannotRunLikeAShell) {
  auto endpoint = Open({});
  EXPECT_EQ(Run({"kiln-no-such-command"}), 127);
  EXPECT_TRUE(Contains(Slurp(stderr_path()), "kiln-no-such-command: command not found"))
      << Slurp(stderr_path());
  EXPECT_EQ(Run({dir_ / "missing"}), 127);
  EXPECT_TRUE(Contains(Slurp(stderr_path()), "No such file or directory"));
  std::string script = dir_ / "not-executable";
  std::ofstream(script) << "#!/bin/sh\n";
  EXPECT_EQ(Run({script}), 126);
  EXPECT_TRUE(Contains(Slurp(stderr_path()), "Permission denied")) << Slurp(stderr_path());
}

TEST_F(ForwarderTest, FailsWith125WhenItCannotListen) {
  asio::io_context io;
  asio::ip::tcp::acceptor taken(io, {asio::ip::make_address("127.0.0.1"), 0});
  uint16_t port = taken.local_endpoint().port();
  EXPECT_EQ(Wait(Start(port, {"true"})), 125);
  EXPECT_TRUE(Contains(Slurp(stderr_path()),
                       "bind(127.0.0.1:" + std::to_string(port) + "): Address already in use"))
      << Slurp(stderr_path());
  EXPECT_EQ(Slurp(stdout_path()), "");

  EXPECT_EQ(Run({}), 125);  // no command after --
  EXPECT_TRUE(Contains(Slurp(stderr_path()), "usage:")) << Slurp(stderr_path());
}

TEST_F(ForwarderTest, LeaksNoDescriptorsIntoTheCommand) {
  auto endpoint = Open({});
  EXPECT_EQ(Run({"sh", "-c", "for f in /proc/$$/fd/*; do readlink $f; done; true"}), 0);
  std::string fds = Slurp(stdout_path());
  EXPECT_TRUE(Contains(fds, stdout_path())) << fds;  // what it may see: its stdio
  EXPECT_FALSE(Contains(fds, "socket:")) << fds;
  EXPECT_FALSE(Contains(fds, "anon_inode")) << fds;
}

}  // namespace
}  // namespace kiln::proxy
