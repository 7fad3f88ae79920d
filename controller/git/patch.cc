#include "controller/git/patch.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "controller/git/libgit.h"

namespace kiln::git {
namespace {

// git's abbreviation length for "index" lines.
constexpr size_t kAbbrev = 7;

std::string Mode(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06o", mode);
  return buf;
}

std::string Abbrev(const git_oid& oid, bool present) {
  return present ? OidHex(oid).substr(0, kAbbrev) : std::string(kAbbrev, '0');
}

// "--- a/x" and "+++ b/x": git ends a label holding a space with a tab, so
// that trailing blanks of the name survive.
std::string Label(const std::string& label) {
  return label.find(' ') == std::string::npos ? label : label + "\t";
}

int OnHunk(const git_diff_delta*, const git_diff_hunk* hunk, void* payload) {
  static_cast<std::string*>(payload)->append(hunk->header, hunk->header_len);
  return 0;
}

int OnLine(const git_diff_delta*, const git_diff_hunk*, const git_diff_line* line, void* payload) {
  auto* out = static_cast<std::string*>(payload);
  // The "\ No newline at end of file" lines carry their own text and no origin.
  if (line->origin == GIT_DIFF_LINE_CONTEXT || line->origin == GIT_DIFF_LINE_ADDITION ||
      line->origin == GIT_DIFF_LINE_DELETION) {
    out->push_back(line->origin);
  }
  out->append(line->content, line->content_len);
  return 0;
}

// One "diff --git" section between two sides, either of which may be absent
// (mode 0).
Status Section(const std::string& path, uint32_t old_mode, const git_oid& old_id,
               const Content& old_side, uint32_t new_mode, const git_oid& new_id,
               const Content& new_side, std::string* out) {
  std::string a = QuotePath("a/", path);
  std::string b = QuotePath("b/", path);
  out->append("diff --git " + a + " " + b + "\n");
  if (old_mode == 0) {
    out->append("new file mode " + Mode(new_mode) + "\n");
  } else if (new_mode == 0) {
    out->append("deleted file mode " + Mode(old_mode) + "\n");
  } else if (old_mode != new_mode) {
    out->append("old mode " + Mode(old_mode) + "\nnew mode " + Mode(new_mode) + "\n");
  }
  bool both = old_mode != 0 && new_mode != 0;
  if (both && git_oid_equal(&old_id, &new_id)) return Ok();  // the mode alone changed
  out->append("index " + Abbrev(old_id, old_mode != 0) + ".." + Abbrev(new_id, new_mode != 0));
  out->append(both && old_mode == new_mode ? " " + Mode(old_mode) + "\n" : "\n");
  std::string from = old_mode != 0 ? a : "/dev/null";
  std::string to = new_mode != 0 ? b : "/dev/null";
  if (old_side.too_large || new_side.too_large || old_side.binary || new_side.binary) {
    out->append("Binary files " + from + " and " + to + " differ\n");
    return Ok();
  }
  if (old_side.bytes.empty() && new_side.bytes.empty()) return Ok();  // an empty file
  out->append("--- " + Label(from) + "\n+++ " + Label(to) + "\n");
  git_diff_options opts;
  git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
  opts.flags = GIT_DIFF_FORCE_TEXT;  // binary was decided above, as git decides it
  opts.context_lines = 3;
  opts.interhunk_lines = 0;
  const char* old_data = old_mode != 0 ? old_side.bytes.data() : nullptr;
  const char* new_data = new_mode != 0 ? new_side.bytes.data() : nullptr;
  if (git_diff_buffers(old_data, old_side.bytes.size(), nullptr, new_data, new_side.bytes.size(),
                       nullptr, &opts, nullptr, nullptr, OnHunk, OnLine, out) != 0) {
    return GitError("diff of " + Quote(path));
  }
  return Ok();
}

}  // namespace

Result<std::string> UnifiedDiff(std::string_view old_text, std::string_view new_text,
                                const std::string& old_label, const std::string& new_label) {
  InitLibgit2();
  std::string out = "--- " + Label(old_label) + "\n+++ " + Label(new_label) + "\n";
  git_diff_options opts;
  git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
  opts.flags = GIT_DIFF_FORCE_TEXT;
  opts.context_lines = 3;
  if (git_diff_buffers(old_text.data(), old_text.size(), nullptr, new_text.data(), new_text.size(),
                       nullptr, &opts, nullptr, nullptr, OnHunk, OnLine, &out) != 0) {
    return GitError("diff of " + Quote(old_label) + " and " + Quote(new_label));
  }
  return out;
}

bool LooksBinary(const std::string& data) {
  return std::memchr(data.data(), '\0', std::min<size_t>(data.size(), 8000)) != nullptr;
}

Status AppendPatch(const Change& c, const Content& old_side, const Content& new_side,
                   std::string* out) {
  static const Content kAbsent;
  static const git_oid kZero{};
  if (c.status == 'T') {
    // git shows a type change as the old entry deleted and the new one added.
    KILN_TRY(Section(c.path, c.old_mode, c.old_id, old_side, 0, kZero, kAbsent, out));
    if (c.new_mode == 0) return Ok();
    return Section(c.path, 0, kZero, kAbsent, c.new_mode, c.new_id, new_side, out);
  }
  if (c.status == 'A' && c.new_mode == 0) return Ok();  // a FIFO, socket or device
  return Section(c.path, c.old_mode, c.old_id, old_side, c.new_mode, c.new_id, new_side, out);
}

std::string QuotePath(const std::string& prefix, const std::string& path) {
  std::string whole = prefix + path;
  bool quote = false;
  for (unsigned char ch : whole) {
    if (ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x7f) quote = true;
  }
  if (!quote) return whole;
  std::string out = "\"";
  for (unsigned char ch : whole) {
    switch (ch) {
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\v':
        out += "\\v";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (ch < 0x20 || ch >= 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\%03o", ch);
          out += buf;
        } else {
          out += static_cast<char>(ch);
        }
    }
  }
  out += "\"";
  return out;
}

}  // namespace kiln::git
