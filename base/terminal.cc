#include "base/terminal.h"

#include <cstdio>

namespace kiln {
namespace {

// The length of the valid UTF-8 sequence at s[i] and its code point; 0 when
// the bytes there are not one (overlong forms and surrogates included).
size_t Utf8At(std::string_view s, size_t i, char32_t* cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
  if (n == 0 || c > 0xf4 || i + n > s.size()) return 0;
  char32_t v = c & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    v = (v << 6) | (b(k) & 0x3f);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return n;
}

// Unicode's bidirectional formatting characters (UAX #9): marks, embeddings,
// overrides and isolates.
bool Bidi(char32_t cp) {
  return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

enum class Mode { kText, kLine, kJson };

std::string Escape(std::string_view s, Mode mode) {
  const bool keep_layout = mode != Mode::kLine;
  std::string out;
  out.reserve(s.size());
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c >= 0x20 && c != 0x7f) || (keep_layout && (c == '\n' || c == '\t'))) {
        out += static_cast<char>(c);
      } else if (mode == Mode::kJson) {
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\r') {
        out += "\\r";
      } else {
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
      }
      ++i;
      continue;
    }
    char32_t cp = 0;
    size_t n = Utf8At(s, i, &cp);
    if (n == 0) {
      // JSON cannot hold the byte itself: U+FFFD, as a decoder would read it.
      std::snprintf(buf, sizeof buf, mode == Mode::kJson ? "\\ufffd" : "\\x%02x", c);
      out += buf;
      ++i;
    } else if (cp <= 0x9f || Bidi(cp)) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
      out += buf;
      i += n;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace

std::string ForTerminal(std::string_view text) { return Escape(text, Mode::kText); }
std::string ForTerminalLine(std::string_view text) { return Escape(text, Mode::kLine); }
std::string ForTerminalJson(std::string_view json_text) { return Escape(json_text, Mode::kJson); }

}  // namespace kiln
