#include "runtime/tools/search.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <regex.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "runtime/tools/gitignore.h"

namespace kiln::tool_search {
namespace {

struct Search {
  regex_t re;
  std::string glob;
  size_t max_matches;
  size_t max_file_bytes;
  size_t max_line_chars;
  gitignore::Matcher ignore;
  std::string out;
  size_t matches = 0;
  size_t files_with_matches = 0;
  size_t skipped_binary = 0;
  size_t skipped_large = 0;
  bool capped = false;
};

std::string Join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir == "." ? name : dir + "/" + name;
}

Result<std::string> ReadFd(int fd, size_t size) {
  std::string data(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, data.data() + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Sys("read", errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  return data;
}

void SearchFile(Search& s, int fd, const std::string& rel) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
  if (static_cast<uint64_t>(st.st_size) > s.max_file_bytes) {
    ++s.skipped_large;
    return;
  }
  auto data = ReadFd(fd, static_cast<size_t>(st.st_size));
  if (!data.ok()) return;
  if (tool::LooksBinary(*data)) {
    ++s.skipped_binary;
    return;
  }
  bool any = false;
  size_t line = 1;
  for (size_t pos = 0; pos < data->size() && !s.capped; ++line) {
    size_t nl = data->find('\n', pos);
    size_t end = nl == std::string::npos ? data->size() : nl;
    std::string text = data->substr(pos, end - pos);
    pos = end + 1;
    if (::regexec(&s.re, text.c_str(), 0, nullptr, 0) != 0) continue;
    if (s.matches == s.max_matches) {
      s.capped = true;
      break;
    }
    ++s.matches;
    any = true;
    if (text.size() > s.max_line_chars) text = text.substr(0, s.max_line_chars) + "...";
    s.out += rel + ":" + std::to_string(line) + ":" + text + "\n";
  }
  s.files_with_matches += any;
}

void Walk(Search& s, int dirfd, const std::string& rel) {
  // The .gitignore of this directory applies to everything below it.
  size_t mark = s.ignore.mark();
  {
    int gi = ::openat(dirfd, ".gitignore", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (gi >= 0) {
      struct stat st;
      if (::fstat(gi, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (1 << 20)) {
        auto text = ReadFd(gi, static_cast<size_t>(st.st_size));
        if (text.ok()) s.ignore.Add(gitignore::Parse(*text, rel == "." ? "" : rel));
      }
      ::close(gi);
    }
  }
  int dup = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr;
  if (!d) {
    if (dup >= 0) ::close(dup);
    s.ignore.Truncate(mark);
    return;
  }
  std::vector<std::pair<std::string, bool>> entries;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name == ".git") continue;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
    }
    // Symlinks are never followed: their target may be outside the workspace.
    if (type != DT_DIR && type != DT_REG) continue;
    entries.emplace_back(name, type == DT_DIR);
  }
  ::closedir(d);
  std::sort(entries.begin(), entries.end());  // stable output for the model and for tests
  for (const auto& [name, is_dir] : entries) {
    if (s.capped) break;
    std::string child = Join(rel, name);
    if (s.ignore.Ignored(child, is_dir)) continue;
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (is_dir ? O_DIRECTORY : O_NONBLOCK);
    int fd = ::openat(dirfd, name.c_str(), flags);
    if (fd < 0) continue;
    if (is_dir) {
      Walk(s, fd, child);
    } else if (s.glob.empty() || ::fnmatch(s.glob.c_str(), name.c_str(), 0) == 0) {
      SearchFile(s, fd, child);
    }
    ::close(fd);
  }
  s.ignore.Truncate(mark);
}

}  // namespace

tool::Output Run(const workspace_path::Workspace& ws, const tool::Limits& limits,
                 const nlohmann::json& input) {
  std::string pattern = tool::StringArg(input, "pattern");
  std::string path = input.contains("path") ? tool::StringArg(input, "path") : ".";
  Search s;
  s.glob = tool::StringArg(input, "glob");
  s.max_matches =
      std::min(input.value("max_results", limits.search_max_matches), limits.search_max_matches);
  s.max_file_bytes = limits.search_max_file_bytes;
  s.max_line_chars = limits.read_max_line_chars;
  int cflags = REG_EXTENDED | REG_NOSUB | REG_NEWLINE;
  if (input.value("ignore_case", false)) cflags |= REG_ICASE;
  if (int rc = ::regcomp(&s.re, pattern.c_str(), cflags); rc != 0) {
    char msg[256];
    ::regerror(rc, &s.re, msg, sizeof msg);
    return tool::Output::Err("pattern " + Quote(pattern) +
                             " is not a valid POSIX extended "
                             "regular expression: " +
                             msg);
  }
  auto fd = ws.OpenFile(path, O_RDONLY | O_NONBLOCK);
  if (!fd.ok()) {
    ::regfree(&s.re);
    return tool::Output::Err(fd.error().message());
  }
  auto rel = ws.Relative(path);
  std::string start = rel.ok() ? *rel : path;
  struct stat st;
  if (::fstat(fd->get(), &st) == 0 && S_ISDIR(st.st_mode)) {
    Walk(s, fd->get(), start);
  } else {
    SearchFile(s, fd->get(), start);
  }
  ::regfree(&s.re);
  std::string out = s.out;
  if (s.matches == 0) out = "no matches for " + Quote(pattern) + " in " + path + "\n";
  if (s.capped) {
    out += "[stopped after " + std::to_string(s.max_matches) +
           " matches; narrow the pattern or the path]\n";
  }
  if (s.skipped_binary || s.skipped_large) {
    out += "[skipped " + std::to_string(s.skipped_binary) + " binary and " +
           std::to_string(s.skipped_large) + " large files]\n";
  }
  tool::Output o;
  o.full_bytes = out.size();
  o.content = tool::SanitizeUtf8(tool::CapHeadTail(out, limits.max_output_bytes, &o.truncated));
  return o;
}

tool::Def Make(const workspace_path::Workspace& ws, const tool::Limits& limits) {
  tool::Def d;
  d.name = "search";
  d.description =
      "Search the workspace's text files for a POSIX extended regular expression (like grep "
      "-rnE), honouring .gitignore. Prints path:line:text, at most " +
      std::to_string(limits.search_max_matches) + " matches.";
  d.input_schema = {{"type", "object"},
                    {"properties",
                     {{"pattern", {{"type", "string"}, {"minLength", 1}}},
                      {"path", {{"type", "string"}}},
                      {"glob", {{"type", "string"}}},
                      {"ignore_case", {{"type", "boolean"}}},
                      {"max_results", {{"type", "integer"}, {"minimum", 1}}}}},
                    {"required", {"pattern"}},
                    {"additionalProperties", false}};
  d.run = [&ws, limits](const nlohmann::json& input) { return Run(ws, limits, input); };
  return d;
}

}  // namespace kiln::tool_search
