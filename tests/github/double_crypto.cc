// The double's cryptography with OpenSSL: its CA and server certificate, the
// App's RSA key and JWT verification, HMAC signatures of webhook bodies, and
// the random tokens and ids; plus time and URL encodings.
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>

#include "tests/github/double_internal.h"

namespace kiln::testing::ghd {

namespace {

[[noreturn]] void Fail(const std::string& what) {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  throw std::runtime_error("github double: " + what + ": " + buf);
}

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

KeyPtr NewEcKey() {
  KeyPtr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) Fail("EVP_EC_gen(P-256)");
  return key;
}

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) Fail(std::string("X509V3_EXT_conf_nid(") + value + ")");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for key named cn, signed by issuer_key (self-signed when
// issuer is null).
CertPtr MakeCert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca) {
  CertPtr cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24 * 3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("kiln GitHub double"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (ca) {
    AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    AddExt(cert.get(), signer, NID_subject_key_identifier, "hash");
  } else {
    AddExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    AddExt(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    // DNS:127.0.0.1 too: mbedTLS 2 (libgit2 on Debian) matches only dNSName
    // entries, never iPAddress ones.
    AddExt(cert.get(), signer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost,DNS:127.0.0.1");
    AddExt(cert.get(), signer, NID_subject_key_identifier, "hash");
    AddExt(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    Fail(std::string("X509_sign(") + cn + ")");
  }
  return cert;
}

void WritePem(const std::string& path, const std::function<int(BIO*)>& write) {
  BIO* bio = BIO_new_file(path.c_str(), "w");
  if (bio == nullptr) Fail("BIO_new_file('" + path + "')");
  int ok = write(bio);
  BIO_free(bio);
  if (ok != 1) Fail("writing '" + path + "'");
}

void WriteKey(const std::string& path, EVP_PKEY* key) {
  WritePem(path, [key](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

void WriteCert(const std::string& path, X509* cert) {
  WritePem(path, [cert](BIO* b) { return PEM_write_bio_X509(b, cert); });
}

}  // namespace

TlsFiles MakeTlsFiles(const std::string& dir) {
  std::filesystem::create_directories(dir);
  TlsFiles f{dir + "/ca.pem", dir + "/server.pem", dir + "/server.key", dir + "/app.pem"};
  KeyPtr ca_key = NewEcKey();
  CertPtr ca = MakeCert(ca_key.get(), "kiln GitHub double CA", nullptr, nullptr, true);
  KeyPtr server_key = NewEcKey();
  CertPtr server = MakeCert(server_key.get(), "127.0.0.1", ca.get(), ca_key.get(), false);
  WriteCert(f.ca, ca.get());
  WriteCert(f.cert, server.get());
  WriteKey(f.key, server_key.get());
  KeyPtr app(EVP_RSA_gen(2048), EVP_PKEY_free);
  if (!app) Fail("EVP_RSA_gen(2048)");
  WriteKey(f.app_key, app.get());
  return f;
}

std::shared_ptr<EVP_PKEY> LoadPublicKey(const std::string& private_pem_file) {
  BIO* bio = BIO_new_file(private_pem_file.c_str(), "r");
  if (bio == nullptr) Fail("BIO_new_file('" + private_pem_file + "')");
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) Fail("PEM_read_bio_PrivateKey('" + private_pem_file + "')");
  return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
}

std::string VerifyJwt(EVP_PKEY* key, const std::string& jwt, int64_t app_id, int64_t now) {
  size_t dot1 = jwt.find('.');
  size_t dot2 = dot1 == std::string::npos ? dot1 : jwt.find('.', dot1 + 1);
  const std::string kUndecodable = "A JSON web token could not be decoded";
  if (dot2 == std::string::npos) return kUndecodable;
  json header = json::parse(Base64Decode(jwt.substr(0, dot1), true), nullptr, false);
  json claims =
      json::parse(Base64Decode(jwt.substr(dot1 + 1, dot2 - dot1 - 1), true), nullptr, false);
  std::string sig = Base64Decode(jwt.substr(dot2 + 1), true);
  if (!header.is_object() || !claims.is_object() || sig.empty()) return kUndecodable;
  if (header.value("alg", "") != "RS256") return kUndecodable;
  std::string signed_part = jwt.substr(0, dot2);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(signed_part.data()),
                       signed_part.size()) != 1) {
    ERR_clear_error();
    return kUndecodable;
  }
  const json& iss = claims["iss"];
  bool iss_ok = (iss.is_number_integer() && iss.get<int64_t>() == app_id) ||
                (iss.is_string() && iss.get<std::string>() == std::to_string(app_id));
  if (!iss_ok) return "'Issuer' claim ('iss') must match the App id";
  if (!claims["exp"].is_number() || !claims["iat"].is_number()) return kUndecodable;
  int64_t exp = claims["exp"].get<int64_t>();
  int64_t iat = claims["iat"].get<int64_t>();
  if (exp <= now) {
    return "'Expiration time' claim ('exp') must be a numeric value representing the future time "
           "at which the assertion expires";
  }
  if (exp - iat > 600) return "'Expiration time' claim ('exp') is too far in the future";
  if (iat > now + 60)
    return "'Issued at' claim ('iat') must be an Integer representing the time "
           "that the assertion was issued";
  return "";
}

int64_t NowUnix() { return static_cast<int64_t>(::time(nullptr)); }

std::string Iso(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string NowIso() { return Iso(NowUnix()); }

std::string RandomAlnum(size_t n) {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  while (out.size() < n) {
    unsigned char b[64];
    RAND_bytes(b, sizeof b);
    for (unsigned char c : b) {
      if (c < 248 && out.size() < n) out += kChars[c % 62];  // 248 = 4 * 62: no bias
    }
  }
  return out;
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  std::string out;
  char buf[3];
  for (unsigned char c : raw) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

std::string Uuid() {
  std::string h = RandomHex(16);
  h[12] = '4';
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

std::string Hmac(const EVP_MD* md, const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", out[i]);
    hex += buf;
  }
  return hex;
}

std::string Base64Decode(const std::string& in, bool url) {
  std::string s = in;
  if (url) {
    for (char& c : s) {
      if (c == '-') c = '+';
      if (c == '_') c = '/';
    }
  }
  while (s.size() % 4 != 0) s += '=';
  if (s.empty()) return "";
  std::string out(s.size() / 4 * 3, '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return "";
  size_t pad = 0;
  for (size_t i = s.size(); i > 0 && s[i - 1] == '='; --i) ++pad;
  out.resize(static_cast<size_t>(n) - std::min<size_t>(pad, 2));
  return out;
}

std::string UrlDecode(const std::string& in, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (in[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += in[i];
    }
  }
  return out;
}

std::string UrlEncode(const std::string& in) {
  std::string out;
  char buf[4];
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace kiln::testing::ghd
