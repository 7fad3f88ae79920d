#include "controller/sessionlog/signer.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "base/digest.h"
#include "base/fd.h"

namespace kiln::sessionlog {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct CtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using CtxPtr = std::unique_ptr<EVP_MD_CTX, CtxFree>;

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* k) { return {k, EVP_PKEY_free}; }

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  std::string p = dir;
  if (!p.empty() && p.back() != '/') p += '/';
  p += name;
  return p;
}

// mkdir -p with mode 0700 for every directory it creates.
Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return Error::Invalid("empty key directory");
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return Error::Sys("mkdir(" + Quote(part) + ", 0700)", errno);
    }
  }
  return Ok();
}

// Reads a private key file, refusing one that others could have read.
Result<std::string> ReadPrivateFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return Error::Sys("open(" + Quote(path) + ")", errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error::Sys("fstat(" + Quote(path) + ")", errno);
  if (!S_ISREG(st.st_mode)) return Error::Invalid("key file " + Quote(path) + " is not a file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error(Error::Code::kPermission, "key file " + Quote(path) + " has mode " + mode +
                                               "; group and others must have no access "
                                               "(chmod 600)");
  }
  if (st.st_uid != ::geteuid()) {
    return Error(Error::Code::kPermission,
                 "key file " + Quote(path) + " is owned by uid " + std::to_string(st.st_uid) +
                     ", not by this user (uid " + std::to_string(::geteuid()) + ")");
  }
  return ReadFile(path);
}

}  // namespace

std::string DefaultKeyDir() {
  if (::geteuid() == 0) return "/var/lib/kiln/keys";
  if (const char* x = std::getenv("XDG_STATE_HOME"); x != nullptr && x[0] == '/') {
    return std::string(x) + "/kiln/keys";
  }
  const char* home = std::getenv("HOME");
  if (home == nullptr || home[0] == '\0') {
    if (const passwd* pw = ::getpwuid(::geteuid())) home = pw->pw_dir;
  }
  return std::string(home != nullptr ? home : "") + "/.local/state/kiln/keys";
}

// ---------------------------------------------------------------------------
// PublicKey

Result<PublicKey> PublicKey::FromKey(std::shared_ptr<EVP_PKEY> key, std::string_view origin) {
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return Error::Invalid(std::string(origin) + ": not an Ed25519 key");
  }
  PublicKey pk;
  pk.raw_.resize(32);
  size_t n = 32;
  if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(pk.raw_.data()),
                                  &n) != 1 ||
      n != 32) {
    return Error::Invalid(std::string(origin) + ": cannot read the raw Ed25519 public key");
  }
  Digest d = Sha256Of(pk.raw_);
  pk.id_ = Hex(std::string_view(reinterpret_cast<const char*>(d.data()), 16));
  pk.key_ = std::move(key);
  return pk;
}

Result<PublicKey> PublicKey::FromPem(std::string_view pem, std::string_view origin) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) {
    return Error::Invalid(std::string(origin) +
                          ": not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  }
  return FromKey(Own(k), origin);
}

Result<PublicKey> PublicKey::FromFile(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  return FromPem(pem, Quote(path));
}

std::string PublicKey::Pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key_.get());
  return BioString(bio.get());
}

bool PublicKey::Verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != 64) return false;
  CtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

// ---------------------------------------------------------------------------
// Signer

Result<std::unique_ptr<Signer>> Signer::Generate() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (k == nullptr) return Error::Internal("EVP_PKEY_Q_keygen(ED25519) failed");
  auto key = Own(k);
  KILN_ASSIGN_OR_RETURN(PublicKey pub, PublicKey::FromKey(key, "generated key"));
  return std::unique_ptr<Signer>(new Signer(std::move(key), std::move(pub)));
}

Result<std::unique_ptr<Signer>> Signer::FromPem(std::string_view pem, std::string_view origin) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) return Error::Invalid(std::string(origin) + ": not a PEM private key");
  auto key = Own(k);
  KILN_ASSIGN_OR_RETURN(PublicKey pub, PublicKey::FromKey(key, origin));
  return std::unique_ptr<Signer>(new Signer(std::move(key), std::move(pub)));
}

std::string Signer::PrivatePem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return BioString(bio.get());
}

Result<std::string> Signer::Sign(std::string_view message) const {
  CtxPtr ctx(EVP_MD_CTX_new());
  std::string sig(64, '\0');
  size_t n = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      n != 64) {
    return Error::Internal("EVP_DigestSign(Ed25519) failed");
  }
  return sig;
}

// ---------------------------------------------------------------------------
// Key directory

Result<std::unique_ptr<Signer>> LoadSigner(const std::string& key_dir) {
  std::string path = JoinPath(key_dir, kPrivateKeyFile);
  KILN_ASSIGN_OR_RETURN(std::string pem, ReadPrivateFile(path));
  return Signer::FromPem(pem, Quote(path));
}

Result<std::unique_ptr<Signer>> LoadOrCreateSigner(const std::string& key_dir) {
  std::string path = JoinPath(key_dir, kPrivateKeyFile);
  if (::access(path.c_str(), F_OK) == 0) return LoadSigner(key_dir);
  KILN_TRY(MakeDirs(key_dir));
  KILN_ASSIGN_OR_RETURN(auto signer, Signer::Generate());
  // Write under a temporary name, then link(): exactly one concurrent creator
  // wins, and nobody ever reads a half-written key.
  std::string tmp = path + ".tmp.XXXXXX";
  {
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));  // mode 0600, a unique name per caller
    if (!fd.valid()) return Error::Sys("mkostemp(" + Quote(tmp) + ")", errno);
    Status st = WriteAll(fd.get(), signer->PrivatePem());
    if (st.ok() && ::fsync(fd.get()) != 0) st = Error::Sys("fsync(" + Quote(tmp) + ")", errno);
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st.error().Wrap("writing " + Quote(tmp));
    }
  }
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && err != EEXIST) {
    return Error::Sys("link(" + Quote(tmp) + ", " + Quote(path) + ")", err);
  }
  if (rc != 0) return LoadSigner(key_dir);  // another process created it first
  KILN_TRY(WriteFileAtomic(JoinPath(key_dir, kPublicKeyFile), signer->public_key().Pem(), 0644));
  return signer;
}

Result<std::vector<PublicKey>> TrustedKeys(const std::string& key_dir) {
  std::vector<PublicKey> keys;
  DIR* d = ::opendir(key_dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return keys;
    return Error::Sys("opendir(" + Quote(key_dir) + ")", errno);
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".pub") names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    KILN_ASSIGN_OR_RETURN(PublicKey k, PublicKey::FromFile(JoinPath(key_dir, n)));
    keys.push_back(std::move(k));
  }
  return keys;
}

}  // namespace kiln::sessionlog
