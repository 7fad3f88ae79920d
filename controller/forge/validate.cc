#include "controller/forge/validate.h"

#include "base/strings.h"
#include "controller/config/names.h"

#include <algorithm>
#include <cctype>
#include <iterator>

namespace kiln::forge::validate {
namespace {

bool Alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

bool NameChar(char c) { return Alnum(c) || c == '.' || c == '_' || c == '-'; }

bool LabelChar(char c) { return NameChar(c) || c == '/'; }

bool Hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

Status OneOf(std::string_view value, std::string_view what,
             std::initializer_list<std::string_view> allowed) {
  for (std::string_view a : allowed) {
    if (value == a) return Ok();
  }
  std::string list;
  for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  return Error::Invalid(std::string(what) + " " + Quote(value) + " is not one of " + list);
}

Status Segment(std::string_view repo, std::string_view seg, std::string_view what) {
  if (seg.empty() || seg.size() > 100) {
    return Error::Invalid("repository " + Quote(repo) + ": the " + std::string(what) +
                          " must be 1 to 100 characters");
  }
  if (seg.front() == '.') {
    return Error::Invalid("repository " + Quote(repo) + ": the " + std::string(what) +
                          " must not start with '.'");
  }
  if (!std::all_of(seg.begin(), seg.end(), NameChar)) {
    return Error::Invalid("repository " + Quote(repo) + ": the " + std::string(what) +
                          " may only hold letters, digits, '.', '_' and '-'");
  }
  return Ok();
}

}  // namespace

const std::vector<std::string>& DefaultLabels() {
  static const std::vector<std::string> labels = [] {
    std::vector<std::string> all(std::begin(names::kPipelineLabels),
                                 std::end(names::kPipelineLabels));
    all.push_back("area:*");
    return all;
  }();
  return labels;
}

Status RepoName(std::string_view repo) {
  size_t slash = repo.find('/');
  if (slash == std::string_view::npos || repo.find('/', slash + 1) != std::string_view::npos) {
    return Error::Invalid("repository " + Quote(repo) + " is not of the form owner/name");
  }
  KILN_TRY(Segment(repo, repo.substr(0, slash), "owner"));
  std::string_view name = repo.substr(slash + 1);
  KILN_TRY(Segment(repo, name, "name"));
  if (name.size() >= 4 && name.substr(name.size() - 4) == ".git") {
    return Error::Invalid("repository " + Quote(repo) + ": the name must not end in '.git'");
  }
  return Ok();
}

Status UserName(std::string_view user) {
  std::string_view base = user;
  if (base.size() > 5 && base.substr(base.size() - 5) == "[bot]") {
    base.remove_suffix(5);
  }
  if (base.empty() || base.size() > 64 || !Alnum(base.front()) ||
      !std::all_of(base.begin(), base.end(), NameChar)) {
    return Error::Invalid("user name " + Quote(user) +
                          " must be 1 to 64 letters, digits, '.', '_' or '-', starting with a "
                          "letter or digit (optionally followed by '[bot]')");
  }
  return Ok();
}

bool LabelInSet(std::string_view label, const std::vector<std::string>& set) {
  for (const std::string& entry : set) {
    if (!entry.empty() && entry.back() == '*') {
      std::string_view prefix(entry.data(), entry.size() - 1);
      if (label.size() > prefix.size() && label.substr(0, prefix.size()) == prefix &&
          label.size() <= 100) {
        std::string_view rest = label.substr(prefix.size());
        if (std::all_of(rest.begin(), rest.end(), LabelChar)) return true;
      }
    } else if (label == entry) {
      return true;
    }
  }
  return false;
}

Status Label(std::string_view label, const std::string& repo, const std::vector<std::string>& set) {
  if (LabelInSet(label, set)) return Ok();
  return Error::Invalid("label " + Quote(label) + " is not in the label set of " + Quote(repo) +
                        ": " + Join(set, ", "));
}

Status Title(std::string_view title) {
  bool blank = std::all_of(title.begin(), title.end(),
                           [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  if (blank) return Error::Invalid("the title is empty");
  if (title.find('\n') != std::string_view::npos || title.find('\r') != std::string_view::npos) {
    return Error::Invalid("the title must be one line");
  }
  if (title.size() > 256) {
    return Error::Invalid("the title is " + std::to_string(title.size()) +
                          " bytes long, more than 256");
  }
  return Ok();
}

Status Body(std::string_view body, std::string_view what) {
  if (body.size() > 65536) {
    return Error::Invalid("the " + std::string(what) + " is " + std::to_string(body.size()) +
                          " bytes long, more than 65536");
  }
  return Ok();
}

Result<std::string> Sha(std::string_view sha, std::string_view what) {
  if (sha.size() != 40 || !std::all_of(sha.begin(), sha.end(), Hex)) {
    return Error::Invalid(std::string(what) + " " + Quote(sha) + " is not a 40-hex commit sha");
  }
  std::string out(sha);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status Verdict(std::string_view verdict) {
  return OneOf(verdict, "verdict", {"approve", "comment", "request_changes"});
}

Status Side(std::string_view side) { return OneOf(side, "side", {"RIGHT", "LEFT"}); }

Status Severity(std::string_view severity) {
  return OneOf(severity, "severity", {"blocker", "major", "minor", "nit"});
}

Status StatusState(std::string_view state) {
  return OneOf(state, "state", {"pending", "success", "failure", "error"});
}

Status CommentRange(int64_t start_line, std::string_view start_side, int64_t line,
                    std::string_view side) {
  if (start_line == 0) {
    if (start_side.empty()) return Ok();
    return Error::Invalid("start_side " + Quote(start_side) + " is set without a start_line");
  }
  if (start_line < 0) {
    return Error::Invalid("start_line " + std::to_string(start_line) + " must be 1 or more");
  }
  KILN_TRY(OneOf(start_side, "start_side", {"RIGHT", "LEFT"}));
  if (start_side == side && start_line >= line) {
    return Error::Invalid("start_line " + std::to_string(start_line) + " must come before line " +
                          std::to_string(line) + " on the same side (" + std::string(side) + ")");
  }
  return Ok();
}

std::vector<int64_t> ClosingReferences(std::string_view body) {
  static constexpr std::string_view kKeywords[] = {
      "closes", "closed", "close", "fixes", "fixed", "fix", "resolves", "resolved", "resolve"};
  std::vector<int64_t> out;
  std::string lower(body);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (size_t i = 0; i < lower.size(); ++i) {
    if (i > 0 && (Alnum(lower[i - 1]) || lower[i - 1] == '_')) continue;
    for (std::string_view kw : kKeywords) {
      if (lower.compare(i, kw.size(), kw) != 0) continue;
      size_t j = i + kw.size();
      if (j < lower.size() && lower[j] == ':') ++j;
      size_t spaces = j;
      while (j < lower.size() && (lower[j] == ' ' || lower[j] == '\t')) ++j;
      if (j == spaces || j >= lower.size() || lower[j] != '#') break;
      ++j;
      size_t digits = j;
      int64_t n = 0;
      while (j < lower.size() && std::isdigit(static_cast<unsigned char>(lower[j])) &&
             j - digits < 12) {
        n = n * 10 + (lower[j] - '0');
        ++j;
      }
      if (j == digits || n <= 0) break;
      if (j < lower.size() && (Alnum(lower[j]) || lower[j] == '_')) break;  // "#12abc"
      if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
      break;
    }
  }
  return out;
}

}  // namespace kiln::forge::validate
