// How kiln authenticates to GitHub (docs/github.md): as a GitHub App
// (a JWT signed RS256 with the App's private key buys an installation access
// token, cached until five minutes before it expires and then renewed) or
// with a fine-grained token. Tokens stay in the controller: the REST client
// and git fetch and push use them; no sandbox ever sees one.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "controller/github/rest.h"

namespace kiln::github {

// A JWT {"alg":"RS256","typ":"JWT"} . claims, signed with private_key_pem
// (PKCS#1 or PKCS#8 PEM of an RSA key). A key that does not load is
// kInvalidArgument.
Result<std::string> SignJwt(const std::string& private_key_pem, const nlohmann::json& claims);

// The App app_id's JWT: {"iat": now-60, "exp": now+540, "iss": "<app_id>"}.
Result<std::string> AppJwt(const std::string& app_id, const std::string& private_key_pem,
                           int64_t now_s);

// "2026-11-25T10:00:00Z" as seconds since the epoch.
Result<int64_t> ParseTimestamp(const std::string& text);

class Auth {
 public:
  virtual ~Auth() = default;
  // The token for requests and git about repo ("owner/name").
  virtual Result<std::string> Token(const std::string& repo) = 0;
  // GitHub refused the token given for repo (401): the next Token call
  // makes a new one when it can.
  virtual void Refused(const std::string& repo) = 0;
};

// A fine-grained (or classic) personal access token, used as is.
class StaticAuth : public Auth {
 public:
  explicit StaticAuth(std::string token) : token_(std::move(token)) {}
  Result<std::string> Token(const std::string&) override { return token_; }
  void Refused(const std::string&) override {}

 private:
  std::string token_;
};

// A GitHub App. The installation of a repository is looked up once
// (GET /repos/{repo}/installation), its token made on demand
// (POST /app/installations/{id}/access_tokens) and kept until
// kRenewBefore seconds before its expires_at. Thread-safe; no lock is held
// during a request.
class AppAuth : public Auth {
 public:
  static constexpr int64_t kRenewBefore = 300;

  // now_s: seconds since the epoch (tests move it).
  AppAuth(Rest& rest, std::string app_id, std::string private_key_pem,
          std::function<int64_t()> now_s);

  Result<std::string> Token(const std::string& repo) override;
  void Refused(const std::string& repo) override;

 private:
  struct Cached {
    std::string token;
    int64_t expires_s = 0;
  };
  Result<std::string> Jwt();
  Result<int64_t> Installation(const std::string& repo);

  Rest& rest_;
  const std::string app_id_;
  const std::string key_;
  std::function<int64_t()> now_s_;
  std::mutex mu_;
  std::map<std::string, int64_t> installations_;  // repo -> installation id; guarded by mu_
  std::map<int64_t, Cached> tokens_;              // installation id -> token; guarded by mu_
};

}  // namespace kiln::github
