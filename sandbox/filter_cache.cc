#include "sandbox/filter_cache.h"

#include <fcntl.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>

#include "base/fd.h"

namespace kiln::embedded {
std::string_view default_policy();  // generated from sandbox/seccomp/default.policy
}  // namespace kiln::embedded

namespace kiln::sandbox::filter_cache {

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'B', 'P', 'F', '1'};

// Everything besides the policy text that the compiled program depends on.
std::string Identity(const seccomp::CompileOptions& options) {
  const scmp_version* v = seccomp_version();
  return "exe=" + FileVersion("/proc/self/exe") + " libseccomp=" + std::to_string(v->major) + "." +
         std::to_string(v->minor) + "." + std::to_string(v->micro) +
         " notify=" + (options.notify_denials ? "1" : "0");
}

// Layout: magic, then three length-prefixed blobs: identity, policy text,
// filter instructions.
std::string Serialize(const std::string& identity, std::string_view text,
                      const seccomp::Program& p) {
  std::string out(kMagic, sizeof kMagic);
  auto blob = [&](const void* data, uint64_t size) {
    out.append(reinterpret_cast<const char*>(&size), sizeof size);
    out.append(static_cast<const char*>(data), size);
  };
  blob(identity.data(), identity.size());
  blob(text.data(), text.size());
  blob(p.filter.data(), p.filter.size() * sizeof(sock_filter));
  return out;
}

bool Deserialize(std::string_view data, const std::string& identity, std::string_view text,
                 seccomp::Program* p) {
  if (data.size() < sizeof kMagic || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0)
    return false;
  data.remove_prefix(sizeof kMagic);
  auto blob = [&](std::string_view* out) {
    uint64_t size;
    if (data.size() < sizeof size) return false;
    std::memcpy(&size, data.data(), sizeof size);
    data.remove_prefix(sizeof size);
    if (data.size() < size) return false;
    *out = data.substr(0, size);
    data.remove_prefix(size);
    return true;
  };
  std::string_view id, stored_text, filter;
  if (!blob(&id) || !blob(&stored_text) || !blob(&filter) || !data.empty()) return false;
  if (id != identity || stored_text != text) return false;
  if (filter.empty() || filter.size() % sizeof(sock_filter) != 0) return false;
  p->filter.resize(filter.size() / sizeof(sock_filter));
  std::memcpy(p->filter.data(), filter.data(), filter.size());
  return true;
}

// Root-owned and writable by root alone, the directory and the file both;
// anything else is not trusted (a --state-dir others can write to).
bool OnlyRootWrites(const struct stat& st) { return st.st_uid == 0 && (st.st_mode & 022) == 0; }

std::optional<std::string> ReadTrusted(const std::string& dir, const std::string& path) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !OnlyRootWrites(st)) return std::nullopt;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !OnlyRootWrites(st)) return std::nullopt;
  auto text = ReadFile("/proc/self/fd/" + std::to_string(fd.get()));
  if (!text) return std::nullopt;
  return std::move(*text);
}

}  // namespace

Result<seccomp::Program> Load(const std::string& state_dir, const std::string& policy_path,
                              const seccomp::CompileOptions& options) {
  std::string text;
  std::string source = "default.policy";
  if (policy_path.empty()) {
    text = std::string(embedded::default_policy());
  } else {
    auto read = ReadFile(policy_path);
    if (!read) return read.error().Wrap("loading seccomp policy");
    text = std::move(*read);
    source = policy_path;
  }
  auto compile = [&]() -> Result<seccomp::Program> {
    auto policy = seccomp::ParsePolicy(text, source);
    if (!policy) {
      return policy_path.empty() ? policy.error().Wrap("built-in seccomp policy") : policy.error();
    }
    return seccomp::Compile(*policy, options);
  };
  if (::geteuid() != 0) return compile();

  const std::string identity = Identity(options);
  char name[32];
  std::snprintf(name, sizeof name, "%016zx.bpf", std::hash<std::string>{}(identity + '\n' + text));
  const std::string dir = state_dir + "/seccomp";
  const std::string path = dir + "/" + name;

  if (auto cached = ReadTrusted(dir, path); cached) {
    seccomp::Program p;
    p.has_listener = options.notify_denials;
    if (Deserialize(*cached, identity, text, &p)) return p;
  }
  KILN_ASSIGN_OR_RETURN(seccomp::Program program, compile());
  // A failure to cache costs only speed next time.
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) {
    (void)WriteFileAtomic(path, Serialize(identity, text, program), 0600, Sync::kNoFsync);
  }
  return program;
}

}  // namespace kiln::sandbox::filter_cache
