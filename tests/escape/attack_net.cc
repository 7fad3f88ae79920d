// Network attacks: reaching the host's loopback services (TCP, abstract
// unix sockets), the host's own address, raw and packet sockets, and the
// socket families the policy refuses (netlink, vsock, AF_ALG, ...).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "tests/escape/attack.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif

namespace kiln::attack {

namespace {

// Connects with a deadline; returns 0 or the errno.
int ConnectWithin(int fd, const sockaddr* addr, socklen_t len, int ms) {
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  if (connect(fd, addr, len) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd p{fd, POLLOUT, 0};
  if (poll(&p, 1, ms) != 1) return ETIMEDOUT;
  int err = 0;
  socklen_t n = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n);
  return err;
}

void TryConnect(int family, const sockaddr* addr, socklen_t len, const std::string& what,
                const std::string& payload, Verdict& v) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return v.Blocked("socket for " + what, errno);
  int err = ConnectWithin(fd, addr, len, 2000);
  if (err == 0) {
    (void)!write(fd, payload.data(), payload.size());
    v.Escaped("connected to " + what);
  } else {
    v.Blocked("connect(" + what + ")", err);
  }
  close(fd);
}

// The sandbox's own loopback works: otherwise a refused connection would
// prove nothing.
bool LoopbackWorks(Verdict& v) {
  int srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  if (srv < 0 || bind(srv, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(srv, 1) != 0 ||
      getsockname(srv, reinterpret_cast<sockaddr*>(&a), &n) != 0) {
    v.Error(Errno("listening on the sandbox's own 127.0.0.1", errno));
    return false;
  }
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int err = ConnectWithin(c, reinterpret_cast<sockaddr*>(&a), sizeof a, 2000);
  close(c);
  close(srv);
  if (err != 0) v.Error(Errno("connecting to the sandbox's own listener", err));
  return err == 0;
}

void HostLoopback(const Args& args, Verdict& v) {
  // Arguments: tcp4=PORT tcp6=PORT udp4=PORT abstract=NAME ip=ADDR:PORT payload=TEXT
  if (!LoopbackWorks(v)) return;
  std::string payload = "kiln-escape";
  for (const std::string& a : args) {
    if (a.rfind("payload=", 0) == 0) payload = a.substr(8);
  }
  for (const std::string& a : args) {
    size_t eq = a.find('=');
    std::string kind = a.substr(0, eq), value = a.substr(eq + 1);
    if (kind == "tcp4" || kind == "udp4") {
      sockaddr_in s{};
      s.sin_family = AF_INET;
      s.sin_port = htons(static_cast<uint16_t>(std::stoi(value)));
      s.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (kind == "tcp4") {
        TryConnect(AF_INET, reinterpret_cast<sockaddr*>(&s), sizeof s,
                   "the host's 127.0.0.1:" + value, payload, v);
      } else {
        // UDP has no answer to wait for: the host checks what it received.
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ssize_t sent = sendto(fd, payload.data(), payload.size(), 0,
                              reinterpret_cast<sockaddr*>(&s), sizeof s);
        std::fprintf(stderr, "kiln-attack: udp to 127.0.0.1:%s: %s\n", value.c_str(),
                     sent < 0 ? std::strerror(errno) : "sent (to the sandbox's own loopback)");
        close(fd);
      }
    } else if (kind == "tcp6") {
      sockaddr_in6 s{};
      s.sin6_family = AF_INET6;
      s.sin6_port = htons(static_cast<uint16_t>(std::stoi(value)));
      s.sin6_addr = in6addr_loopback;
      TryConnect(AF_INET6, reinterpret_cast<sockaddr*>(&s), sizeof s, "the host's [::1]:" + value,
                 payload, v);
    } else if (kind == "abstract") {
      sockaddr_un s{};
      s.sun_family = AF_UNIX;
      std::memcpy(s.sun_path + 1, value.data(), std::min(value.size(), sizeof s.sun_path - 2));
      auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + value.size());
      TryConnect(AF_UNIX, reinterpret_cast<sockaddr*>(&s), len,
                 "the host's abstract socket @" + value, payload, v);
    } else if (kind == "ip") {
      size_t colon = value.rfind(':');
      sockaddr_in s{};
      s.sin_family = AF_INET;
      s.sin_port = htons(static_cast<uint16_t>(std::stoi(value.substr(colon + 1))));
      inet_pton(AF_INET, value.substr(0, colon).c_str(), &s.sin_addr);
      TryConnect(AF_INET, reinterpret_cast<sockaddr*>(&s), sizeof s, "the host's address " + value,
                 payload, v);
    } else if (kind != "payload") {
      v.Error("unknown target " + a);
    }
  }
}

struct SocketKind {
  int family, type, protocol;
  const char* what;
};

void TrySockets(const SocketKind* kinds, size_t n, Verdict& v) {
  for (size_t i = 0; i < n; ++i) {
    const SocketKind& k = kinds[i];
    KILN_TRY(v, std::string("socket(") + k.what + ")",
             socket(k.family, k.type | SOCK_CLOEXEC, k.protocol));
  }
}

void RawSocket(const Args&, Verdict& v) {
  const SocketKind kinds[] = {
      {AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), "AF_PACKET, SOCK_RAW"},
      {AF_PACKET, SOCK_DGRAM, htons(ETH_P_ALL), "AF_PACKET, SOCK_DGRAM"},
      {AF_INET, SOCK_RAW, IPPROTO_RAW, "AF_INET, SOCK_RAW, IPPROTO_RAW"},
      {AF_INET, SOCK_RAW, IPPROTO_ICMP, "AF_INET, SOCK_RAW, IPPROTO_ICMP"},
      {AF_INET6, SOCK_RAW, IPPROTO_RAW, "AF_INET6, SOCK_RAW, IPPROTO_RAW"},
      // The kernel turns this obsolete form into a packet socket after the
      // filter has seen AF_INET.
      {AF_INET, SOCK_PACKET, htons(ETH_P_ALL), "AF_INET, SOCK_PACKET"},
  };
  TrySockets(kinds, sizeof kinds / sizeof kinds[0], v);
}

void SocketFamilies(const Args&, Verdict& v) {
  const SocketKind kinds[] = {
      {AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, "AF_NETLINK, NETLINK_ROUTE"},
      {AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT, "AF_NETLINK, NETLINK_KOBJECT_UEVENT"},
      {AF_NETLINK, SOCK_RAW, NETLINK_AUDIT, "AF_NETLINK, NETLINK_AUDIT"},
      {AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER, "AF_NETLINK, NETLINK_NETFILTER"},
      {AF_VSOCK, SOCK_STREAM, 0, "AF_VSOCK (the hypervisor)"},
      {AF_ALG, SOCK_SEQPACKET, 0, "AF_ALG"},
      {AF_KEY, SOCK_RAW, 2, "AF_KEY"},
      {AF_XDP, SOCK_RAW, 0, "AF_XDP"},
      {AF_TIPC, SOCK_RDM, 0, "AF_TIPC"},
      {AF_RDS, SOCK_SEQPACKET, 0, "AF_RDS"},
      {AF_CAN, SOCK_RAW, 1, "AF_CAN"},
      {AF_BLUETOOTH, SOCK_RAW, 0, "AF_BLUETOOTH"},
      {AF_LLC, SOCK_DGRAM, 0, "AF_LLC"},
      {AF_APPLETALK, SOCK_DGRAM, 0, "AF_APPLETALK"},
  };
  TrySockets(kinds, sizeof kinds / sizeof kinds[0], v);
  int sv[2];
  KILN_TRY(v, "socketpair(AF_NETLINK)", socketpair(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, sv));
}

}  // namespace

void AddNetAttacks(std::vector<Attack>& out) {
  out.insert(out.end(), {
                            {"host-loopback", HostLoopback},
                            {"raw-socket", RawSocket},
                            {"socket-families", SocketFamilies},
                        });
}

}  // namespace kiln::attack
