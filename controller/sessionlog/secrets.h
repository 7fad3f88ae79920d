// The secret registry: every scoped secret value, and the encoded forms it can
// take on the wire, replaced with "[secret:NAME]" before a record is hashed, so
// that no secret reaches a log line or a blob.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace kiln::sessionlog {

// Not thread-safe; the Writer serialises access.
class Redactor {
 public:
  // Shortest secret value accepted: shorter values would match ordinary text.
  static constexpr size_t kMinSecretBytes = 4;

  // Registers a secret. `name` is [A-Za-z0-9_.-]{1,64}; value is at least
  // kMinSecretBytes. The forms replaced are: the value itself; standard and
  // URL-safe base64 (padded, unpadded, and the stable middle of the encoding
  // when the value starts 1 or 2 bytes into a larger base64 text, as in an
  // HTTP Basic credential); percent-encoding (upper and lower case hex, and
  // form encoding with '+'); lowercase and uppercase hex; and the JSON-escaped
  // form.
  Status Add(std::string_view name, std::string_view value);

  bool empty() const { return patterns_.empty(); }

  // If s contains any form of a registered secret, writes s with every byte of
  // every occurrence replaced (overlapping occurrences become one
  // "[secret:NAME]") to *out and returns true; otherwise returns false.
  bool Redact(std::string_view s, std::string* out) const;

 private:
  struct Pattern {
    std::string text;
    uint32_t name;  // index into names_
  };
  void AddPattern(std::string text, uint32_t name);

  std::vector<std::string> names_;
  std::vector<Pattern> patterns_;
  // A bitmap of the first two bytes of every pattern: one lookup per input
  // byte rejects almost all positions.
  std::vector<uint64_t> first_pairs_ = std::vector<uint64_t>(65536 / 64);
};

}  // namespace kiln::sessionlog
