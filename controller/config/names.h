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

// A host of a fleet (host_name): [A-Za-z0-9._-]{1,64}.
inline bool IsHostName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!detail::Word(c) && c != '-' && c != '.') return false;
  }
  return true;
}

// A forge label as a trigger names it: [A-Za-z0-9][A-Za-z0-9._:/-]{0,63}
// (kiln's own labels are lower-case: ready-to-spec, plan-approved, area:x).
inline bool IsLabel(std::string_view s) {
  if (s.empty() || s.size() > 64 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("._:/-").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// The labels kiln's pipeline uses, besides "area:<x>" (forge::DefaultLabels
// is these plus "area:*").
inline constexpr std::string_view kPipelineLabels[] = {"triaged", "needs-info",    "duplicate",
                                                       "bug",     "enhancement",   "documentation",
                                                       "blocked", "ready-to-spec", "plan-approved"};

// The forms IsTrigger accepts, for error messages and docs/skills.md.
inline constexpr std::string_view kTriggerForms =
    "issue.opened, pull.opened, pull.synchronized, schedule, label:<label>, "
    "review:approved-spec, comment:/kiln <word>";

// A pipeline trigger: the event that starts a role. One of issue.opened,
// pull.opened, pull.synchronized, schedule, review:approved-spec,
// label:<label> (IsLabel), or comment:/kiln <word> with <word> of
// [a-z][a-z0-9-]{0,31} (a comment whose first line is that command).
inline bool IsTrigger(std::string_view s) {
  for (std::string_view exact :
       {"issue.opened", "pull.opened", "pull.synchronized", "schedule", "review:approved-spec"}) {
    if (s == exact) return true;
  }
  constexpr std::string_view kLabel = "label:";
  if (s.substr(0, kLabel.size()) == kLabel) return IsLabel(s.substr(kLabel.size()));
  constexpr std::string_view kComment = "comment:/kiln ";
  if (s.substr(0, kComment.size()) == kComment) {
    std::string_view word = s.substr(kComment.size());
    if (word.empty() || word.size() > 32 || word[0] < 'a' || word[0] > 'z') return false;
    for (char c : word) {
      if (!detail::Lower(c) && c != '-') return false;
    }
    return true;
  }
  return false;
}

}  // namespace kiln::names
