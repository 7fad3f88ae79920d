#include "sandbox/caps.h"

#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::sandbox::caps {

int LockAndDropBounding(int keep, const char** step) {
  const unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                             SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                             SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) {
    *step = "prctl(PR_SET_SECUREBITS)";
    return -errno;
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    *step = "prctl(PR_CAP_AMBIENT_CLEAR_ALL)";
    return -errno;
  }
  // Walk up until the kernel says the capability does not exist, so that
  // capabilities newer than our headers are dropped too.
  for (int cap = 0; cap < 64; ++cap) {
    if (cap == keep) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL && cap > CAP_SETPCAP) break;  // past the kernel's last capability
      *step = "prctl(PR_CAPBSET_DROP)";
      return -errno;
    }
  }
  return 0;
}

int ClearSets(int keep, const char** step) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (keep >= 0) {
    data[keep / 32].effective = data[keep / 32].permitted = 1u << (keep % 32);
  }
  if (syscall(SYS_capset, &hdr, data) != 0) {
    *step = "capset";
    return -errno;
  }
  return 0;
}

}  // namespace kiln::sandbox::caps
