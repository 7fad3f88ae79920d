// The local forge's API users and their tokens (table forge_users). A token
// is "kiln_" followed by 64 hex digits of OpenSSL's RAND_bytes; the store
// keeps only its SHA-256 (hex), so a copy of the database does not give the
// tokens away. `kiln forge user add` shows a token once.
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
#include "controller/store/sql.h"

namespace kiln::forge {

struct User {
  std::string name;
  int64_t created_ms = 0;
};

// A new secret: prefix and 64 hex digits of RAND_bytes.
Result<std::string> NewSecret(std::string_view prefix);

class Users {
 public:
  static Result<std::unique_ptr<Users>> Open(const std::string& store_path);

  Users(const Users&) = delete;
  Users& operator=(const Users&) = delete;

  // Creates user name with a new token and returns the token. An existing
  // user is an error unless rotate, which replaces its token (the old one
  // stops working).
  Result<std::string> Add(const std::string& name, bool rotate, int64_t now_ms);
  // The user a token belongs to; nullopt for an unknown token.
  Result<std::optional<std::string>> Authenticate(std::string_view token);
  Result<std::vector<User>> List();

 private:
  explicit Users(store::sql::Db db) : db_(std::move(db)) {}

  std::mutex mu_;
  store::sql::Db db_;  // guarded by mu_
};

}  // namespace kiln::forge
