// The text of a change as `git diff` prints it (git's default quoting of
// paths, "Binary files ... differ" instead of binary patches), so that
// `git apply` takes the result.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "controller/git/scan.h"

namespace kiln::git {

// One side of a change as the patch sees it.
struct Content {
  std::string bytes;       // the content, when present and not too large
  bool too_large = false;  // larger than max_file_bytes: left out
  bool binary = false;     // a NUL in the first 8000 bytes, as git decides
};

// The unified diff (3 lines of context) of two texts, headed "--- old_label"
// and "+++ new_label"; only the headers when they are equal.
Result<std::string> UnifiedDiff(std::string_view old_text, std::string_view new_text,
                                const std::string& old_label, const std::string& new_label);

// True when git would call data binary: a NUL in its first 8000 bytes.
bool LooksBinary(const std::string& data);

// Appends the section(s) of c to out: one "diff --git" section, or for a type
// change a deletion then an addition (as git prints it). A FIFO, socket or
// device has no content: only the deletion of what was tracked there, if
// anything, appears.
Status AppendPatch(const Change& c, const Content& old_side, const Content& new_side,
                   std::string* out);

// git's quoting of a path in patch headers (core.quotePath on): prefix+path,
// or in double quotes with C escapes when it holds control characters, '"',
// '\' or bytes >= 0x7f.
std::string QuotePath(const std::string& prefix, const std::string& path);

}  // namespace kiln::git
