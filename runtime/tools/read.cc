#include "runtime/tools/read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace kiln::tool_read {

Result<std::string> ReadWhole(const workspace_path::Workspace& ws, const std::string& path,
                              size_t max_bytes) {
  // O_NONBLOCK: a FIFO planted in the workspace must not hang the loop.
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, ws.OpenFile(path, O_RDONLY | O_NONBLOCK));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::Sys("fstat(" + Quote(path) + ")", errno);
  if (S_ISDIR(st.st_mode)) return Error::Invalid(Quote(path) + " is a directory");
  if (!S_ISREG(st.st_mode)) return Error::Invalid(Quote(path) + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Error::Invalid(Quote(path) + " is " + std::to_string(st.st_size) +
                          " bytes, more than the limit of " + std::to_string(max_bytes));
  }
  std::string data;
  data.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Sys("read(" + Quote(path) + ")", errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  return data;
}

tool::Output Run(const workspace_path::Workspace& ws, const tool::Limits& limits,
                 const nlohmann::json& input) {
  std::string path = tool::StringArg(input, "path");
  auto data = ReadWhole(ws, path, limits.read_max_file_bytes);
  if (!data.ok()) return tool::Output::Err(data.error().message());
  if (tool::LooksBinary(*data)) {
    return tool::Output::Err("binary file " + Quote(path) + " (" + std::to_string(data->size()) +
                             " bytes) not shown; inspect it with the shell tool (e.g. xxd)");
  }
  size_t offset = input.value("offset", size_t{1});
  size_t limit = std::min(input.value("limit", limits.read_max_lines), limits.read_max_lines);
  if (offset == 0) offset = 1;
  std::string out;
  size_t line = 1, shown_first = 0, shown_last = 0;
  bool cut_lines = false;
  for (size_t pos = 0; pos < data->size(); ++line) {
    size_t nl = data->find('\n', pos);
    size_t end = nl == std::string::npos ? data->size() : nl;
    if (line >= offset && line < offset + limit) {
      std::string_view text(data->data() + pos, end - pos);
      if (text.size() > limits.read_max_line_chars) {
        text = text.substr(0, limits.read_max_line_chars);
        cut_lines = true;
      }
      char num[32];
      std::snprintf(num, sizeof num, "%6zu\t", line);
      out += num;
      out += text;
      out += '\n';
      if (!shown_first) shown_first = line;
      shown_last = line;
    }
    pos = end + 1;
  }
  size_t total = data->empty() ? 0 : line - 1;
  if (total == 0) return tool::Output::Text("(" + path + " is empty)");
  if (shown_first == 0) {
    return tool::Output::Err("offset " + std::to_string(offset) + " is past the end of " +
                             Quote(path) + " (" + std::to_string(total) + " lines)");
  }
  if (shown_first > 1 || shown_last < total) {
    out += "[lines " + std::to_string(shown_first) + "-" + std::to_string(shown_last) + " of " +
           std::to_string(total) + "; use offset and limit to read more]\n";
  }
  if (cut_lines) {
    out += "[lines longer than " + std::to_string(limits.read_max_line_chars) +
           " characters were cut]\n";
  }
  tool::Output o;
  o.full_bytes = out.size();
  o.content = tool::CapHeadTail(out, limits.max_output_bytes, &o.truncated);
  return o;
}

tool::Def Make(const workspace_path::Workspace& ws, const tool::Limits& limits) {
  tool::Def d;
  d.name = "read";
  d.description = "Read a text file of the workspace. Lines are numbered; at most " +
                  std::to_string(limits.read_max_lines) +
                  " lines per call, use offset (1-based first line) and limit for more.";
  d.input_schema = {{"type", "object"},
                    {"properties",
                     {{"path", {{"type", "string"}, {"minLength", 1}}},
                      {"offset", {{"type", "integer"}, {"minimum", 1}}},
                      {"limit", {{"type", "integer"}, {"minimum", 1}}}}},
                    {"required", {"path"}},
                    {"additionalProperties", false}};
  d.run = [&ws, limits](const nlohmann::json& input) { return Run(ws, limits, input); };
  return d;
}

}  // namespace kiln::tool_read
