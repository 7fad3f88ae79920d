// ParseHunks: the lines of a unified patch a review comment may anchor to.
// The patch is untrusted (an agent wrote the change it describes, and a
// forge or a caller may hand over anything), so the parser is a single pass
// over the bytes with no recursion, bounded numbers, and no allocation that
// the input's size does not pay for: every line number recorded is one line
// of the patch, every hunk recorded holds one. Whatever does not parse is
// skipped, never trusted.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "controller/git/write.h"

namespace kiln::git {
namespace {

// Larger line numbers or counts are garbage: a hunk header holding one is
// ignored (and no int64 arithmetic can overflow).
constexpr int64_t kMaxLine = int64_t{1} << 40;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string_view StripCr(std::string_view s) {
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

// Decimal digits at s[*i]; false when there are none or the value passes
// kMaxLine.
bool ParseNumber(std::string_view s, size_t* i, int64_t* out) {
  size_t start = *i;
  int64_t v = 0;
  while (*i < s.size() && s[*i] >= '0' && s[*i] <= '9') {
    v = v * 10 + (s[*i] - '0');
    if (v > kMaxLine) return false;
    ++*i;
  }
  *out = v;
  return *i > start;
}

// "<sign>start[,count]" at s[*i]; an omitted count is 1.
bool ParseRange(std::string_view s, size_t* i, char sign, int64_t* start, int64_t* count) {
  if (*i >= s.size() || s[*i] != sign) return false;
  ++*i;
  if (!ParseNumber(s, i, start)) return false;
  *count = 1;
  if (*i < s.size() && s[*i] == ',') {
    ++*i;
    if (!ParseNumber(s, i, count)) return false;
  }
  // Lines are numbered from 1: a non-empty range cannot start at 0.
  return *count == 0 || *start > 0;
}

struct Hunk {
  int64_t old_start = 0, old_count = 0, new_start = 0, new_count = 0;
};

// "@@ -a[,b] +c[,d] @@[ section heading]".
std::optional<Hunk> ParseHunkHeader(std::string_view line) {
  if (!StartsWith(line, "@@ ")) return std::nullopt;
  size_t i = 3;
  Hunk h;
  if (!ParseRange(line, &i, '-', &h.old_start, &h.old_count)) return std::nullopt;
  if (i >= line.size() || line[i] != ' ') return std::nullopt;
  ++i;
  if (!ParseRange(line, &i, '+', &h.new_start, &h.new_count)) return std::nullopt;
  if (!StartsWith(line.substr(i), " @@")) return std::nullopt;
  return h;
}

// A C-quoted path as git writes one ("a/\303\274.txt" with the quotes) at
// the start of s; *end is set past the closing quote. nullopt when malformed.
std::optional<std::string> Unquote(std::string_view s, size_t* end) {
  if (s.empty() || s[0] != '"') return std::nullopt;
  std::string out;
  for (size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      *end = i + 1;
      return out;
    }
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= s.size()) return std::nullopt;
    c = s[i];
    switch (c) {
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case '"':
      case '\\':
        out += c;
        break;
      default: {
        // Three octal digits, a byte.
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
    }
  }
  return std::nullopt;
}

// The path of a "--- " or "+++ " line (after that prefix): "" for /dev/null,
// else the name without its "a/" or "b/" prefix. git ends a name holding a
// space with a tab, and quotes names with unusual bytes.
std::optional<std::string> HeaderPath(std::string_view s, std::string_view prefix) {
  s = StripCr(s);
  std::string path;
  if (!s.empty() && s[0] == '"') {
    size_t end = 0;
    auto unquoted = Unquote(s, &end);
    if (!unquoted) return std::nullopt;
    path = std::move(*unquoted);
  } else {
    s = s.substr(0, s.find('\t'));
    if (s == "/dev/null") return std::string();
    path = std::string(s);
  }
  if (StartsWith(path, prefix)) path.erase(0, prefix.size());
  if (path.empty()) return std::nullopt;
  return path;
}

// The path of a "diff --git a/X b/Y" line when it is unambiguous: both
// names quoted, or unquoted and equal (X == Y). Used only for hunks that
// come without ---/+++ lines, which git never writes.
std::string DiffGitPath(std::string_view s) {
  s = StripCr(s);
  if (!s.empty() && s[0] == '"') {
    size_t end = 0;
    auto a = Unquote(s, &end);
    if (!a || end >= s.size() || s[end] != ' ') return "";
    std::string_view rest = s.substr(end + 1);
    std::optional<std::string> b;
    if (!rest.empty() && rest[0] == '"') {
      b = Unquote(rest, &end);
    } else {
      b = std::string(rest);
    }
    if (!b || !StartsWith(*b, "b/")) return "";
    return b->substr(2);
  }
  // "a/P b/P": the two halves have the same length.
  if (s.size() < 5 || s.size() % 2 == 0) return "";
  size_t half = (s.size() - 1) / 2;
  std::string_view a = s.substr(0, half), b = s.substr(half + 1);
  if (s[half] != ' ' || !StartsWith(a, "a/") || !StartsWith(b, "b/")) return "";
  if (a.substr(2) != b.substr(2)) return "";
  return std::string(b.substr(2));
}

class Parser {
 public:
  explicit Parser(CommentableLines* out) : out_(out) {}

  void Line(std::string_view line) {
    if (in_hunk_ && Body(line)) return;
    in_hunk_ = false;
    Header(line);
  }

 private:
  // A line of the current hunk; false when it cannot be one (the hunk was
  // shorter than its header said): it is then read as a header.
  bool Body(std::string_view line) {
    // An empty line inside a hunk is a context line whose space a mailer or
    // editor stripped (git apply reads it so too).
    char kind = line.empty() ? ' ' : line[0];
    if (kind == '\\') return true;  // "\ No newline at end of file"
    if (kind == ' ' && old_left_ > 0 && new_left_ > 0) {
      Record(kLeft, old_line_++);
      Record(kRight, new_line_++);
      --old_left_;
      --new_left_;
    } else if (kind == '-' && old_left_ > 0) {
      Record(kLeft, old_line_++);
      --old_left_;
    } else if (kind == '+' && new_left_ > 0) {
      Record(kRight, new_line_++);
      --new_left_;
    } else {
      return false;
    }
    if (old_left_ == 0 && new_left_ == 0) in_hunk_ = false;
    return true;
  }

  enum Side { kLeft, kRight };

  // line of the current hunk, on side. The hunk's span is opened at its
  // first recorded line, so a hunk that records nothing leaves no span.
  void Record(Side side, int64_t line) {
    if (key_.empty()) return;
    (side == kLeft ? out_->left : out_->right)[key_].insert(line);
    if (!span_open_) {
      out_->hunks[key_].emplace_back();
      span_open_ = true;
    }
    HunkSpan& span = out_->hunks[key_].back();
    int64_t& first = side == kLeft ? span.left_first : span.right_first;
    int64_t& last = side == kLeft ? span.left_last : span.right_last;
    if (first == 0) first = line;
    last = line;
  }

  void Header(std::string_view line) {
    if (StartsWith(line, "diff --git ")) {
      // A new file: nothing of the previous one carries over.
      old_path_.clear();
      new_path_.clear();
      key_ = DiffGitPath(line.substr(11));
    } else if (StartsWith(line, "--- ")) {
      auto p = HeaderPath(line.substr(4), "a/");
      old_path_ = p ? *p : "";
      new_path_.clear();
      key_ = old_path_;  // until the +++ line names the new path
    } else if (StartsWith(line, "+++ ")) {
      auto p = HeaderPath(line.substr(4), "b/");
      new_path_ = p ? *p : "";
      // The new path; a deleted file (+++ /dev/null) under its old path.
      key_ = !new_path_.empty() ? new_path_ : old_path_;
    } else if (auto h = ParseHunkHeader(line)) {
      old_line_ = h->old_start;
      new_line_ = h->new_start;
      old_left_ = h->old_count;
      new_left_ = h->new_count;
      // A hunk without a file is still read through (so that its lines are
      // not taken for headers) but not recorded (Record skips an empty key).
      in_hunk_ = old_left_ > 0 || new_left_ > 0;
      span_open_ = false;
    }
  }

  CommentableLines* out_;
  std::string old_path_, new_path_;
  std::string key_;  // the current file's path in the result; "" when unknown
  bool in_hunk_ = false;
  bool span_open_ = false;               // the current hunk has its span in out_->hunks[key_]
  int64_t old_line_ = 0, new_line_ = 0;  // the next line's number on each side
  int64_t old_left_ = 0, new_left_ = 0;  // lines of the hunk still to come on each side
};

bool Shows(const CommentableLines& lines, const std::string& path, std::string_view side,
           int64_t line) {
  const auto& sides = side == "LEFT" ? lines.left : lines.right;
  auto it = sides.find(path);
  return it != sides.end() && it->second.count(line) > 0;
}

bool InSpan(const HunkSpan& h, std::string_view side, int64_t line) {
  return side == "LEFT" ? h.left_first <= line && line <= h.left_last
                        : h.right_first <= line && line <= h.right_last;
}

std::string SideName(std::string_view side) { return side == "LEFT" ? "LEFT" : "RIGHT"; }

}  // namespace

std::string WhyNotAnchored(const CommentableLines& lines, const std::string& path,
                           int64_t start_line, std::string_view start_side, int64_t line,
                           std::string_view side) {
  if (!lines.left.count(path) && !lines.right.count(path)) return "the file is not in the diff";
  if (start_line == 0) return Shows(lines, path, side, line) ? "" : "the line is not in the diff";
  if (!Shows(lines, path, start_side, start_line)) {
    return "the start line " + std::to_string(start_line) + " (" + SideName(start_side) +
           ") is not in the diff";
  }
  if (!Shows(lines, path, side, line)) {
    return "the end line " + std::to_string(line) + " (" + SideName(side) + ") is not in the diff";
  }
  auto hunks = lines.hunks.find(path);
  if (hunks != lines.hunks.end()) {
    for (const HunkSpan& h : hunks->second) {
      if (InSpan(h, start_side, start_line) && InSpan(h, side, line)) return "";
    }
  }
  return "the range spans more than one hunk of the diff; it must lie inside one hunk";
}

CommentableLines ParseHunks(std::string_view patch) {
  CommentableLines out;
  Parser parser(&out);
  while (!patch.empty()) {
    size_t nl = patch.find('\n');
    parser.Line(patch.substr(0, nl));
    if (nl == std::string_view::npos) break;
    patch.remove_prefix(nl + 1);
  }
  return out;
}

}  // namespace kiln::git
