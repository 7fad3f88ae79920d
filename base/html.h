// Text for HTML: every character markup would read (<, >, &, and both
// quotes, which could end an attribute) as its entity. What kiln shows in a
// page came from issues, models and tools: escaped, never interpreted.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

inline std::string HtmlEscape(std::string_view s, bool quotes = true) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += quotes ? "&quot;" : "\"";
        break;
      case '\'':
        out += quotes ? "&#39;" : "'";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace kiln
