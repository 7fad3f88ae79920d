// Launching a sandbox from the controller: `kiln sandbox run` as a child
// process (exec'd, so the daemon's threads never meet the sandbox's clone),
// with PR_SET_PDEATHSIG so that a controller killed with SIGKILL takes its
// sandboxes with it (the supervisor dies, its init follows, the pid
// namespace ends; `kiln serve` reaps the cgroups and mounts at next start).
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace kiln::launch {

class Child {
 public:
  // Starts argv[0] with argv. stdin is /dev/null; stdout and stderr go to
  // output_fd; the descriptors in pass_fds keep their numbers (each must be
  // >= 3), every other one is closed.
  static Result<Child> Start(const std::vector<std::string>& argv, int output_fd,
                             const std::vector<int>& pass_fds);

  Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)), pidfd_(std::move(o.pidfd_)) {}
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;
  ~Child();  // kills (SIGKILL) and reaps a child still running

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }  // readable when the child exits
  Status Signal(int sig) const;
  // Reaps the child; its wait status. Blocks until it exits.
  Result<int> Wait();

 private:
  Child(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  pid_t pid_ = -1;
  UniqueFd pidfd_;
};

}  // namespace kiln::launch
