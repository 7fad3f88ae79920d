// .gitignore semantics for the search tool, on top of fnmatch(3) per path
// segment (the runtime links no libgit2). Supported: comments, blank lines,
// `!` negation (last matching rule wins), a trailing `/` for directories
// only, patterns with a `/` anchored to their .gitignore's directory, `**`
// for any number of directories, `\` escapes. A directory that is ignored is
// not descended into, so files below it cannot be re-included, as in git.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kiln::gitignore {

struct Rule {
  std::string base;  // directory of the .gitignore, relative to the root ("" for the root)
  std::vector<std::string> segments;
  bool negate = false;
  bool dir_only = false;
  bool anchored = false;  // matched against the whole path below base
};

// The rules of one .gitignore file located in directory base.
std::vector<Rule> Parse(std::string_view text, const std::string& base);

class Matcher {
 public:
  void Add(std::vector<Rule> rules);
  // path is relative to the root, '/'-separated.
  bool Ignored(const std::string& path, bool is_dir) const;
  // Rules added since the size was mark() can be dropped on leaving a directory.
  size_t mark() const { return rules_.size(); }
  void Truncate(size_t mark) { rules_.resize(mark); }

 private:
  std::vector<Rule> rules_;
};

}  // namespace kiln::gitignore
