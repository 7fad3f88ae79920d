#include "controller/forge/users.h"

#include <openssl/err.h>
#include <openssl/rand.h>

#include "base/digest.h"
#include "controller/forge/db.h"
#include "controller/forge/validate.h"

namespace kiln::forge {
namespace {

std::string OpenSslMessage() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

Result<std::string> NewSecret(std::string_view prefix) {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return Error(Error::Code::kIO, "generating a secret: RAND_bytes: " + OpenSslMessage());
  }
  return std::string(prefix) +
         Hex(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

Result<std::unique_ptr<Users>> Users::Open(const std::string& store_path) {
  KILN_ASSIGN_OR_RETURN(store::sql::Db db, db::Open(store_path));
  return std::unique_ptr<Users>(new Users(std::move(db)));
}

Result<std::string> Users::Add(const std::string& name, bool rotate, int64_t now_ms) {
  KILN_TRY(validate::UserName(name));
  KILN_ASSIGN_OR_RETURN(std::string token, NewSecret("kiln_"));
  std::string hash = Sha256Hex(token);
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(store::sql::Txn txn, store::sql::Txn::Begin(db_, "adding a user"));
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt find,
      db_.Prepare("looking up a user", "SELECT 1 FROM forge_users WHERE name = ?1"));
  find.Bind(1, name);
  KILN_ASSIGN_OR_RETURN(bool exists, find.Step());
  if (exists && !rotate) {
    return Error::Invalid("user " + Quote(name) + " already exists (--rotate replaces its token)");
  }
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt put,
      db_.Prepare("storing user " + name,
                  exists ? "UPDATE forge_users SET token_sha256 = ?2 WHERE name = ?1"
                         : "INSERT INTO forge_users (name, token_sha256, created_ms) "
                           "VALUES (?1, ?2, ?3)"));
  put.Bind(1, name).Bind(2, hash);
  if (!exists) put.Bind(3, now_ms);
  KILN_TRY(put.Run());
  KILN_TRY(txn.Commit());
  return token;
}

Result<std::optional<std::string>> Users::Authenticate(std::string_view token) {
  if (token.empty()) return std::optional<std::string>();
  std::string hash = Sha256Hex(token);
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt stmt,
      db_.Prepare("checking a token", "SELECT name FROM forge_users WHERE token_sha256 = ?1"));
  stmt.Bind(1, hash);
  KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(stmt.Text(0));
}

Result<std::vector<User>> Users::List() {
  std::lock_guard<std::mutex> lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt stmt,
      db_.Prepare("listing users", "SELECT name, created_ms FROM forge_users ORDER BY name"));
  std::vector<User> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    out.push_back(User{stmt.Text(0), stmt.Int(1)});
  }
}

}  // namespace kiln::forge
