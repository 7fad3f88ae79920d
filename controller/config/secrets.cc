#include "controller/config/secrets.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fd.h"
#include "base/mountinfo.h"
#include "base/strings.h"
#include "controller/config/names.h"
#include "controller/config/yaml_fields.h"

extern char** environ;

namespace kiln::secrets {
namespace {

Result<std::string> ReadPrivateFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ELOOP) return Error::Invalid("secrets file " + Quote(path) + " is a symlink");
    return Error::Sys("open(" + Quote(path) + ")", errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::Sys("fstat(" + Quote(path) + ")", errno);
  if (!S_ISREG(st.st_mode)) return Error::Invalid("secrets file " + Quote(path) + " is not a file");
  if (st.st_uid != ::geteuid()) {
    return Error::Invalid("secrets file " + Quote(path) + " is owned by uid " +
                          std::to_string(st.st_uid) + ", not by kiln's uid " +
                          std::to_string(::geteuid()));
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return Error::Invalid("secrets file " + Quote(path) + " has mode " + mode +
                          ": others can read it; chmod 600 it");
  }
  return ReadAll(fd.get(), path);
}

}  // namespace

Result<Vault> Vault::Load(const std::string& file) {
  Vault v;
  v.source_ = file.empty() ? "the environment (KILN_SECRET_*)" : Quote(file);
  static constexpr std::string_view kPrefix = "KILN_SECRET_";
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (!StartsWith(kv, kPrefix)) continue;
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name(kv.substr(kPrefix.size(), eq - kPrefix.size()));
    if (names::IsSecret(name)) v.values_[name] = std::string(kv.substr(eq + 1));
  }
  if (file.empty()) return v;
  KILN_ASSIGN_OR_RETURN(std::string text, ReadPrivateFile(file));
  KILN_ASSIGN_OR_RETURN(YAML::Node root, yaml::Load(text, file));
  if (root.IsNull()) return v;
  if (!root.IsMap()) return Error::Invalid(file + ":1: secrets must be a mapping NAME: value");
  for (const auto& kv : root) {
    const std::string& name = kv.first.Scalar();
    std::string where = file + ":" + std::to_string(kv.first.Mark().line + 1) + ": ";
    if (!names::IsSecret(name)) {
      return Error::Invalid(where + Quote(name) + " is not a secret name ([A-Za-z_][A-Za-z0-9_]*)");
    }
    if (!kv.second.IsScalar()) return Error::Invalid(where + Quote(name) + " must be a string");
    v.values_[name] = kv.second.Scalar();
  }
  return v;
}

Result<std::map<std::string, std::string>> Vault::Select(
    const std::vector<std::string>& names) const {
  std::map<std::string, std::string> out;
  for (const std::string& name : names) {
    auto it = values_.find(name);
    if (it == values_.end()) {
      return Error::NotFound("unknown secret " + Quote(name) + ": not in " + source_ +
                             " nor in KILN_SECRET_" + name);
    }
    out[name] = it->second;
  }
  return out;
}

std::vector<std::string> Vault::Names() const {
  std::vector<std::string> names;
  for (const auto& [k, v] : values_) names.push_back(k);
  return names;
}

Status Mount(const std::string& dir, const std::map<std::string, std::string>& secrets, uid_t uid,
             gid_t gid, uint64_t size) {
  std::string data = "size=" + std::to_string(size) + ",mode=0500,uid=" + std::to_string(uid) +
                     ",gid=" + std::to_string(gid);
  if (::mount("kiln-secrets", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              data.c_str()) != 0) {
    return Error::Sys("mount(tmpfs, " + Quote(dir) + ")", errno);
  }
  auto fill = [&]() -> Status {
    for (const auto& [name, value] : secrets) {
      std::string path = dir + "/" + name;
      KILN_TRY(WriteNewFile(path, value, 0400, Sync::kNoFsync));
      if (::chown(path.c_str(), uid, gid) != 0)
        return Error::Sys("chown(" + Quote(path) + ")", errno);
    }
    if (::mount(nullptr, dir.c_str(), nullptr,
                MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, data.c_str()) != 0) {
      return Error::Sys("remount(" + Quote(dir) + ", ro)", errno);
    }
    return Ok();
  };
  if (Status st = fill(); !st.ok()) {
    ::umount2(dir.c_str(), MNT_DETACH);
    return st.error().Wrap("writing the secrets");
  }
  return Ok();
}

}  // namespace kiln::secrets
