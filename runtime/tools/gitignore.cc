#include "runtime/tools/gitignore.h"

#include <fnmatch.h>

#include "base/strings.h"

namespace kiln::gitignore {
namespace {

std::vector<std::string> SplitPath(std::string_view p) {
  std::vector<std::string> out;
  for (auto& s : Split(p, '/')) {
    if (!s.empty()) out.push_back(std::move(s));
  }
  return out;
}

bool MatchSegments(const std::vector<std::string>& pat, size_t pi,
                   const std::vector<std::string>& path, size_t si) {
  if (pi == pat.size()) return si == path.size();
  if (pat[pi] == "**") {
    for (size_t k = si; k <= path.size(); ++k) {
      if (MatchSegments(pat, pi + 1, path, k)) return true;
    }
    return false;
  }
  if (si == path.size()) return false;
  if (::fnmatch(pat[pi].c_str(), path[si].c_str(), 0) != 0) return false;
  return MatchSegments(pat, pi + 1, path, si + 1);
}

}  // namespace

std::vector<Rule> Parse(std::string_view text, const std::string& base) {
  std::vector<Rule> rules;
  for (std::string line : Split(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // Trailing spaces are dropped unless escaped with a backslash.
    while (!line.empty() && line.back() == ' ' &&
           !(line.size() >= 2 && line[line.size() - 2] == '\\')) {
      line.pop_back();
    }
    if (line.empty() || line[0] == '#') continue;
    Rule r;
    r.base = base;
    if (line[0] == '!') {
      r.negate = true;
      line.erase(0, 1);
    } else if (line[0] == '\\' && line.size() > 1 && (line[1] == '!' || line[1] == '#')) {
      line.erase(0, 1);
    }
    if (!line.empty() && line.back() == '/') {
      r.dir_only = true;
      while (!line.empty() && line.back() == '/') line.pop_back();
    }
    if (line.empty()) continue;
    r.anchored = line.find('/') != std::string::npos;
    r.segments = SplitPath(line);
    if (r.segments.empty()) continue;
    rules.push_back(std::move(r));
  }
  return rules;
}

void Matcher::Add(std::vector<Rule> rules) {
  for (auto& r : rules) rules_.push_back(std::move(r));
}

bool Matcher::Ignored(const std::string& path, bool is_dir) const {
  bool ignored = false;
  std::vector<std::string> full = SplitPath(path);
  if (full.empty()) return false;
  for (const Rule& r : rules_) {
    if (r.dir_only && !is_dir) continue;
    // Only rules from directories above path apply, and they see the path
    // relative to their own directory.
    std::vector<std::string> base = SplitPath(r.base);
    if (base.size() >= full.size()) continue;
    bool under = true;
    for (size_t i = 0; i < base.size(); ++i) under &= base[i] == full[i];
    if (!under) continue;
    std::vector<std::string> rel(full.begin() + static_cast<long>(base.size()), full.end());
    bool match = r.anchored ? MatchSegments(r.segments, 0, rel, 0)
                            : ::fnmatch(r.segments[0].c_str(), rel.back().c_str(), 0) == 0;
    if (match) ignored = !r.negate;
  }
  return ignored;
}

}  // namespace kiln::gitignore
