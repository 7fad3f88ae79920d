#include "controller/web/html.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>

#include "base/html.h"

namespace kiln::web {

std::string Page(const std::string& title, const Viewer& viewer, const std::string& body) {
  std::string nav;
  if (!viewer.user.empty()) {
    nav = "<nav><a href=\"/\">Runs</a>" +
          std::string(viewer.forge ? "<a href=\"/repos\">Repositories</a>" : "") +
          "<span class=\"who\">" + HtmlEscape(viewer.user) +
          "</span><form method=\"post\" action=\"/logout\" class=\"inline\">" + CsrfField(viewer) +
          "<button type=\"submit\">Sign out</button></form></nav>";
  }
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<title>" +
         HtmlEscape(title) +
         " · kiln</title><link rel=\"stylesheet\" href=\"/static/kiln.css\">"
         "<script src=\"/static/kiln.js\" defer></script></head>\n<body><header><a class=\"brand\" "
         "href=\"/\">kiln</a>" +
         nav + "</header>\n<main>" + body + "</main></body></html>\n";
}

std::string Collapsible(const std::string& label, const std::string& text, bool always) {
  const bool long_text =
      text.size() > kCollapseBytes ||
      static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) > kCollapseLines;
  if (text.empty()) return "";
  if (!long_text && !always) return "<pre>" + HtmlEscape(text) + "</pre>";
  return "<details><summary>" + HtmlEscape(label) + " (" + std::to_string(text.size()) +
         " bytes)</summary><pre>" + HtmlEscape(text) + "</pre></details>";
}

std::string DiffBlock(const std::string& diff) {
  std::string out = "<pre class=\"diff\">";
  std::istringstream in(diff);
  std::string line;
  while (std::getline(in, line)) {
    const char* cls = line.starts_with("diff ") || line.starts_with("+++ ") ||
                              line.starts_with("--- ") || line.starts_with("index ")
                          ? "file"
                      : line.starts_with("@@") ? "hunk"
                      : line.starts_with("+")  ? "add"
                      : line.starts_with("-")  ? "del"
                                               : "ctx";
    out += "<span class=\"" + std::string(cls) + "\">" + HtmlEscape(line) + "\n</span>";
  }
  return out + "</pre>";
}

std::string Badge(const std::string& status) {
  return "<span class=\"badge " + HtmlEscape(status) + "\">" + HtmlEscape(status) + "</span>";
}

std::string Bar(const std::string& name, double used, double limit, const std::string& unit) {
  auto fmt = [](double v) {
    char buf[32];
    const char* f = v == static_cast<double>(static_cast<int64_t>(v)) ? "%.0f"
                    : v >= 10                                         ? "%.1f"
                                                                      : "%.4g";
    std::snprintf(buf, sizeof buf, f, v);
    return std::string(buf);
  };
  std::string text = fmt(used) + (limit > 0 ? " of " + fmt(limit) : "") + " " + unit;
  std::string bar;
  if (limit > 0) {
    int pct = static_cast<int>(std::min(100.0, used * 100.0 / limit));
    bar = "<progress max=\"100\" value=\"" + std::to_string(pct) + "\"></progress>";
  }
  return "<div class=\"budget\" data-budget=\"" + HtmlEscape(name) + "\"><span class=\"name\">" +
         HtmlEscape(name) + "</span>" + bar + "<span class=\"use\">" + HtmlEscape(text) +
         "</span></div>";
}

std::string Usd(const nlohmann::json& micro) {
  if (!micro.is_number()) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.6f", micro.get<double>() / 1e6);
  return buf;
}

std::string CsrfField(const Viewer& viewer) {
  return "<input type=\"hidden\" name=\"csrf\" value=\"" + HtmlEscape(viewer.csrf) + "\">";
}

std::string When(int64_t ms) {
  if (ms <= 0) return "";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

}  // namespace kiln::web
