// kiln-attack: the escape suite's attacker. One invocation performs one
// attack for real, from inside a kiln sandbox, and prints exactly one line
// on stdout:
//
//   BLOCKED <how>   exit 0: every attempt failed; <how> lists each attempt
//                   and the error that stopped it ("mount(tmpfs, /tmp):
//                   Operation not permitted; ...").
//   ESCAPED <what>  exit 1: at least one attempt got through.
//   ERROR <why>     exit 2: the attack could not be carried out (a control
//                   that must work did not), so it proves nothing.
//
// Details of each attempt go to stderr. Plain C++ and libc, raw syscall()
// where glibc has no wrapper; no test framework, since it runs inside.
//
// Arguments of the form "marker:<text>" are ignored: the tests add one so
// that every process of an attack is found by its command line.
#pragma once

#include <string>
#include <vector>

namespace kiln::attack {

// The outcome of one attack's attempts.
class Verdict {
 public:
  // An attempt failed the way the sandbox intends.
  void Blocked(const std::string& step, int err);
  void Blocked(const std::string& step, const std::string& why);
  // An attempt got through.
  void Escaped(const std::string& what);
  // The attack could not run as designed.
  void Error(const std::string& why);
  // rc < 0: Blocked(step, err); otherwise Escaped(step + " succeeded").
  // Returns true when blocked.
  bool Expect(const std::string& step, long rc, int err);
  // Like Expect, but only `blocked_errno` counts as blocked; another error
  // means the call got past the permission check, which is an escape.
  bool ExpectErrno(const std::string& step, long rc, int err, int blocked_errno);

  bool escaped() const { return !escaped_.empty(); }
  // Prints the line and returns the exit status.
  int Finish() const;

 private:
  std::vector<std::string> blocked_, escaped_, errors_;
};

// Evaluates expr once and records its outcome with the errno it left.
#define KILN_TRY(v, step, expr)              \
  do {                                       \
    errno = 0;                               \
    long kiln_rc_ = static_cast<long>(expr); \
    int kiln_err_ = errno;                   \
    (v).Expect((step), kiln_rc_, kiln_err_); \
  } while (0)

#define KILN_TRY_ERRNO(v, step, expr, blocked_errno)               \
  do {                                                             \
    errno = 0;                                                     \
    long kiln_rc_ = static_cast<long>(expr);                       \
    int kiln_err_ = errno;                                         \
    (v).ExpectErrno((step), kiln_rc_, kiln_err_, (blocked_errno)); \
  } while (0)

using Args = std::vector<std::string>;
using AttackFn = void (*)(const Args& args, Verdict& v);

struct Attack {
  const char* name;
  AttackFn fn;
};

// One table per family of attacks (attack_<family>.cc).
void AddFsAttacks(std::vector<Attack>& out);
void AddProcAttacks(std::vector<Attack>& out);
void AddKernelAttacks(std::vector<Attack>& out);
void AddNetAttacks(std::vector<Attack>& out);

// --- helpers shared by the families -------------------------------------

// "what: strerror(err)".
std::string Errno(const std::string& what, int err);
// Reads up to `max` bytes of a file; false (and errno) when it cannot.
bool ReadSome(const std::string& path, std::string* out, size_t max = 4096);
// Reads what is left in an open fd, up to `max` bytes.
std::string ReadFd(int fd, size_t max = 1 << 20);
// Opens path for writing and writes value: Escaped when that works.
void WriteKnob(const std::string& path, const std::string& value, Verdict& v);
// Numeric entries of /proc.
std::vector<int> VisiblePids();
// Parses a decimal argument; exits with ERROR on garbage.
long ArgNumber(const Args& args, size_t i, const char* what);
// Runs fn in a child process; returns its wait status. The child's stdout
// is captured into *out when out is not null.
int InChild(void (*fn)(void* ctx), void* ctx, std::string* out = nullptr);

}  // namespace kiln::attack
