// What a replay hides before it compares: volatile text (timestamps,
// temporary paths, pids, durations, run ids) replaced by placeholders, by
// rules in a fixed order — the built-in ones, then the configuration's
// (replay.normalise), then the two runs' ids. docs/replay.md lists them.
#pragma once

#include <cstdint>
#include <regex>
#include <string>
#include <vector>

#include "base/result.h"

namespace kiln::replay {

struct Rule {
  std::string name;     // "timestamp", "tmp-path", ..., or the config's "FILE:LINE"
  std::string pattern;  // ECMAScript regular expression
  std::string replace;  // placeholder; $1.. refer to groups
  std::string source;   // "built-in", "config FILE:LINE", "this replay"
};

// The built-in rules, in the order they apply.
std::vector<Rule> BuiltinRules();

// A rule that replaces the exact text with the placeholder.
Rule LiteralRule(const std::string& name, const std::string& text, const std::string& replace);

class Normaliser {
 public:
  // Compiles every rule; an error names the rule and its source.
  static Result<Normaliser> Make(std::vector<Rule> rules);

  // text with every rule applied in turn; hits[i] counts rule i's matches
  // (hits is resized to the number of rules).
  std::string Apply(const std::string& text, std::vector<uint64_t>* hits) const;

  const std::vector<Rule>& rules() const { return rules_; }

 private:
  std::vector<Rule> rules_;
  std::vector<std::regex> compiled_;
};

}  // namespace kiln::replay
