#include "controller/sessionlog/secrets.h"

#include <algorithm>

#include "base/digest.h"
#include "controller/sessionlog/canonical.h"

namespace kiln::sessionlog {
namespace {

// Derived forms shorter than this are skipped: they would match ordinary text.
constexpr size_t kMinFormBytes = 6;

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

std::string PercentEncode(std::string_view v, bool upper, bool plus_for_space) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += ch;
    } else if (c == ' ' && plus_for_space) {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string Upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

uint32_t PairOf(std::string_view s, size_t i) {
  return static_cast<uint32_t>(static_cast<unsigned char>(s[i])) << 8 |
         static_cast<unsigned char>(s[i + 1]);
}

}  // namespace

void Redactor::AddPattern(std::string text, uint32_t name) {
  if (text.size() < 2) return;
  for (const auto& p : patterns_) {
    if (p.text == text) return;
  }
  uint32_t pair = PairOf(text, 0);
  first_pairs_[pair / 64] |= uint64_t{1} << (pair % 64);
  patterns_.push_back({std::move(text), name});
}

Status Redactor::Add(std::string_view name, std::string_view value) {
  if (!ValidName(name)) {
    return Error::Invalid("secret name " + Quote(name) + " is not [A-Za-z0-9_.-]{1,64}");
  }
  if (value.size() < kMinSecretBytes) {
    return Error::Invalid("secret " + Quote(name) + " is " + std::to_string(value.size()) +
                          " bytes; values shorter than " + std::to_string(kMinSecretBytes) +
                          " bytes cannot be redacted reliably");
  }
  auto id = static_cast<uint32_t>(names_.size());
  names_.emplace_back(name);
  std::string v(value);
  std::vector<std::string> forms = {v};

  // base64 at each alignment, in both alphabets: the bytes of a secret that
  // starts k bytes into a base64 text encode to a fixed middle part.
  for (int alphabet = 0; alphabet < 2; ++alphabet) {
    for (size_t k = 0; k < 3; ++k) {
      std::string shifted = std::string(k, '\0') + v;
      std::string enc = alphabet == 0 ? Base64(shifted) : Base64Url(shifted);
      while (!enc.empty() && enc.back() == '=') enc.pop_back();
      if (k == 0) {
        forms.push_back(alphabet == 0 ? Base64(v) : enc);
        forms.push_back(enc);
      }
      size_t skip = k == 0 ? 0 : k + 1;  // leading characters mixed with the k prefix bytes
      size_t tail =
          shifted.size() % 3 != 0 ? 1 : 0;  // a trailing character mixed with what follows
      if (enc.size() > skip + tail) forms.push_back(enc.substr(skip, enc.size() - skip - tail));
    }
  }
  forms.push_back(PercentEncode(v, true, false));
  forms.push_back(PercentEncode(v, false, false));
  forms.push_back(PercentEncode(v, true, true));
  forms.push_back(Hex(v));
  forms.push_back(Upper(Hex(v)));
  std::string json;
  AppendCanonicalString(v, &json);
  forms.push_back(json.substr(1, json.size() - 2));

  for (auto& f : forms) {
    if (f == v || f.size() >= kMinFormBytes) AddPattern(std::move(f), id);
  }
  // Longest first, so that within one position the widest match is taken.
  std::stable_sort(patterns_.begin(), patterns_.end(), [](const Pattern& a, const Pattern& b) {
    return a.text.size() > b.text.size();
  });
  return Ok();
}

bool Redactor::Redact(std::string_view s, std::string* out) const {
  if (patterns_.empty() || s.size() < 2) return false;
  // Pass 1: mark covered byte ranges. Overlapping matches merge, so no byte
  // of any occurrence survives whichever form matched first.
  std::vector<std::pair<size_t, size_t>> runs;  // [begin, end)
  std::vector<uint32_t> run_names;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    uint32_t pair = PairOf(s, i);
    if ((first_pairs_[pair / 64] >> (pair % 64) & 1) == 0) continue;
    for (const auto& p : patterns_) {
      if (p.text.size() > s.size() - i || s.compare(i, p.text.size(), p.text) != 0) continue;
      size_t end = i + p.text.size();
      if (!runs.empty() && i < runs.back().second) {
        runs.back().second = std::max(runs.back().second, end);
      } else {
        runs.emplace_back(i, end);
        run_names.push_back(p.name);
      }
    }
  }
  if (runs.empty()) return false;
  out->clear();
  size_t at = 0;
  for (size_t r = 0; r < runs.size(); ++r) {
    out->append(s.substr(at, runs[r].first - at));
    out->append("[secret:");
    out->append(names_[run_names[r]]);
    out->append("]");
    at = runs[r].second;
  }
  out->append(s.substr(at));
  return true;
}

}  // namespace kiln::sessionlog
