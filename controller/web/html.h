// The web view's markup pieces: the page around every view, and the parts
// several views show. Every value is escaped here or by the caller with
// HtmlEscape; nothing a page shows is markup it did not write itself.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace kiln::web {

// A block longer than this (bytes or lines) is collapsed, never cut.
inline constexpr size_t kCollapseBytes = 2000;
inline constexpr size_t kCollapseLines = 30;

struct Viewer {
  std::string user;  // empty: not signed in (a share link)
  std::string csrf;
  bool forge = false;  // the local forge's pages are there to link
};

// A whole page: the head (style and script from /static, nothing inline),
// the navigation for a signed-in viewer, and body (markup) in <main>.
std::string Page(const std::string& title, const Viewer& viewer, const std::string& body);

// text in a <pre>, inside a collapsed <details> labelled with its size when
// long (or always).
std::string Collapsible(const std::string& label, const std::string& text, bool always = false);

// A unified diff with each line classed (file, hunk, add, del) for colour.
std::string DiffBlock(const std::string& diff);

// A run status as a coloured badge.
std::string Badge(const std::string& status);

// A budget's use as a bar: "used of limit unit"; no limit, no bar.
std::string Bar(const std::string& name, double used, double limit, const std::string& unit);

// "$0.001234" for micro-dollars; "" for anything else.
std::string Usd(const nlohmann::json& micro);

// A hidden form field with the viewer's CSRF token.
std::string CsrfField(const Viewer& viewer);

// A time in ms since the epoch as UTC "2026-12-07 10:04:05"; "" for 0.
std::string When(int64_t ms);

}  // namespace kiln::web
