// SHA-256 (through OpenSSL's EVP interface) and the text encodings kiln uses
// for digests, signatures and secret forms: lowercase hex and base64.
#pragma once

#include <openssl/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kiln {

using Digest = std::array<uint8_t, 32>;

// A reusable SHA-256 context. Reusing one context per thread avoids OpenSSL's
// per-call algorithm lookup, which matters at one hash per record. Not
// thread-safe; copy is deleted.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Digest Hash(std::string_view data);
  void Init();
  void Update(std::string_view data);
  Digest Final();

 private:
  EVP_MD_CTX* ctx_;
};

// One-shot SHA-256 with a thread-local context.
Digest Sha256Of(std::string_view data);

std::string Hex(std::string_view bytes);
std::string Hex(const Digest& d);
// Hex(Sha256Of(data)): how kiln names content (diffs, skills, tokens, mirrors).
std::string Sha256Hex(std::string_view data);
// Parses exactly 2*n lowercase or uppercase hex digits into out[0..n).
bool ParseHex(std::string_view text, uint8_t* out, size_t n);

// Standard base64 (RFC 4648 section 4) with padding.
std::string Base64(std::string_view bytes);
// The URL-safe alphabet (section 5), without padding.
std::string Base64Url(std::string_view bytes);
// Strict decoder for the standard alphabet with padding; nullopt on any error,
// including nonzero unused bits in the last group (each value has one text).
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace kiln
