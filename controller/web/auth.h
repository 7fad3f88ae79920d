// Who may see and do what in the web view (docs/web.md): sign-in sessions
// for the forge's users (their name and API token), a CSRF token per
// session, and share links that show one run read-only. The store keeps the
// SHA-256 of every session id and share token, never the secret itself.
//
// Thread-safe: one connection, its use serialised by a mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "controller/forge/users.h"
#include "controller/store/sql.h"

namespace kiln::web {

// A session lasts this long from sign-in.
inline constexpr int64_t kSessionMs = 12 * 3600 * 1000;

struct Session {
  std::string user;
  std::string csrf;  // what every state-changing request must carry
  int64_t expires_ms = 0;
};

struct Share {
  std::string id;  // public, for listing and revoking: "sh" + 12 hex digits
  std::string run_id;
  std::string created_by;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // 0: never
  int64_t revoked_ms = 0;  // 0: not revoked
};

class Auth {
 public:
  static Result<std::unique_ptr<Auth>> Open(const std::string& store_path);

  Auth(const Auth&) = delete;
  Auth& operator=(const Auth&) = delete;

  // A new session for user when token is that user's API token: the
  // session id (the cookie's value) and the session; nullopt otherwise.
  struct SignedIn {
    std::string id;
    Session session;
  };
  Result<std::optional<SignedIn>> SignIn(std::string_view user, std::string_view token,
                                         int64_t now_ms);
  // The live session of a cookie value; nullopt when unknown or expired.
  Result<std::optional<Session>> SessionFor(std::string_view id, int64_t now_ms);
  Status SignOut(std::string_view id);
  // The forge user an API token belongs to; nullopt for an unknown one.
  Result<std::optional<std::string>> UserOfToken(std::string_view token) {
    return users_->Authenticate(token);
  }

  // A share link's token for run_id (shown once; the store keeps its hash).
  struct Created {
    std::string token;
    Share share;
  };
  Result<Created> CreateShare(const std::string& run_id, const std::string& by, int64_t expires_ms,
                              int64_t now_ms);
  // The live share of a token: nullopt when unknown, revoked or expired.
  Result<std::optional<Share>> ShareFor(std::string_view token, int64_t now_ms);
  // Revokes share id; an unknown id is an error.
  Status Revoke(const std::string& id, int64_t now_ms);
  // Every share of run_id ("": of every run), newest first.
  Result<std::vector<Share>> Shares(const std::string& run_id);

 private:
  Auth(store::sql::Db db, std::unique_ptr<forge::Users> users)
      : db_(std::move(db)), users_(std::move(users)) {}

  std::mutex mu_;
  store::sql::Db db_;  // guarded by mu_
  std::unique_ptr<forge::Users> users_;
};

}  // namespace kiln::web
