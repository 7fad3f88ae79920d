// Messages between the supervisor and the sandbox's init over a
// SOCK_SEQPACKET socketpair: fixed-size records, one per datagram.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace kiln::sandbox::proto {

enum class Type : uint32_t {
  kGo = 1,    // supervisor -> init: ids mapped; set up the filesystem
  kJoined,    // supervisor -> init: in the cgroup; start the command
  kError,     // init or command -> supervisor: setup or exec failed; value = exit status,
              // text = why
  kExit,      // init -> supervisor: value = the command's wait status
  kListener,  // command -> supervisor: carries the seccomp listener fd (SCM_RIGHTS)
};

struct Message {
  Type type;
  int32_t value = 0;
  char text[500] = {};

  void SetText(std::string_view s) {
    size_t n = s.size() < sizeof text - 1 ? s.size() : sizeof text - 1;
    std::memcpy(text, s.data(), n);
    text[n] = '\0';
  }
  // Appends what fits; allocates nothing (used between fork and exec).
  void AppendText(const char* s) {
    size_t n = std::strlen(text);
    while (*s != '\0' && n < sizeof text - 1) text[n++] = *s++;
    text[n] = '\0';
  }
};

// Sends a message, optionally with one fd attached. Returns 0 or -errno.
// Async-signal-safe.
int Send(int sock, const Message& msg, int fd = -1);
// Receives one message and, if attached, an fd (else *fd = -1).
// Returns 1, 0 on EOF, or -errno.
int Receive(int sock, Message* msg, int* fd);

}  // namespace kiln::sandbox::proto
