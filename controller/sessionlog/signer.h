// Ed25519 keys for signed checkpoints, through OpenSSL's EVP_PKEY interface.
//
// A host signing key lives in a key directory (DefaultKeyDir(), or one the
// caller names) as `session-signing.key` (PKCS#8 PEM, mode 0600, in a 0700
// directory) beside `session-signing.pub` (SubjectPublicKeyInfo PEM). It is
// created on first use by LoadOrCreateSigner. A key id is the first 16 bytes
// of SHA-256 over the 32-byte raw public key, in lowercase hex; signatures
// name it so keys can be rotated: a retired key's public half kept in the
// directory as `<key id>.pub` is still trusted by TrustedKeys().
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace kiln::sessionlog {

inline constexpr std::string_view kPrivateKeyFile = "session-signing.key";
inline constexpr std::string_view kPublicKeyFile = "session-signing.pub";

// /var/lib/kiln/keys for root; otherwise $XDG_STATE_HOME/kiln/keys, or
// ~/.local/state/kiln/keys when XDG_STATE_HOME is unset.
std::string DefaultKeyDir();

// An Ed25519 public key. Copyable (shares the OpenSSL key); thread-safe.
class PublicKey {
 public:
  static Result<PublicKey> FromPem(std::string_view pem, std::string_view origin);
  static Result<PublicKey> FromFile(const std::string& path);

  const std::string& id() const { return id_; }
  const std::string& raw() const { return raw_; }  // the 32 key bytes
  std::string Pem() const;
  bool Verify(std::string_view message, std::string_view signature) const;

 private:
  friend class Signer;
  static Result<PublicKey> FromKey(std::shared_ptr<EVP_PKEY> key, std::string_view origin);
  std::shared_ptr<EVP_PKEY> key_;
  std::string raw_;
  std::string id_;
};

// An Ed25519 private key. Thread-safe; copy is deleted.
class Signer {
 public:
  static Result<std::unique_ptr<Signer>> Generate();
  static Result<std::unique_ptr<Signer>> FromPem(std::string_view pem, std::string_view origin);

  const PublicKey& public_key() const { return public_; }
  const std::string& key_id() const { return public_.id(); }
  std::string PrivatePem() const;
  // A 64-byte Ed25519 signature over message.
  Result<std::string> Sign(std::string_view message) const;

  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

 private:
  Signer(std::shared_ptr<EVP_PKEY> key, PublicKey pub)
      : key_(std::move(key)), public_(std::move(pub)) {}
  std::shared_ptr<EVP_PKEY> key_;
  PublicKey public_;
};

// Loads the host key from key_dir, creating the directory (0700) and a new key
// (0600) on first use. Safe against a concurrent first use by another process.
// Refuses a key file that group or others can read.
Result<std::unique_ptr<Signer>> LoadOrCreateSigner(const std::string& key_dir);
// Loads the host key without creating anything.
Result<std::unique_ptr<Signer>> LoadSigner(const std::string& key_dir);
// The public keys a verifier trusts by default: session-signing.pub and every
// other *.pub in key_dir. An absent directory yields an empty list.
Result<std::vector<PublicKey>> TrustedKeys(const std::string& key_dir);

}  // namespace kiln::sessionlog
