#include "runtime/tools/write.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>

namespace kiln::tool_write {

Status WriteAtomic(const workspace_path::Workspace& ws, const std::string& path,
                   std::string_view data) {
  KILN_ASSIGN_OR_RETURN(auto parent, ws.OpenParent(path, /*create_dirs=*/true));
  auto& [dir, name] = parent;
  // O_PATH descriptors cannot be used for openat(O_CREAT) of a child; reopen.
  UniqueFd d(::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.valid()) return Error::Sys("open(directory of " + Quote(path) + ")", errno);
  mode_t mode = 0644;
  struct stat st;
  if (::fstatat(d.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) return Error::Invalid(Quote(path) + " is a directory");
    if (S_ISREG(st.st_mode)) mode = st.st_mode & 07777;
  }
  std::random_device rd;
  std::string tmp;
  UniqueFd fd;
  for (int attempt = 0; attempt < 16 && !fd.valid(); ++attempt) {
    tmp = ".kiln-write-" + std::to_string(rd()) + ".tmp";
    fd.reset(
        ::openat(d.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd.valid() && errno != EEXIST) {
      return Error::Sys("openat(" + Quote(tmp) + " beside " + Quote(path) + ")", errno);
    }
  }
  if (!fd.valid()) return Error::Internal("no free temporary name beside " + Quote(path));
  Status w = WriteAll(fd.get(), data);
  if (w.ok() && ::fchmod(fd.get(), mode) != 0) w = Error::Sys("fchmod(" + Quote(tmp) + ")", errno);
  if (w.ok() && ::renameat(d.get(), tmp.c_str(), d.get(), name.c_str()) != 0) {
    w = Error::Sys("rename(" + Quote(tmp) + ", " + Quote(path) + ")", errno);
  }
  if (!w.ok()) {
    ::unlinkat(d.get(), tmp.c_str(), 0);
    return w.error().Wrap("writing " + Quote(path));
  }
  return Ok();
}

tool::Output Run(const workspace_path::Workspace& ws, const nlohmann::json& input) {
  std::string path = tool::StringArg(input, "path");
  std::string content = tool::StringArg(input, "content");
  Status s = WriteAtomic(ws, path, content);
  if (!s.ok()) return tool::Output::Err(s.error().message());
  return tool::Output::Text("wrote " + std::to_string(content.size()) + " bytes to " + path);
}

tool::Def Make(const workspace_path::Workspace& ws) {
  tool::Def d;
  d.name = "write";
  d.description =
      "Create or replace a file of the workspace with the given content (atomically; missing "
      "directories are created).";
  d.input_schema = {
      {"type", "object"},
      {"properties",
       {{"path", {{"type", "string"}, {"minLength", 1}}}, {"content", {{"type", "string"}}}}},
      {"required", {"path", "content"}},
      {"additionalProperties", false}};
  d.run = [&ws](const nlohmann::json& input) { return Run(ws, input); };
  return d;
}

}  // namespace kiln::tool_write
