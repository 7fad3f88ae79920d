#include "controller/git/ignore.h"

#include <cctype>
#include <cstring>

namespace kiln::git {
namespace {

using uchar = unsigned char;

// dowild()'s results, as in git's wildmatch.c, whose algorithm this is.
constexpr int kMatch = 0;
constexpr int kNoMatch = 1;
constexpr int kAbortAll = -1;         // no suffix of the text can match
constexpr int kAbortToStarStar = -2;  // only a '**' further up can still match

bool IsGlobSpecial(uchar c) { return c == '*' || c == '?' || c == '[' || c == '\\'; }

bool InClass(std::string_view cls, uchar c, bool* known) {
  *known = true;
  if (cls == "alnum") return std::isalnum(c);
  if (cls == "alpha") return std::isalpha(c);
  if (cls == "blank") return c == ' ' || c == '\t';
  if (cls == "cntrl") return std::iscntrl(c);
  if (cls == "digit") return std::isdigit(c);
  if (cls == "graph") return std::isgraph(c);
  if (cls == "lower") return std::islower(c);
  if (cls == "print") return std::isprint(c);
  if (cls == "punct") return std::ispunct(c);
  if (cls == "space") return std::isspace(c);
  if (cls == "upper") return std::isupper(c);
  if (cls == "xdigit") return std::isxdigit(c);
  *known = false;
  return false;
}

// Both strings are NUL-terminated.
int DoWild(const uchar* p, const uchar* text, bool pathname) {
  const uchar* pattern = p;
  for (uchar p_ch; (p_ch = *p) != '\0'; text++, p++) {
    uchar t_ch = *text;
    if (t_ch == '\0' && p_ch != '*') return kAbortAll;
    switch (p_ch) {
      case '\\':
        p_ch = *++p;  // the next character, literally
        [[fallthrough]];
      default:
        if (t_ch != p_ch) return kNoMatch;
        continue;
      case '?':
        if (pathname && t_ch == '/') return kNoMatch;
        continue;
      case '*': {
        bool match_slash;
        if (*++p == '*') {
          const uchar* prev_p = p - 2;
          while (*++p == '*') {
          }
          if ((prev_p < pattern || *prev_p == '/') &&
              (*p == '\0' || *p == '/' || (p[0] == '\\' && p[1] == '/'))) {
            // "foo/**/bar" also matches "foo/bar": try "**/" as nothing.
            if (p[0] == '/' && DoWild(p + 1, text, pathname) == kMatch) return kMatch;
            match_slash = true;
          } else {
            match_slash = false;
          }
        } else {
          match_slash = !pathname;  // without pathname, '*' is '**'
        }
        if (*p == '\0') {
          // A trailing "**" matches the rest; a trailing '*' only within one name.
          if (!match_slash && std::strchr(reinterpret_cast<const char*>(text), '/')) {
            return kNoMatch;
          }
          return kMatch;
        }
        if (!match_slash && *p == '/') {
          // "*/": the rest of this name, then the slash.
          const char* slash = std::strchr(reinterpret_cast<const char*>(text), '/');
          if (slash == nullptr) return kNoMatch;
          text = reinterpret_cast<const uchar*>(slash);
          break;  // the loop's increment consumes the slash
        }
        for (;;) {
          if (t_ch == '\0') break;
          // A literal after the '*': skip to its next occurrence.
          if (!IsGlobSpecial(*p)) {
            p_ch = *p;
            while ((t_ch = *text) != '\0' && (match_slash || t_ch != '/')) {
              if (t_ch == p_ch) break;
              text++;
            }
            if (t_ch != p_ch) return kNoMatch;
          }
          int matched = DoWild(p, text, pathname);
          if (matched != kNoMatch) {
            if (!match_slash || matched != kAbortToStarStar) return matched;
          } else if (!match_slash && t_ch == '/') {
            return kAbortToStarStar;
          }
          t_ch = *++text;
        }
        return kAbortAll;
      }
      case '[': {
        p_ch = *++p;
        if (p_ch == '^') p_ch = '!';
        bool negated = p_ch == '!';
        if (negated) p_ch = *++p;
        uchar prev_ch = 0;
        bool matched = false;
        do {
          if (p_ch == '\0') return kAbortAll;
          if (p_ch == '\\') {
            p_ch = *++p;
            if (p_ch == '\0') return kAbortAll;
            if (t_ch == p_ch) matched = true;
          } else if (p_ch == '-' && prev_ch && p[1] && p[1] != ']') {
            p_ch = *++p;
            if (p_ch == '\\') {
              p_ch = *++p;
              if (p_ch == '\0') return kAbortAll;
            }
            if (t_ch <= p_ch && t_ch >= prev_ch) matched = true;
            p_ch = 0;  // a range does not start another one
          } else if (p_ch == '[' && p[1] == ':') {
            const uchar* s = p += 2;
            while ((p_ch = *p) != '\0' && p_ch != ']') p++;
            if (p_ch == '\0') return kAbortAll;
            long len = p - s - 1;
            if (len < 0 || p[-1] != ':') {
              // No ":]": a plain '[' in the set.
              p = s - 2;
              p_ch = '[';
              if (t_ch == p_ch) matched = true;
              continue;
            }
            bool known;
            if (InClass(std::string_view(reinterpret_cast<const char*>(s), len), t_ch, &known)) {
              matched = true;
            }
            if (!known) return kAbortAll;
            p_ch = 0;
          } else if (t_ch == p_ch) {
            matched = true;
          }
        } while (prev_ch = p_ch, (p_ch = *++p) != ']');
        if (matched == negated || (pathname && t_ch == '/')) return kNoMatch;
        continue;
      }
    }
  }
  return *text != '\0' ? kNoMatch : kMatch;
}

// git's trim_trailing_spaces: trailing blanks go unless escaped by '\'.
std::string_view TrimTrailingSpaces(std::string_view line) {
  size_t end = line.size();
  size_t last_space = std::string_view::npos;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == ' ') {
      if (last_space == std::string_view::npos) last_space = i;
      continue;
    }
    if (line[i] == '\\' && ++i == line.size()) return line;
    last_space = std::string_view::npos;
  }
  if (last_space != std::string_view::npos) end = last_space;
  return line.substr(0, end);
}

}  // namespace

bool WildMatch(std::string_view pattern, std::string_view text, bool pathname) {
  std::string p(pattern), t(text);
  return DoWild(reinterpret_cast<const uchar*>(p.c_str()),
                reinterpret_cast<const uchar*>(t.c_str()), pathname) == kMatch;
}

IgnoreFile::IgnoreFile(std::string_view content) {
  if (content.substr(0, 3) == "\xEF\xBB\xBF") content.remove_prefix(3);  // UTF-8 BOM
  while (!content.empty()) {
    size_t nl = content.find('\n');
    std::string_view line = content.substr(0, nl);
    content.remove_prefix(nl == std::string_view::npos ? content.size() : nl + 1);
    if (line.empty() || line[0] == '#') continue;
    line = TrimTrailingSpaces(line);
    Pattern pattern;
    if (!line.empty() && line[0] == '!') {
      pattern.negated = true;
      line.remove_prefix(1);
    }
    if (!line.empty() && line.back() == '/') {
      pattern.dir_only = true;
      line.remove_suffix(1);
    }
    if (line.empty()) continue;
    pattern.basename_only = line.find('/') == std::string_view::npos;
    // An inner or leading '/' anchors the pattern to the file's directory.
    if (line[0] == '/') line.remove_prefix(1);
    pattern.glob = line;
    patterns_.push_back(std::move(pattern));
  }
}

IgnoreFile::Verdict IgnoreFile::Match(std::string_view path, bool is_dir) const {
  std::string_view name = path.substr(path.rfind('/') + 1);  // npos + 1 == 0
  for (auto it = patterns_.rbegin(); it != patterns_.rend(); ++it) {
    if (it->dir_only && !is_dir) continue;
    bool hit =
        it->basename_only ? WildMatch(it->glob, name, false) : WildMatch(it->glob, path, true);
    if (hit) return it->negated ? Verdict::kKept : Verdict::kIgnored;
  }
  return Verdict::kNone;
}

bool IsIgnored(const IgnoreFrame* frame, std::string_view path, bool is_dir) {
  for (; frame != nullptr; frame = frame->parent.get()) {
    IgnoreFile::Verdict v = frame->file.Match(path.substr(frame->base.size()), is_dir);
    if (v != IgnoreFile::Verdict::kNone) return v == IgnoreFile::Verdict::kIgnored;
  }
  return false;
}

}  // namespace kiln::git
