#include "controller/forge/patches.h"

#include <algorithm>

namespace kiln::forge::patches {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A name as git writes it in headers: C-quoted ("a/\303\274.txt") when it
// holds unusual bytes, else as it is (a trailing tab, which git adds after
// a ---/+++ name holding a space, dropped). nullopt when the quoting is
// malformed.
std::optional<std::string> Name(std::string_view s) {
  if (s.empty() || s[0] != '"') {
    if (!s.empty() && s.back() == '\t') s.remove_suffix(1);
    return std::string(s);
  }
  std::string out;
  for (size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') return out;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= s.size()) return std::nullopt;
    static constexpr std::string_view kFrom = "abfnrtv\"\\";
    static constexpr std::string_view kTo = "\a\b\f\n\r\t\v\"\\";
    if (size_t k = kFrom.find(s[i]); k != std::string_view::npos) {
      out += kTo[k];
      continue;
    }
    // Three octal digits: a byte.
    if (i + 2 >= s.size()) return std::nullopt;
    int v = 0;
    for (size_t k = i; k < i + 3; ++k) {
      if (s[k] < '0' || s[k] > '7') return std::nullopt;
      v = v * 8 + (s[k] - '0');
    }
    if (v > 0xff) return std::nullopt;
    out += static_cast<char>(v);
    i += 2;
  }
  return std::nullopt;
}

// The name of a "--- "/"+++ " line without its "a/" or "b/"; "" for
// /dev/null or a name that does not parse.
std::string LabelPath(std::string_view rest) {
  auto name = Name(rest);
  if (!name || *name == "/dev/null") return "";
  if (StartsWith(*name, "a/") || StartsWith(*name, "b/")) return name->substr(2);
  return *name;
}

// "a/P b/P" of an unquoted "diff --git" line, when both halves name one
// path (the only case where the split is certain); "" otherwise.
std::string GitLinePath(std::string_view rest) {
  if (rest.size() < 7 || rest.size() % 2 == 0 || !StartsWith(rest, "a/")) return "";
  size_t half = (rest.size() - 5) / 2;
  std::string_view a = rest.substr(2, half);
  std::string_view b = rest.substr(2 + half);
  if (!StartsWith(b, " b/") || b.substr(3) != a) return "";
  return std::string(a);
}

constexpr int64_t kMaxLine = int64_t{1} << 40;

// "@@ -a[,b] +c[,d] @@...": the first lines of each side.
bool HunkStart(std::string_view line, int64_t* old_start, int64_t* new_start) {
  auto number = [&](size_t* i, int64_t* out) {
    size_t from = *i;
    int64_t v = 0;
    while (*i < line.size() && line[*i] >= '0' && line[*i] <= '9') {
      v = v * 10 + (line[*i] - '0');
      if (v > kMaxLine) return false;
      ++*i;
    }
    *out = v;
    return *i > from;
  };
  auto range = [&](size_t* i, char sign, int64_t* start) {
    if (*i >= line.size() || line[*i] != sign) return false;
    ++*i;
    if (!number(i, start)) return false;
    int64_t count = 0;
    if (*i < line.size() && line[*i] == ',') {
      ++*i;
      if (!number(i, &count)) return false;
    }
    return true;
  };
  size_t i = 3;
  if (!StartsWith(line, "@@ ") || !range(&i, '-', old_start)) return false;
  if (i >= line.size() || line[i] != ' ') return false;
  ++i;
  if (!range(&i, '+', new_start)) return false;
  return StartsWith(line.substr(i), " @@");
}

}  // namespace

std::vector<FilePatch> Split(std::string_view diff) {
  std::vector<FilePatch> files;
  FilePatch* f = nullptr;
  std::string git_line_path, minus_path, plus_path;
  bool in_hunks = false;
  bool ignore = false;  // a hunk header did not parse: the rest of the file is left out
  int64_t old_line = 0, new_line = 0;
  size_t patch_from = 0;
  auto finish = [&](size_t end) {
    if (f == nullptr) return;
    if (in_hunks) f->patch = std::string(diff.substr(patch_from, end - patch_from));
    if (f->path.empty()) f->path = !plus_path.empty() ? plus_path : minus_path;
    if (f->path.empty()) f->path = git_line_path;
    if (f->status == "removed" && !minus_path.empty()) f->path = minus_path;
    if (f->path.empty()) files.pop_back();  // nothing names it: left out
  };
  size_t pos = 0;
  while (pos < diff.size()) {
    size_t nl = diff.find('\n', pos);
    size_t end = nl == std::string_view::npos ? diff.size() : nl + 1;
    std::string_view line =
        diff.substr(pos, (nl == std::string_view::npos ? diff.size() : nl) - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t at = pos;
    pos = end;
    if (StartsWith(line, "diff --git ")) {
      finish(at);
      files.emplace_back();
      f = &files.back();
      f->status = "modified";
      git_line_path = GitLinePath(line.substr(11));
      minus_path.clear();
      plus_path.clear();
      in_hunks = false;
      ignore = false;
      continue;
    }
    if (f == nullptr || ignore) continue;
    if (!in_hunks) {
      if (StartsWith(line, "new file mode")) {
        f->status = "added";
      } else if (StartsWith(line, "deleted file mode")) {
        f->status = "removed";
      } else if (StartsWith(line, "rename from ") || StartsWith(line, "copy from ")) {
        f->status = line[0] == 'r' ? "renamed" : "copied";
        f->old_path = Name(line.substr(line.find(" from ") + 6)).value_or("");
      } else if (StartsWith(line, "rename to ") || StartsWith(line, "copy to ")) {
        f->path = Name(line.substr(line.find(" to ") + 4)).value_or("");
      } else if (StartsWith(line, "--- ")) {
        minus_path = LabelPath(line.substr(4));
      } else if (StartsWith(line, "+++ ")) {
        plus_path = LabelPath(line.substr(4));
      } else if (StartsWith(line, "Binary files ")) {
        f->binary = true;
      } else if (HunkStart(line, &old_line, &new_line)) {
        in_hunks = true;
        patch_from = at;
      }
      continue;
    }
    if (StartsWith(line, "@@")) {
      if (!HunkStart(line, &old_line, &new_line)) {
        f->patch = std::string(diff.substr(patch_from, at - patch_from));
        in_hunks = false;
        ignore = true;
        continue;
      }
      f->lines.push_back(Line{'@', 0, 0});
    } else if (!line.empty() && line[0] == '+') {
      f->lines.push_back(Line{'+', 0, new_line++});
      ++f->additions;
    } else if (!line.empty() && line[0] == '-') {
      f->lines.push_back(Line{'-', old_line++, 0});
      ++f->deletions;
    } else if (!line.empty() && line[0] == ' ') {
      f->lines.push_back(Line{' ', old_line++, new_line++});
    } else if (!line.empty() && line[0] == '\\') {
      f->lines.push_back(Line{'\\', 0, 0});  // "\ No newline at end of file"
    }
  }
  finish(diff.size());
  return files;
}

std::optional<Anchor> AtPosition(const FilePatch& file, int64_t position) {
  if (position < 1 || position > static_cast<int64_t>(file.lines.size())) return std::nullopt;
  const Line& l = file.lines[position - 1];
  if (l.kind == '+' || l.kind == ' ') return Anchor{l.new_line, "RIGHT"};
  if (l.kind == '-') return Anchor{l.old_line, "LEFT"};
  return std::nullopt;
}

std::optional<int64_t> PositionOf(const FilePatch& file, int64_t line, std::string_view side) {
  const bool left = side == "LEFT";
  for (size_t i = 0; i < file.lines.size(); ++i) {
    const Line& l = file.lines[i];
    bool match = left ? (l.kind == '-' || l.kind == ' ') && l.old_line == line
                      : (l.kind == '+' || l.kind == ' ') && l.new_line == line;
    if (match) return static_cast<int64_t>(i + 1);
  }
  return std::nullopt;
}

std::string HunkUpTo(const FilePatch& file, int64_t position) {
  if (position < 1 || file.patch.empty()) return "";
  // The patch's lines: [0] is the first header, [p] is position p.
  std::vector<std::string_view> lines;
  std::string_view rest = file.patch;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    lines.push_back(rest.substr(0, nl));
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  size_t last = std::min(static_cast<size_t>(position), lines.size() - 1);
  size_t first = last;
  while (first > 0 && !StartsWith(lines[first], "@@")) --first;
  std::string out;
  for (size_t i = first; i <= last; ++i) {
    if (i > first) out += '\n';
    out += lines[i];
  }
  return out;
}

}  // namespace kiln::forge::patches
