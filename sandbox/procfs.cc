#include "sandbox/procfs.h"

#include <cstdlib>
#include <sstream>

#include "base/fd.h"

namespace kiln::sandbox::procfs {

uint64_t StatField(const std::string& pid, int n) {
  auto stat = ReadFile("/proc/" + pid + "/stat");
  if (!stat) return 0;
  size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 > stat->size()) return 0;
  std::istringstream in(stat->substr(close + 2));
  std::string field;
  for (int i = 3; i <= n && in >> field; ++i) {
    if (i == n) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

}  // namespace kiln::sandbox::procfs
