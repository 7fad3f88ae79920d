#include "sandbox/procfs.h"

#include <cstdlib>
#include <sstream>

#include "base/fd.h"

namespace kiln::sandbox::procfs {

namespace {

// Field n (n >= 3) as text, "" when absent.
std::string Field(const std::string& pid, int n) {
  auto stat = ReadFile("/proc/" + pid + "/stat");
  if (!stat) return "";
  size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 > stat->size()) return "";
  std::istringstream in(stat->substr(close + 2));
  std::string field;
  for (int i = 3; i <= n && in >> field; ++i) {
    if (i == n) return field;
  }
  return "";
}

}  // namespace

uint64_t StatField(const std::string& pid, int n) {
  std::string f = Field(pid, n);
  return f.empty() ? 0 : std::strtoull(f.c_str(), nullptr, 10);
}

bool IsZombie(const std::string& pid) { return Field(pid, 3) == "Z"; }

}  // namespace kiln::sandbox::procfs
