// .gitignore rules as git applies them to untracked files. Collect reads the
// .gitignore files of the workspace itself (regular files only, never through
// a link); .git/info/exclude and the host's core.excludesFile are not read:
// the first belongs to the agent's .git, the second to the host.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::git {

// git's wildmatch: '*', '?', '[...]' (ranges, '!' or '^' negation,
// '[:alpha:]' classes) and '\' escapes. With pathname, '*', '?' and '[...]'
// do not match '/', and '**' between slashes matches any number of
// directories.
bool WildMatch(std::string_view pattern, std::string_view text, bool pathname);

// The patterns of one .gitignore file.
class IgnoreFile {
 public:
  explicit IgnoreFile(std::string_view content);

  enum class Verdict { kNone, kIgnored, kKept };
  // path relative to the file's directory, "a/b.o". The last pattern that
  // matches decides; kKept for a matching "!pattern".
  Verdict Match(std::string_view path, bool is_dir) const;
  bool empty() const { return patterns_.empty(); }

 private:
  struct Pattern {
    std::string glob;
    bool negated = false;
    bool dir_only = false;       // "build/": directories only
    bool basename_only = false;  // no '/' inside: matches the name at any depth
  };
  std::vector<Pattern> patterns_;
};

// The .gitignore files in force in one directory: the nearest first, then its
// parents'. Immutable, shared by the subdirectories that add no file.
struct IgnoreFrame {
  std::shared_ptr<const IgnoreFrame> parent;
  std::string base;  // the file's directory relative to the root, "" or "dir/sub/"
  IgnoreFile file;
};

// Whether path (relative to the workspace root, below frame's directory) is
// ignored. A nearer file overrides a farther one, as in git.
bool IsIgnored(const IgnoreFrame* frame, std::string_view path, bool is_dir);

}  // namespace kiln::git
