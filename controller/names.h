// The shapes of the names the controller accepts from configuration and
// skills. Written out rather than as std::regex: GCC 12 reports a false
// -Wmaybe-uninitialized inside <regex> under the sanitizers, and these are
// one character class each.
#pragma once

#include <cctype>
#include <string_view>

namespace kiln::names {

namespace detail {
inline bool Lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
inline bool Word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
}  // namespace detail

// A role or skill: [a-z0-9][a-z0-9-]{0,63}.
inline bool IsRole(std::string_view s) {
  if (s.empty() || s.size() > 64 || !detail::Lower(s[0])) return false;
  for (char c : s) {
    if (!detail::Lower(c) && c != '-') return false;
  }
  return true;
}

// A model gateway: [a-z0-9-]{1,64}.
inline bool IsGateway(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!detail::Lower(c) && c != '-') return false;
  }
  return true;
}

// A secret: [A-Za-z_][A-Za-z0-9_]{0,63}.
inline bool IsSecret(std::string_view s) {
  if (s.empty() || s.size() > 64 || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!detail::Word(c)) return false;
  }
  return true;
}

// A pipeline trigger: [a-z0-9_.:/ -]{1,128}.
inline bool IsTrigger(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!detail::Lower(c) && std::string_view("_.:/ -").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

}  // namespace kiln::names
