#include "controller/store/run_id.h"

#include <errno.h>
#include <sys/random.h>
#include <time.h>

#include <cstdio>

namespace kiln::store {

Result<std::string> NewRunId(int64_t now_ms) {
  // Floor division, so that a time before the epoch still names its own second.
  int64_t secs = now_ms / 1000 - (now_ms % 1000 < 0 ? 1 : 0);
  time_t t = static_cast<time_t>(secs);
  struct tm tm {};
  // A year outside 1000..9999 would change the id's width: refuse it too.
  if (gmtime_r(&t, &tm) == nullptr || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999) {
    return Error::Invalid("run id: time " + std::to_string(now_ms) + " ms is out of range");
  }
  uint32_t random = 0;
  for (;;) {
    ssize_t n = getrandom(&random, sizeof random, 0);
    if (n == static_cast<ssize_t>(sizeof random)) break;
    if (n < 0 && errno != EINTR) return Error::Sys("getrandom(4 bytes)", errno);
  }
  char buf[96];  // room for any int, which GCC checks; the id itself is 25 bytes
  std::snprintf(buf, sizeof buf, "r%04d%02d%02dT%02d%02d%02d-%08x", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(random));
  return std::string(buf);
}

}  // namespace kiln::store
