#include "base/strings.h"

#include <cctype>
#include <charconv>
#include <limits>

namespace kiln {

namespace {

Error BadValue(std::string_view what, std::string_view text, std::string_view expected) {
  return Error::Invalid(std::string(what) + ": cannot parse " + Quote(text) + " (expected " +
                        std::string(expected) + ")");
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool MulOverflows(uint64_t a, uint64_t b) {
  return b != 0 && a > std::numeric_limits<uint64_t>::max() / b;
}

}  // namespace

Result<uint64_t> ParseUint(std::string_view text, std::string_view what) {
  text = Trim(text);
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return BadValue(what, text, "a non-negative integer");
  }
  return v;
}

Result<uint64_t> ParseSize(std::string_view text, std::string_view what) {
  constexpr std::string_view kExpected = "a size such as 4096, 64k, 512M or 2G";
  std::string_view t = Trim(text);
  size_t digits = 0;
  while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
  if (digits == 0) return BadValue(what, text, kExpected);
  auto n = ParseUint(t.substr(0, digits), what);
  if (!n) return BadValue(what, text, kExpected);
  std::string suffix = Lower(t.substr(digits));
  if (suffix.ends_with("ib"))
    suffix.resize(suffix.size() - 2);
  else if (suffix.ends_with("b") && suffix.size() == 2)
    suffix.resize(1);
  else if (suffix == "b")
    suffix.clear();
  uint64_t mul = 1;
  if (suffix.empty())
    mul = 1;
  else if (suffix == "k")
    mul = 1ull << 10;
  else if (suffix == "m")
    mul = 1ull << 20;
  else if (suffix == "g")
    mul = 1ull << 30;
  else if (suffix == "t")
    mul = 1ull << 40;
  else
    return BadValue(what, text, kExpected);
  if (MulOverflows(*n, mul)) return BadValue(what, text, "a size below 16 EiB");
  return *n * mul;
}

Result<uint64_t> ParseDurationMs(std::string_view text, std::string_view what) {
  constexpr std::string_view kExpected = "a duration such as 500ms, 30s, 5m, 1h or 7d";
  std::string_view t = Trim(text);
  size_t digits = 0;
  while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
  if (digits == 0) return BadValue(what, text, kExpected);
  auto n = ParseUint(t.substr(0, digits), what);
  if (!n) return BadValue(what, text, kExpected);
  std::string suffix = Lower(t.substr(digits));
  uint64_t mul;
  if (suffix == "ms")
    mul = 1;
  else if (suffix.empty() || suffix == "s")
    mul = 1000;
  else if (suffix == "m")
    mul = 60'000;
  else if (suffix == "h")
    mul = 3'600'000;
  else if (suffix == "d")
    mul = 86'400'000;
  else
    return BadValue(what, text, kExpected);
  if (MulOverflows(*n, mul)) return BadValue(what, text, "a shorter duration");
  return *n * mul;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::vector<std::string> Split(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t pos = text.find(sep, start);
    out.emplace_back(text.substr(start, pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}

bool StartsWith(std::string_view text, std::string_view prefix) { return text.starts_with(prefix); }

std::string Ellipsize(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t cut = max - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

}  // namespace kiln
