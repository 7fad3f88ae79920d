// Parsers for the small value syntaxes of kiln's command line and config:
// sizes ("512M"), durations ("30s"), and integer fields.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace kiln {

// "1024", "64k", "512M", "2G", "1T" (binary multiples, case-insensitive, optional
// trailing "B" or "iB"). `what` names the option in the error message.
Result<uint64_t> ParseSize(std::string_view text, std::string_view what);

// "250ms", "30s", "5m", "1h", "7d", or a bare number of seconds; returns milliseconds.
Result<uint64_t> ParseDurationMs(std::string_view text, std::string_view what);

// A non-negative decimal integer that fits in uint64_t.
Result<uint64_t> ParseUint(std::string_view text, std::string_view what);

std::vector<std::string> Split(std::string_view text, char sep);
// The parts with sep between them.
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view Trim(std::string_view text);
// text when it has at most max bytes; else its start, cut at a character
// boundary (never inside a UTF-8 sequence), and "..." (max >= 3).
std::string Ellipsize(std::string_view text, size_t max);
bool StartsWith(std::string_view text, std::string_view prefix);

}  // namespace kiln
