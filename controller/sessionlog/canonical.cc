#include "controller/sessionlog/canonical.h"

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "controller/sessionlog/secrets.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kiln::sessionlog {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Returns the first byte in [p, end) that a string scan must look at: `"`,
// `\`, a control byte, 0x7f, or any non-ASCII byte. Records are mostly ASCII
// text, so this loop is where both writing and verifying spend their time.
const char* FindSpecial(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i del = _mm_set1_epi8(0x7f);
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // Signed compare: bytes >= 0x80 are negative, so this catches them too.
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                             _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)));
    int mask = _mm_movemask_epi8(m);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  for (; p < end; ++p) {
    auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) return p;
  }
  return end;
}

// Bit i is set when p[i] (i < 32) is a byte FindSpecial stops at. Needs 32
// readable bytes.
inline uint32_t SpecialMask32(const char* p) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i del = _mm_set1_epi8(0x7f);
  auto half = [&](const char* q) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                             _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)));
    return static_cast<uint32_t>(_mm_movemask_epi8(m));
  };
  return half(p) | half(p + 16) << 16;
#else
  uint32_t mask = 0;
  for (int i = 0; i < 32; ++i) {
    auto c = static_cast<unsigned char>(p[i]);
    if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) mask |= 1u << i;
  }
  return mask;
#endif
}

// Length of the valid UTF-8 sequence starting at p (a non-ASCII lead byte),
// or 0 if it is not valid (RFC 3629: no overlongs, surrogates or > U+10FFFF).
size_t Utf8Length(const unsigned char* p, const unsigned char* end) {
  unsigned char c = p[0];
  auto cont = [&](size_t i, unsigned char lo, unsigned char hi) {
    return p + i < end && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1, 0x80, 0xbf) ? 2 : 0;
  if (c == 0xe0) return cont(1, 0xa0, 0xbf) && cont(2, 0x80, 0xbf) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) {
    return cont(1, 0x80, 0xbf) && cont(2, 0x80, 0xbf) ? 3 : 0;
  }
  if (c == 0xed) return cont(1, 0x80, 0x9f) && cont(2, 0x80, 0xbf) ? 3 : 0;
  if (c == 0xf0) return cont(1, 0x90, 0xbf) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) {
    return cont(1, 0x80, 0xbf) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf) ? 4 : 0;
  }
  if (c == 0xf4) return cont(1, 0x80, 0x8f) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf) ? 4 : 0;
  return 0;
}

// The escape jq prints for a byte below 0x20 or 0x7f; nullptr for \u00xx.
const char* ShortEscape(unsigned char c) {
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      return nullptr;
  }
}

// The JSON path of the value being serialised, built into a string only when
// there is an error to report: the hot path does not allocate for it.
struct PathNode {
  const PathNode* parent;
  std::string_view root;  // set on the root node only
  std::string_view key;
  size_t index;
  bool is_index;
};

std::string PathString(const PathNode* n) {
  if (n->parent == nullptr) return std::string(n->root);
  std::string out = PathString(n->parent);
  out += '.';
  out += n->is_index ? std::to_string(n->index) : std::string(n->key);
  return out;
}

Error PathError(const PathNode* path, std::string_view what) {
  return Error::Invalid(PathString(path) + ": " + std::string(what));
}

Status Serialize(const nlohmann::json& v, std::string* out, const Redactor* redactor,
                 const PathNode* path, int depth);

Status SerializeMember(std::string_view key, const nlohmann::json& v, std::string* out,
                       const Redactor* redactor, const PathNode* path, int depth) {
  AppendCanonicalString(key, out);
  out->push_back(':');
  PathNode node{path, {}, key, 0, false};
  return Serialize(v, out, redactor, &node, depth);
}

}  // namespace

namespace {

// Appends the canonical form of the special byte at q; returns the position
// after the bytes it consumed.
const char* EmitSpecial(const char* q, const char* end, std::string* out) {
  auto c = static_cast<unsigned char>(*q);
  if (c >= 0x80) {
    size_t n = Utf8Length(reinterpret_cast<const unsigned char*>(q),
                          reinterpret_cast<const unsigned char*>(end));
    if (n == 0) {
      out->append("\xef\xbf\xbd");  // U+FFFD for each byte that starts no valid sequence
      return q + 1;
    }
    out->append(q, n);
    return q + n;
  }
  if (const char* e = ShortEscape(c)) {
    out->append(e);
  } else {
    char buf[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
    out->append(buf, 6);
  }
  return q + 1;
}

}  // namespace

void AppendCanonicalString(std::string_view s, std::string* out) {
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  const char* run = s.data();  // start of the bytes not yet appended
  const char* p = run;
  const char* end = p + s.size();
  while (end - p >= 32) {
    const char* block = p;
    uint32_t mask = SpecialMask32(block);
    while (mask != 0) {
      const char* q = block + __builtin_ctz(mask);
      mask &= mask - 1;
      if (q < run) continue;  // part of a UTF-8 sequence already copied
      out->append(run, static_cast<size_t>(q - run));
      run = EmitSpecial(q, end, out);
    }
    p = run > block + 32 ? run : block + 32;
  }
  for (;;) {
    const char* q = FindSpecial(p, end);
    out->append(run, static_cast<size_t>(q - run));
    if (q == end) break;
    run = p = EmitSpecial(q, end, out);
  }
  out->push_back('"');
}

namespace {

Status Serialize(const nlohmann::json& v, std::string* out, const Redactor* redactor,
                 const PathNode* path, int depth) {
  using T = nlohmann::json::value_t;
  switch (v.type()) {
    case T::null:
      out->append("null");
      return Ok();
    case T::boolean:
      out->append(v.get<bool>() ? "true" : "false");
      return Ok();
    case T::number_integer: {
      int64_t x = v.get<int64_t>();
      if (x > kMaxSafeInteger || x < -kMaxSafeInteger) {
        return PathError(path, "integer " + std::to_string(x) + " is outside +-(2^53-1)");
      }
      out->append(std::to_string(x));
      return Ok();
    }
    case T::number_unsigned: {
      uint64_t x = v.get<uint64_t>();
      if (x > static_cast<uint64_t>(kMaxSafeInteger)) {
        return PathError(path, "integer " + std::to_string(x) + " is outside +-(2^53-1)");
      }
      out->append(std::to_string(x));
      return Ok();
    }
    case T::number_float: {
      double x = v.get<double>();
      // jq prints an integral double as an integer, so 3.0 is stored as 3.
      if (!std::isfinite(x) || std::trunc(x) != x || std::fabs(x) > double(kMaxSafeInteger)) {
        return PathError(path, "number " + v.dump() +
                                   " is not an integer within +-(2^53-1); session log records "
                                   "hold only integers (encode fractions as strings or scaled "
                                   "integers)");
      }
      out->append(std::to_string(static_cast<int64_t>(x)));
      return Ok();
    }
    case T::string: {
      const std::string& s = v.get_ref<const std::string&>();
      std::string redacted;
      if (redactor != nullptr && redactor->Redact(s, &redacted)) {
        AppendCanonicalString(redacted, out);
      } else {
        AppendCanonicalString(s, out);
      }
      return Ok();
    }
    case T::array: {
      if (depth >= kMaxDepth) return PathError(path, "nested deeper than 128 levels");
      out->push_back('[');
      size_t i = 0;
      for (const auto& e : v) {
        if (i > 0) out->push_back(',');
        PathNode node{path, {}, {}, i, true};
        KILN_TRY(Serialize(e, out, redactor, &node, depth + 1));
        ++i;
      }
      out->push_back(']');
      return Ok();
    }
    case T::object: {
      if (depth >= kMaxDepth) return PathError(path, "nested deeper than 128 levels");
      out->push_back('{');
      // nlohmann's default object is a std::map, ordered by bytes as jq -S orders
      // keys. Redaction can change a key, so keys are re-sorted when it does.
      bool first = true;
      std::string key;
      if (redactor == nullptr) {
        for (const auto& [k, e] : v.items()) {
          if (!first) out->push_back(',');
          first = false;
          KILN_TRY(SerializeMember(k, e, out, redactor, path, depth + 1));
        }
      } else {
        std::vector<std::pair<std::string, const nlohmann::json*>> members;
        members.reserve(v.size());
        bool changed = false;
        for (const auto& [k, e] : v.items()) {
          std::string r;
          if (redactor->Redact(k, &r)) {
            changed = true;
            members.emplace_back(std::move(r), &e);
          } else {
            members.emplace_back(k, &e);
          }
        }
        if (changed) {
          std::stable_sort(members.begin(), members.end(),
                           [](const auto& a, const auto& b) { return a.first < b.first; });
          for (size_t i = 1; i < members.size(); ++i) {
            if (members[i].first == members[i - 1].first) {
              return PathError(path, "two keys redact to the same key " + members[i].first);
            }
          }
        }
        for (const auto& [k, e] : members) {
          if (!first) out->push_back(',');
          first = false;
          KILN_TRY(SerializeMember(k, *e, out, redactor, path, depth + 1));
        }
      }
      out->push_back('}');
      return Ok();
    }
    case T::binary:
      return PathError(path, "binary values cannot be logged");
    case T::discarded:
      return PathError(path, "discarded value");
  }
  return PathError(path, "unknown JSON type");
}

}  // namespace

Status AppendCanonical(const nlohmann::json& v, std::string* out, const Redactor* redactor,
                       std::string_view path, int depth) {
  PathNode root{nullptr, path, {}, 0, false};
  return Serialize(v, out, redactor, &root, depth);
}

// ---------------------------------------------------------------------------
// Scanner

bool Scanner::Consume(char c) {
  if (pos_ < text_.size() && text_[pos_] == c) {
    ++pos_;
    return true;
  }
  static constexpr const char* kExpected[] = {"expected '{'", "expected '}'", "expected '['",
                                              "expected ']'", "expected ':'", "expected ','",
                                              "expected '\"'"};
  switch (c) {
    case '{':
      return Fail(kExpected[0]);
    case '}':
      return Fail(kExpected[1]);
    case '[':
      return Fail(kExpected[2]);
    case ']':
      return Fail(kExpected[3]);
    case ':':
      return Fail(kExpected[4]);
    case ',':
      return Fail(kExpected[5]);
    default:
      return Fail(kExpected[6]);
  }
}

// Checks the special byte at p (FindSpecial's stop set) inside a string.
// Returns the position after it, the closing quote itself (p) for '"', or
// nullptr with error_ set.
inline const char* Scanner::Special(const char* p, const char* end) {
  auto c = static_cast<unsigned char>(*p);
  if (c == '"') return p;
  if (c >= 0x80) {
    size_t n = Utf8Length(reinterpret_cast<const unsigned char*>(p),
                          reinterpret_cast<const unsigned char*>(end));
    if (n == 0) return FailAt(p, "invalid UTF-8 in string");
    return p + n;
  }
  if (c != '\\') {
    return FailAt(p, c == 0x7f ? "unescaped 0x7f in string (canonical form is \\u007f)"
                               : "unescaped control character in string");
  }
  // An escape: only the forms jq prints are canonical.
  if (end - p < 2) return FailAt(end, "unterminated escape");
  char e = p[1];
  if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
    return p + 2;
  }
  if (e == 'u' && end - p >= 6 && p[2] == '0' && p[3] == '0') {
    auto hexval = [](char h) {
      if (h >= '0' && h <= '9') return h - '0';
      if (h >= 'a' && h <= 'f') return h - 'a' + 10;
      return -1;
    };
    int hi = hexval(p[4]);
    int lo = hexval(p[5]);
    int cp = hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    if (cp >= 0 &&
        (cp == 0x7f || (cp < 0x20 && ShortEscape(static_cast<unsigned char>(cp)) == nullptr))) {
      return p + 6;
    }
  }
  return FailAt(p, "non-canonical escape in string");
}

const char* Scanner::FailAt(const char* p, const char* message) {
  pos_ = static_cast<size_t>(p - text_.data());
  error_ = message;
  return nullptr;
}

bool Scanner::String(std::string_view* raw) {
  if (!Consume('"')) return false;
  const char* begin = text_.data() + pos_;
  const char* p = begin;
  const char* end = text_.data() + text_.size();
  // 32 bytes at a time; the special bytes of a block are handled in order
  // without rescanning, which matters for escape-dense text such as JSON
  // bodies stored as strings.
  while (end - p >= 32) {
    const char* block = p;
    uint32_t mask = SpecialMask32(block);
    while (mask != 0) {
      const char* q = block + __builtin_ctz(mask);
      mask &= mask - 1;
      if (q < p) continue;  // inside an escape or UTF-8 sequence already taken
      const char* next = Special(q, end);
      if (next == nullptr) return false;
      if (next == q) {  // the closing quote
        *raw = std::string_view(begin, static_cast<size_t>(q - begin));
        pos_ = static_cast<size_t>(q - text_.data()) + 1;
        return true;
      }
      p = next;
    }
    if (p < block + 32) p = block + 32;
  }
  for (;;) {
    p = FindSpecial(p, end);
    if (p == end) {
      pos_ = text_.size();
      return Fail("unterminated string");
    }
    const char* next = Special(p, end);
    if (next == nullptr) return false;
    if (next == p) break;
    p = next;
  }
  *raw = std::string_view(begin, static_cast<size_t>(p - begin));
  pos_ = static_cast<size_t>(p - text_.data()) + 1;
  return true;
}

bool Scanner::Integer(int64_t* v) {
  size_t start = pos_;
  bool neg = false;
  if (Peek('-')) {
    neg = true;
    ++pos_;
  }
  if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') {
    return Fail("expected a number");
  }
  if (text_[pos_] == '0') {
    ++pos_;
    if (neg) {
      pos_ = start;
      return Fail("negative zero is not canonical");
    }
    if (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      pos_ = start;
      return Fail("leading zero in number");
    }
    *v = 0;
  } else {
    int64_t x = 0;
    size_t digits = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (++digits > 16) {
        pos_ = start;
        return Fail("integer outside +-(2^53-1)");
      }
      x = x * 10 + (text_[pos_] - '0');
      ++pos_;
    }
    if (x > kMaxSafeInteger) {
      pos_ = start;
      return Fail("integer outside +-(2^53-1)");
    }
    *v = neg ? -x : x;
  }
  if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E')) {
    return Fail("fractions and exponents are not allowed (integers only)");
  }
  return true;
}

bool Scanner::Literal(std::string_view word) {
  if (text_.substr(pos_, word.size()) != word) return Fail("invalid literal");
  pos_ += word.size();
  return true;
}

bool Scanner::Key(std::string_view* prev, bool first, std::string_view* key) {
  size_t start = pos_;
  if (!String(key)) return false;
  if (!first) {
    bool ordered;
    if (prev->find('\\') == std::string_view::npos && key->find('\\') == std::string_view::npos) {
      ordered = *prev < *key;
    } else {
      ordered = Unescape(*prev) < Unescape(*key);
    }
    if (!ordered) {
      pos_ = start;
      return Fail(*prev == *key ? "duplicate object key" : "object keys are not sorted");
    }
  }
  *prev = *key;
  return Consume(':');
}

bool Scanner::Object(int depth) {
  if (depth >= kMaxDepth) return Fail("nested deeper than 128 levels");
  if (!Consume('{')) return false;
  if (Peek('}')) {
    ++pos_;
    return true;
  }
  std::string_view prev;
  for (bool first = true;; first = false) {
    std::string_view key;
    if (!Key(&prev, first, &key)) return false;
    if (!Value(depth + 1)) return false;
    if (Peek(',')) {
      ++pos_;
      continue;
    }
    return Consume('}');
  }
}

bool Scanner::Array(int depth) {
  if (depth >= kMaxDepth) return Fail("nested deeper than 128 levels");
  if (!Consume('[')) return false;
  if (Peek(']')) {
    ++pos_;
    return true;
  }
  for (;;) {
    if (!Value(depth + 1)) return false;
    if (Peek(',')) {
      ++pos_;
      continue;
    }
    return Consume(']');
  }
}

bool Scanner::Value(int depth) {
  if (pos_ >= text_.size()) return Fail("unexpected end of input");
  switch (text_[pos_]) {
    case '{':
      return Object(depth);
    case '[':
      return Array(depth);
    case '"': {
      std::string_view raw;
      return String(&raw);
    }
    case 't':
      return Literal("true");
    case 'f':
      return Literal("false");
    case 'n':
      return Literal("null");
    default: {
      int64_t v;
      return Integer(&v);
    }
  }
}

Status CheckCanonical(std::string_view text) {
  Scanner s(text);
  if (!s.Value(0)) {
    return Error(Error::Code::kCorruption,
                 std::string(s.error()) + " at byte " + std::to_string(s.pos()));
  }
  if (!s.AtEnd()) {
    return Error(Error::Code::kCorruption,
                 "trailing bytes after the JSON value at byte " + std::to_string(s.pos()));
  }
  return Ok();
}

bool ValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    size_t n = Utf8Length(p, end);
    if (n == 0) return false;
    p += n;
  }
  return true;
}

std::string Unescape(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\' || i + 1 >= raw.size()) {
      out += c;
      continue;
    }
    char e = raw[++i];
    switch (e) {
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u':
        // Canonical strings only use \u00xx.
        if (i + 4 < raw.size()) {
          unsigned v = 0;
          for (char h : raw.substr(i + 3, 2)) {
            v = v * 16 + static_cast<unsigned>(h >= 'a' ? h - 'a' + 10 : h - '0');
          }
          out += static_cast<char>(v);
          i += 4;
        }
        break;
      default:
        out += e;
        break;
    }
  }
  return out;
}

}  // namespace kiln::sessionlog
