// Escape suite, network attacks: the host's loopback services, the host's
// own address, raw sockets and the socket families the policy refuses.
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "tests/escape/escape_support.h"

namespace kiln::testing::escape {
namespace {

class EscapeNet : public EscapeTest {};

// A socket bound on the host; port 0 picks a free one.
class HostSocket {
 public:
  HostSocket(int family, int type, const std::string& addr) {
    fd_ = ::socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (family == AF_INET) {
      auto* s = reinterpret_cast<sockaddr_in*>(&ss);
      s->sin_family = AF_INET;
      ::inet_pton(AF_INET, addr.c_str(), &s->sin_addr);
      len = sizeof *s;
    } else if (family == AF_INET6) {
      auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
      s->sin6_family = AF_INET6;
      ::inet_pton(AF_INET6, addr.c_str(), &s->sin6_addr);
      len = sizeof *s;
    } else {
      auto* s = reinterpret_cast<sockaddr_un*>(&ss);
      s->sun_family = AF_UNIX;
      std::memcpy(s->sun_path + 1, addr.data(), addr.size());  // abstract
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + addr.size());
    }
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) == 0 &&
          (type == SOCK_DGRAM || ::listen(fd_, 8) == 0);
    if (ok_ && family != AF_UNIX) {
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
      port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                      : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    }
  }
  ~HostSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  HostSocket(const HostSocket&) = delete;
  HostSocket& operator=(const HostSocket&) = delete;

  bool ok() const { return ok_; }
  std::string port() const { return std::to_string(port_); }
  // Whether anything arrived: a pending connection or a datagram.
  bool Reached() const {
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) {
      ::close(c);
      return true;
    }
    char b[64];
    return ::recv(fd_, b, sizeof b, MSG_DONTWAIT) >= 0;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  bool ok_ = false;
};

// The host's first non-loopback IPv4 address, if it has one.
std::string HostAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    if (std::string(buf).rfind("127.", 0) != 0) found = buf;
  }
  ::freeifaddrs(list);
  return found;
}

TEST_F(EscapeNet, HostLoopbackServicesAreUnreachable) {
  // Layer: the network namespace. The sandbox's 127.0.0.1 is its own (the
  // attack checks it works), and abstract unix sockets are per namespace.
  HostSocket tcp4(AF_INET, SOCK_STREAM, "127.0.0.1");
  HostSocket udp4(AF_INET, SOCK_DGRAM, "127.0.0.1");
  HostSocket tcp6(AF_INET6, SOCK_STREAM, "::1");
  HostSocket any(AF_INET, SOCK_STREAM, "0.0.0.0");
  std::string abstract = "kiln-escape-" + std::to_string(getpid());
  HostSocket unix_abstract(AF_UNIX, SOCK_STREAM, abstract);
  ASSERT_TRUE(tcp4.ok() && udp4.ok() && any.ok() && unix_abstract.ok());

  std::vector<std::string> args = {"tcp4=" + tcp4.port(), "udp4=" + udp4.port(),
                                   "abstract=" + abstract};
  std::vector<std::string> expect = {
      "connect(the host's 127.0.0.1:" + tcp4.port() + "): Connection refused",
      "connect(the host's abstract socket @" + abstract + "): Connection refused"};
  if (tcp6.ok()) {
    args.push_back("tcp6=" + tcp6.port());
    expect.push_back("connect(the host's [::1]:" + tcp6.port() + ")");
  }
  std::string host_ip = HostAddress();
  if (!host_ip.empty()) {
    args.push_back("ip=" + host_ip + ":" + any.port());
    expect.push_back("connect(the host's address " + host_ip + ":" + any.port() +
                     "): Network is unreachable");
  }
  EXPECT_TRUE(Blocked(Attack("host-loopback", args), expect));
  EXPECT_FALSE(tcp4.Reached());
  EXPECT_FALSE(udp4.Reached()) << "a datagram from the sandbox reached the host's 127.0.0.1";
  EXPECT_FALSE(unix_abstract.Reached());
  EXPECT_FALSE(any.Reached());
  if (tcp6.ok()) {
    EXPECT_FALSE(tcp6.Reached());
  }
}

TEST_F(EscapeNet, RawAndPacketSocketsAreRefused) {
  // AF_PACKET: seccomp. Raw IP: no CAP_NET_RAW. SOCK_PACKET on AF_INET is
  // turned into a packet socket by the kernel after the filter saw AF_INET:
  // only the missing capability stops it.
  EXPECT_TRUE(Blocked(Attack("raw-socket"),
                      {"socket(AF_PACKET, SOCK_RAW): Operation not permitted",
                       "socket(AF_INET, SOCK_RAW, IPPROTO_RAW): Operation not permitted",
                       "socket(AF_INET6, SOCK_RAW, IPPROTO_RAW): Operation not permitted",
                       "socket(AF_INET, SOCK_PACKET): Operation not permitted"}));
}

TEST_F(EscapeNet, OtherSocketFamiliesAreRefused) {
  // Netlink reaches the kernel's network and audit configuration, vsock the
  // hypervisor; AF_ALG and friends are attack surface without a use here.
  EXPECT_TRUE(Blocked(Attack("socket-families"),
                      {"socket(AF_NETLINK, NETLINK_ROUTE): Operation not permitted",
                       "socket(AF_VSOCK (the hypervisor)): Operation not permitted",
                       "socket(AF_ALG): Operation not permitted",
                       "socketpair(AF_NETLINK): Operation not permitted"}));
}

}  // namespace
}  // namespace kiln::testing::escape
