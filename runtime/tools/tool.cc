#include "runtime/tools/tool.h"

#include <algorithm>

namespace kiln::tool {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when it is invalid.
size_t SeqLen(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
    return 0;
  }
  return n;
}

// Moves i back to the start of the UTF-8 sequence it is in.
size_t Boundary(std::string_view s, size_t i) {
  size_t back = 0;
  while (i > 0 && i < s.size() && back < 3 && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) {
    --i;
    ++back;
  }
  return i;
}

}  // namespace

std::string SanitizeUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t n = SeqLen(text, i);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string CapHeadTail(std::string_view text, size_t cap, bool* truncated) {
  if (text.size() <= cap) {
    if (truncated) *truncated = false;
    return std::string(text);
  }
  if (truncated) *truncated = true;
  size_t head = Boundary(text, cap / 2);
  size_t tail_start = Boundary(text, text.size() - cap / 2);
  std::string out(text.substr(0, head));
  out += "\n[... " + std::to_string(tail_start - head) + " bytes omitted ...]\n";
  out.append(text.substr(tail_start));
  return out;
}

bool LooksBinary(std::string_view head) {
  std::string_view probe = head.substr(0, std::min<size_t>(head.size(), 8000));
  if (probe.find('\0') != std::string_view::npos) return true;
  for (size_t i = 0; i < probe.size();) {
    size_t n = SeqLen(probe, i);
    if (n == 0) {
      // A sequence cut by the probe's end is not evidence of binary data.
      bool cut = probe.size() - i < 4 && head.size() > probe.size();
      return !cut;
    }
    i += n;
  }
  return false;
}

std::string StringArg(const nlohmann::json& input, const char* key) {
  auto it = input.find(key);
  return it != input.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace kiln::tool
