#include "sandbox/spec.h"

#include <cstdlib>
#include <set>

#include "base/strings.h"

namespace kiln::sandbox {

namespace {

// Mount points the sandbox itself owns; a user mount there would hide them.
const std::set<std::string>& ReservedDests() {
  static const std::set<std::string> kReserved = {"/", "/proc", "/dev", "/sys", "/usr", "/etc"};
  return kReserved;
}

Status CheckDest(std::string_view dest, std::string_view what) {
  if (dest.empty() || dest[0] != '/') {
    return Error::Invalid(std::string(what) + ": destination " + Quote(dest) +
                          " is not an absolute path");
  }
  for (const std::string& part : Split(dest.substr(1), '/')) {
    if (part == "..") {
      return Error::Invalid(std::string(what) + ": destination " + Quote(dest) + " contains '..'");
    }
  }
  std::string norm(dest);
  while (norm.size() > 1 && norm.back() == '/') norm.pop_back();
  if (ReservedDests().count(norm)) {
    return Error::Invalid(std::string(what) + ": destination " + Quote(dest) +
                          " is managed by the sandbox and cannot be replaced");
  }
  return Ok();
}

}  // namespace

Result<BindMount> ParseBind(std::string_view text) {
  std::vector<std::string> parts = Split(text, ':');
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
    return Error::Invalid("--bind " + Quote(text) + ": expected SRC:DST[:ro|:rw]");
  }
  BindMount b{parts[0], parts[1], false};
  if (parts.size() == 3) {
    if (parts[2] == "ro")
      b.read_only = true;
    else if (parts[2] != "rw") {
      return Error::Invalid("--bind " + Quote(text) + ": unknown mode " + Quote(parts[2]) +
                            " (expected ro or rw)");
    }
  }
  KILN_TRY(CheckDest(b.dest, "--bind " + Quote(text)));
  return b;
}

Result<TmpfsMount> ParseTmpfs(std::string_view text) {
  std::vector<std::string> parts = Split(text, ':');
  if (parts.size() > 2 || parts[0].empty()) {
    return Error::Invalid("--tmpfs " + Quote(text) + ": expected DST[:SIZE]");
  }
  TmpfsMount t;
  t.dest = parts[0];
  if (parts.size() == 2) {
    KILN_ASSIGN_OR_RETURN(t.size_bytes, ParseSize(parts[1], "--tmpfs " + Quote(text)));
    if (t.size_bytes == 0) return Error::Invalid("--tmpfs " + Quote(text) + ": size must be > 0");
  }
  KILN_TRY(CheckDest(t.dest, "--tmpfs " + Quote(text)));
  return t;
}

Result<std::string> ParseEnv(std::string_view text) {
  size_t eq = text.find('=');
  std::string name(text.substr(0, eq));
  if (name.empty() || name.find_first_of(" \t\n") != std::string::npos ||
      (name[0] >= '0' && name[0] <= '9')) {
    return Error::Invalid("--env " + Quote(text) + ": expected NAME=VALUE or NAME");
  }
  if (eq != std::string_view::npos) return std::string(text);
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) {
    return Error::Invalid("--env " + Quote(text) + ": " + Quote(name) +
                          " is not set in kiln's environment");
  }
  return name + "=" + value;
}

Status Validate(const Spec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return Error::Invalid("no command given (usage: kiln sandbox run [options] -- CMD ARGS...)");
  }
  if (StartsWith(spec.argv[0], "/proc/")) {
    // /proc/self/exe would run the supervisor's own binary from the host's mount.
    return Error::Invalid("command " + Quote(spec.argv[0]) + ": refusing to execute a /proc path");
  }
  if (!spec.layers.empty() && spec.image != "host") {
    return Error::Invalid("--image " + Quote(spec.image) +
                          " and --layer exclude each other: an image is one or the other");
  }
  if (spec.layers.size() > 128) {
    return Error::Invalid("--layer: " + std::to_string(spec.layers.size()) +
                          " layers; at most 128 are stacked");
  }
  std::set<std::string> dests;
  auto claim = [&](const std::string& dest, std::string_view what) -> Status {
    std::string norm = dest;
    while (norm.size() > 1 && norm.back() == '/') norm.pop_back();
    if (!dests.insert(norm).second) {
      return Error::Invalid(std::string(what) + ": " + Quote(dest) + " is mounted twice");
    }
    return Ok();
  };
  if (spec.workspace) KILN_TRY(claim("/workspace", "--workspace"));
  for (const BindMount& b : spec.binds) {
    KILN_TRY(CheckDest(b.dest, "--bind"));
    KILN_TRY(claim(b.dest, "--bind"));
  }
  for (const TmpfsMount& t : spec.tmpfs) {
    KILN_TRY(CheckDest(t.dest, "--tmpfs"));
    KILN_TRY(claim(t.dest, "--tmpfs"));
  }
  if (!spec.workdir.empty() && spec.workdir[0] != '/') {
    return Error::Invalid("--workdir " + Quote(spec.workdir) + " is not an absolute path");
  }
  if (spec.hostname.empty() || spec.hostname.size() > 64) {
    return Error::Invalid("--hostname " + Quote(spec.hostname) + " must be 1 to 64 characters");
  }
  if (spec.uid > 65535 || spec.gid > 65535) {
    return Error::Invalid("--uid/--gid must be below 65536 (the size of the sandbox's id range)");
  }
  if (spec.limits.cpus && (*spec.limits.cpus <= 0 || *spec.limits.cpus > 1024)) {
    return Error::Invalid("--cpus must be above 0 and at most 1024");
  }
  if (spec.limits.nofile < 16) return Error::Invalid("--nofile must be at least 16");
  if (spec.limits.rootfs_bytes < (1ull << 20)) {
    return Error::Invalid("--rootfs-size must be at least 1M");
  }
  if (!spec.use_cgroup && (spec.limits.memory_bytes || spec.limits.cpus)) {
    return Error::Invalid("--no-cgroup conflicts with --memory and --cpus (set them to 'max')");
  }
  if (!spec.id.empty()) {
    for (char c : spec.id) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
        return Error::Invalid("--id " + Quote(spec.id) + ": only letters, digits, '-' and '_'");
      }
    }
  }
  return Ok();
}

}  // namespace kiln::sandbox
