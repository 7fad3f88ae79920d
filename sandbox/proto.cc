#include "sandbox/proto.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::sandbox::proto {

int Send(int sock, const Message& msg, int fd) {
  iovec iov{const_cast<Message*>(&msg), sizeof msg};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (fd >= 0) {
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    __builtin_memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  for (;;) {
    if (sendmsg(sock, &mh, MSG_NOSIGNAL) >= 0) return 0;
    if (errno != EINTR) return -errno;
  }
}

int Receive(int sock, Message* msg, int* fd) {
  *fd = -1;
  iovec iov{msg, sizeof *msg};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  if (n == 0) return 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      __builtin_memcpy(fd, CMSG_DATA(c), sizeof *fd);
    }
  }
  if (static_cast<size_t>(n) != sizeof *msg) return -EPROTO;
  msg->text[sizeof msg->text - 1] = '\0';
  return 1;
}

}  // namespace kiln::sandbox::proto
