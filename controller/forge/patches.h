// A pull request's unified diff cut into its files, as GitHub's API shows
// them (GET .../pulls/N/files), and GitHub's "position" of a review comment:
// the line's place in its file's part of the diff, counted from 1 at the
// line below the file's first "@@" header (later headers take a place too).
//
// The diff is the forge's own (git::DiffCommits), of content an agent or a
// user wrote: any bytes are accepted, and what does not parse is left out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::forge::patches {

// One line below a file's first hunk header, in the diff's order: its
// place there is its position.
struct Line {
  char kind = ' ';       // ' ' context, '+' added, '-' deleted, '@' a later hunk header
  int64_t old_line = 0;  // the base's line number (context and deleted lines)
  int64_t new_line = 0;  // the head's line number (context and added lines)
};

struct FilePatch {
  std::string path;      // the head's path (a deleted file: the base's)
  std::string old_path;  // renames and copies: the base's path; else ""
  std::string status;    // added | removed | modified | renamed | copied
  int64_t additions = 0;
  int64_t deletions = 0;
  bool binary = false;
  std::string patch;        // from the first "@@" line to the file's end; "" when none
  std::vector<Line> lines;  // lines[p - 1] is position p
};

// The files of a `git diff` patch, in its order.
std::vector<FilePatch> Split(std::string_view diff);

// The line at position (1 = the line below the first "@@") as a review
// comment anchors it: side "RIGHT" with the head's number for context and
// added lines, "LEFT" with the base's for deleted ones. nullopt when the
// position is outside the file's diff or on a hunk header.
struct Anchor {
  int64_t line = 0;
  std::string side;
};
std::optional<Anchor> AtPosition(const FilePatch& file, int64_t position);
// The position of line on side ("RIGHT" or "LEFT"); nullopt when the diff
// does not show it.
std::optional<int64_t> PositionOf(const FilePatch& file, int64_t line, std::string_view side);
// GitHub's diff_hunk of a comment at position: its hunk's header and lines
// up to and including the position's.
std::string HunkUpTo(const FilePatch& file, int64_t position);

}  // namespace kiln::forge::patches
