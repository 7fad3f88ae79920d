#include "controller/replay/normalise.h"

namespace kiln::replay {

std::vector<Rule> BuiltinRules() {
  const std::string builtin = "built-in";
  return {
      // RFC 3339 / ISO 8601: 2026-12-06T16:19:52.123Z, 2026-12-06 16:19:52+01:00
      {"timestamp", R"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)",
       "<timestamp>", builtin},
      // date(1)'s default: Sun Dec  6 16:19:52 UTC 2026
      {"date",
       R"((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d{2}:\d{2}:\d{2}(?: [A-Z]{2,5})? \d{4})",
       "<timestamp>", builtin},
      // mktemp's names and what lives under them
      {"tmp-path", R"((?:/var)?/tmp/[^\s"'\\:,;)\]}]+)", "<tmp>", builtin},
      {"pid", R"(\b(pid|PID|process) ?[=:#]? ?\d+)", "$1 <pid>", builtin},
      // 12ms, 0.5 s, 3 seconds, time(1)'s 0m0.003s
      {"duration",
       R"(\b\d+m\d+(?:\.\d+)?s\b|\b\d+(?:\.\d+)? ?(?:ns|us|ms|s|sec|secs|seconds|min|minutes)\b)",
       "<duration>", builtin},
  };
}

Rule LiteralRule(const std::string& name, const std::string& text, const std::string& replace) {
  std::string escaped;
  for (char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}/-").find(c) != std::string_view::npos) escaped += '\\';
    escaped += c;
  }
  return {name, escaped, replace, "this replay"};
}

Result<Normaliser> Normaliser::Make(std::vector<Rule> rules) {
  Normaliser n;
  for (const Rule& r : rules) {
    try {
      n.compiled_.emplace_back(r.pattern, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      return Error::Invalid("normalisation rule " + Quote(r.name) + " (" + r.source +
                            "): the pattern " + Quote(r.pattern) +
                            " is not a valid regular expression: " + e.what());
    }
  }
  n.rules_ = std::move(rules);
  return n;
}

std::string Normaliser::Apply(const std::string& text, std::vector<uint64_t>* hits) const {
  hits->resize(rules_.size(), 0);
  std::string cur = text;
  for (size_t i = 0; i < rules_.size(); ++i) {
    std::string out;
    auto last = cur.cbegin();
    for (std::sregex_iterator it(cur.cbegin(), cur.cend(), compiled_[i]), end; it != end; ++it) {
      const std::smatch& m = *it;
      if (m.length(0) == 0) continue;  // an empty match replaces nothing
      out.append(last, m[0].first);
      out += m.format(rules_[i].replace);
      last = m[0].second;
      ++(*hits)[i];
    }
    if (last == cur.cbegin()) continue;
    out.append(last, cur.cend());
    cur = std::move(out);
  }
  return cur;
}

}  // namespace kiln::replay
