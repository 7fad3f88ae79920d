#include "controller/github/auth.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <ctime>
#include <memory>

#include <nlohmann/json.hpp>

#include "base/digest.h"

namespace kiln::github {

using nlohmann::json;

namespace {

struct FreeKey {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct FreeBio {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct FreeMd {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

}  // namespace

Result<std::string> SignJwt(const std::string& private_key_pem, const json& claims) {
  std::unique_ptr<BIO, FreeBio> bio(
      BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())));
  if (!bio) return Error::Internal("BIO_new_mem_buf failed");
  // An encrypted key gets no password (and no prompt on a terminal).
  pem_password_cb* no_password = [](char*, int, int, void*) { return -1; };
  std::unique_ptr<EVP_PKEY, FreeKey> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
  if (!key || EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA) {
    ERR_clear_error();
    return Error::Invalid("the GitHub App private key is not an RSA private key in PEM form");
  }
  std::string input = Base64Url(R"({"alg":"RS256","typ":"JWT"})") + "." + Base64Url(claims.dump());
  std::unique_ptr<EVP_MD_CTX, FreeMd> ctx(EVP_MD_CTX_new());
  size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return Error::Internal("signing the GitHub App JWT failed");
  }
  std::string sig(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &size,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return Error::Internal("signing the GitHub App JWT failed");
  }
  sig.resize(size);
  return input + "." + Base64Url(sig);
}

Result<std::string> AppJwt(const std::string& app_id, const std::string& private_key_pem,
                           int64_t now_s) {
  // iat a minute back allows for clock drift; GitHub takes at most 10 minutes.
  return SignJwt(private_key_pem, {{"iat", now_s - 60}, {"exp", now_s + 540}, {"iss", app_id}});
}

Result<int64_t> ParseTimestamp(const std::string& text) {
  std::tm tm{};
  const char* end = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') {
    return Error::Invalid("timestamp " + Quote(text) + " is not of the form 2026-11-25T10:00:00Z");
  }
  return static_cast<int64_t>(::timegm(&tm));
}

AppAuth::AppAuth(Rest& rest, std::string app_id, std::string private_key_pem,
                 std::function<int64_t()> now_s)
    : rest_(rest), app_id_(std::move(app_id)), key_(std::move(private_key_pem)), now_s_(now_s) {}

Result<std::string> AppAuth::Jwt() {
  KILN_ASSIGN_OR_RETURN(std::string jwt, AppJwt(app_id_, key_, now_s_()));
  return "Bearer " + jwt;
}

Result<int64_t> AppAuth::Installation(const std::string& repo) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = installations_.find(repo); it != installations_.end()) return it->second;
  }
  KILN_ASSIGN_OR_RETURN(std::string jwt, Jwt());
  auto reply = rest_.Call("GET", "/repos/" + repo + "/installation", nullptr, jwt);
  if (!reply) {
    return Error(reply.error().code(), "the GitHub App " + app_id_ + " is not installed on " +
                                           Quote(repo) + ": " + reply.error().message());
  }
  const json& id = reply->body.is_object() ? reply->body.value("id", json()) : json();
  if (!id.is_number_integer()) {
    return Error(Error::Code::kIO, "GitHub's installation of " + Quote(repo) + " has no id");
  }
  std::lock_guard<std::mutex> lock(mu_);
  installations_[repo] = id.get<int64_t>();
  return id.get<int64_t>();
}

// The lock is not held across requests: a slow or rate-limited token request
// holds up no other repository. Two callers may both buy a token; GitHub
// allows that, and the later one is kept.
Result<std::string> AppAuth::Token(const std::string& repo) {
  KILN_ASSIGN_OR_RETURN(int64_t installation, Installation(repo));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = tokens_.find(installation);
        it != tokens_.end() && now_s_() < it->second.expires_s - kRenewBefore) {
      return it->second.token;
    }
  }
  KILN_ASSIGN_OR_RETURN(std::string jwt, Jwt());
  KILN_ASSIGN_OR_RETURN(
      Reply reply,
      rest_.Call("POST", "/app/installations/" + std::to_string(installation) + "/access_tokens",
                 nullptr, jwt));
  const json& body = reply.body;
  if (!body.is_object() || !body.value("token", json()).is_string() ||
      !body.value("expires_at", json()).is_string()) {
    return Error(Error::Code::kIO, "GitHub's installation token answer lacks token or expires_at");
  }
  KILN_ASSIGN_OR_RETURN(int64_t expires, ParseTimestamp(body["expires_at"].get<std::string>()));
  std::lock_guard<std::mutex> lock(mu_);
  tokens_[installation] = {body["token"].get<std::string>(), expires};
  return body["token"].get<std::string>();
}

void AppAuth::Refused(const std::string& repo) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = installations_.find(repo);
  if (it == installations_.end()) return;
  // The App may have been reinstalled under a new id: look it up again too.
  tokens_.erase(it->second);
  installations_.erase(it);
}

}  // namespace kiln::github
