// Canonical JSON: the exact bytes that `jq -cS .` (jq 1.6) prints for a value,
// so that a third party can recompute every record hash with jq and sha256sum.
//
// The canonical form is: no insignificant whitespace; object keys sorted by
// their UTF-8 bytes, no duplicates; strings in valid UTF-8, with only `\"`,
// `\\`, `\b`, `\f`, `\n`, `\r`, `\t` and `\u00xx` (lowercase hex, for the other
// bytes below 0x20 and for 0x7f) escaped; numbers are integers in
// [-(2^53-1), 2^53-1] without sign on zero, fraction or exponent (jq prints
// numbers through doubles, so nothing else round-trips); at most kMaxDepth
// levels of nesting. docs/session-log.md is the normative statement.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"

namespace kiln::sessionlog {

inline constexpr int kMaxDepth = 128;
inline constexpr int64_t kMaxSafeInteger = 9007199254740991;  // 2^53 - 1

class Redactor;

// Appends the canonical bytes of v to out. Strings (object keys included) go
// through redactor first when it is non-null; bytes that are not valid UTF-8
// become U+FFFD, as jq does. `depth` is the nesting level v sits at. Fails,
// naming the JSON path under `path`, on a fractional or out-of-range number, a
// binary value, or nesting deeper than kMaxDepth.
Status AppendCanonical(const nlohmann::json& v, std::string* out, const Redactor* redactor,
                       std::string_view path, int depth);

// Appends s as a canonical JSON string (quotes included), repairing bad UTF-8.
void AppendCanonicalString(std::string_view s, std::string* out);

// A validating reader for canonical JSON that does not allocate: the parser
// for untrusted session log lines. Every method checks canonical form, not just
// JSON syntax; on failure error() says what was wrong and pos() where.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  // Any canonical value at the current position, nested at `depth`.
  bool Value(int depth);
  // A string; *raw receives the bytes between the quotes, still escaped.
  bool String(std::string_view* raw);
  bool Integer(int64_t* v);
  // An object: `{`, then Key() / value pairs separated by Comma(), then `}`.
  bool Consume(char c);
  bool Peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  // An object key; checks it sorts after *prev (the previous key of the same
  // object, raw; empty view for the first key) and updates *prev.
  bool Key(std::string_view* prev, bool first, std::string_view* key);

  bool AtEnd() const { return pos_ == text_.size(); }
  size_t pos() const { return pos_; }
  const char* error() const { return error_; }
  bool Fail(const char* message) {
    error_ = message;
    return false;
  }

 private:
  bool Object(int depth);
  bool Array(int depth);
  const char* Special(const char* p, const char* end);
  const char* FailAt(const char* p, const char* message);
  bool Literal(std::string_view word);

  std::string_view text_;
  size_t pos_ = 0;
  const char* error_ = "";
};

// Checks that text is exactly one canonical JSON value; the message names the
// byte offset.
Status CheckCanonical(std::string_view text);

// Whether s is valid UTF-8 (RFC 3629), which the canonical form keeps as it is.
bool ValidUtf8(std::string_view s);

// Decodes the escaped contents of a canonical string (as from Scanner::String).
std::string Unescape(std::string_view raw);

}  // namespace kiln::sessionlog
