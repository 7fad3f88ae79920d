#include "controller/web/auth.h"

#include <array>

#include "base/digest.h"
#include "controller/store/schema.h"

namespace kiln::web {
namespace {

// The web view's tables (docs/store.md), on a track of their own.
//
// Version 1: sign-in sessions and share links, each by the SHA-256 (hex) of
// its secret.
constexpr std::string_view kV1 = R"sql(
CREATE TABLE web_sessions (
  id_sha256 TEXT PRIMARY KEY NOT NULL,
  user TEXT NOT NULL,
  csrf TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL
);
CREATE TABLE web_shares (
  id TEXT PRIMARY KEY NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE,
  run_id TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL DEFAULT 0,
  revoked_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX web_shares_by_run ON web_shares (run_id, created_ms);
)sql";

constexpr std::array<std::string_view, 1> kSteps = {kV1};

// The same steps in PostgreSQL's dialect (docs/store.md).
constexpr std::string_view kPgV1 = R"sql(
CREATE TABLE web_sessions (
  id_sha256 TEXT PRIMARY KEY NOT NULL,
  "user" TEXT NOT NULL,
  csrf TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL
);
CREATE TABLE web_shares (
  id TEXT PRIMARY KEY NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE,
  run_id TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL DEFAULT 0,
  revoked_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX web_shares_by_run ON web_shares (run_id, created_ms);
)sql";

constexpr std::array<std::string_view, 1> kPgSteps = {kPgV1};
constexpr int kBusyTimeoutMs = 5'000;

Share ShareRow(const store::sql::Stmt& s) {
  return Share{s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Int(4), s.Int(5)};
}

constexpr std::string_view kShareColumns =
    "id, run_id, created_by, created_ms, expires_ms, revoked_ms";

}  // namespace

Result<std::unique_ptr<Auth>> Auth::Open(const std::string& store_path) {
  static constexpr store::schema::Track kTrack{"web", kSteps, kPgSteps};
  KILN_ASSIGN_OR_RETURN(store::sql::Db db,
                        store::schema::Open(store_path, kBusyTimeoutMs, &kTrack));
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<forge::Users> users, forge::Users::Open(store_path));
  return std::unique_ptr<Auth>(new Auth(std::move(db), std::move(users)));
}

Result<std::optional<Auth::SignedIn>> Auth::SignIn(std::string_view user, std::string_view token,
                                                   int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> owner, users_->Authenticate(token));
  if (!owner || *owner != user) return std::optional<SignedIn>();
  KILN_ASSIGN_OR_RETURN(std::string id, forge::NewSecret(""));
  KILN_ASSIGN_OR_RETURN(std::string csrf, forge::NewSecret(""));
  SignedIn in{id, Session{*owner, csrf, now_ms + kSessionMs}};
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(store::sql::Stmt gone,
                        db_.Prepare("forgetting expired sessions",
                                    "DELETE FROM web_sessions WHERE expires_ms <= ?1"));
  gone.Bind(1, now_ms);
  KILN_TRY(gone.Run());
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt put,
      db_.Prepare("storing a session",
                  "INSERT INTO web_sessions (id_sha256, \"user\", csrf, created_ms, expires_ms) "
                  "VALUES (?1, ?2, ?3, ?4, ?5)"));
  put.Bind(1, Sha256Hex(id))
      .Bind(2, in.session.user)
      .Bind(3, csrf)
      .Bind(4, now_ms)
      .Bind(5, in.session.expires_ms);
  KILN_TRY(put.Run());
  return std::optional<SignedIn>(std::move(in));
}

Result<std::optional<Session>> Auth::SessionFor(std::string_view id, int64_t now_ms) {
  if (id.empty()) return std::optional<Session>();
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(store::sql::Stmt get,
                        db_.Prepare("looking up a session",
                                    "SELECT \"user\", csrf, expires_ms FROM web_sessions "
                                    "WHERE id_sha256 = ?1 AND expires_ms > ?2"));
  get.Bind(1, Sha256Hex(id)).Bind(2, now_ms);
  KILN_ASSIGN_OR_RETURN(bool row, get.Step());
  if (!row) return std::optional<Session>();
  return std::optional<Session>(Session{get.Text(0), get.Text(1), get.Int(2)});
}

Status Auth::SignOut(std::string_view id) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt del,
      db_.Prepare("ending a session", "DELETE FROM web_sessions WHERE id_sha256 = ?1"));
  del.Bind(1, Sha256Hex(id));
  return del.Run();
}

Result<Auth::Created> Auth::CreateShare(const std::string& run_id, const std::string& by,
                                        int64_t expires_ms, int64_t now_ms) {
  KILN_ASSIGN_OR_RETURN(std::string token, forge::NewSecret(""));
  KILN_ASSIGN_OR_RETURN(std::string id, forge::NewSecret("sh"));
  id.resize(14);
  Created out{token, Share{id, run_id, by, now_ms, expires_ms, 0}};
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt put,
      db_.Prepare("storing a share link",
                  "INSERT INTO web_shares (id, token_sha256, run_id, created_by, created_ms, "
                  "expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  put.Bind(1, id).Bind(2, Sha256Hex(token)).Bind(3, run_id).Bind(4, by).Bind(5, now_ms);
  put.Bind(6, expires_ms);
  KILN_TRY(put.Run());
  return out;
}

Result<std::optional<Share>> Auth::ShareFor(std::string_view token, int64_t now_ms) {
  if (token.empty()) return std::optional<Share>();
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt get,
      db_.Prepare("looking up a share link",
                  "SELECT " + std::string(kShareColumns) +
                      " FROM web_shares WHERE token_sha256 = ?1 AND revoked_ms = 0 "
                      "AND (expires_ms = 0 OR expires_ms > ?2)"));
  get.Bind(1, Sha256Hex(token)).Bind(2, now_ms);
  KILN_ASSIGN_OR_RETURN(bool row, get.Step());
  if (!row) return std::optional<Share>();
  return std::optional<Share>(ShareRow(get));
}

Status Auth::Revoke(const std::string& id, int64_t now_ms) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt find,
      db_.Prepare("looking up a share link", "SELECT revoked_ms FROM web_shares WHERE id = ?1"));
  find.Bind(1, id);
  KILN_ASSIGN_OR_RETURN(bool row, find.Step());
  if (!row) return Error::NotFound("no share link " + Quote(id));
  if (find.Int(0) != 0) return Ok();
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt put,
      db_.Prepare("revoking a share link", "UPDATE web_shares SET revoked_ms = ?2 WHERE id = ?1"));
  put.Bind(1, id).Bind(2, now_ms);
  return put.Run();
}

Result<std::vector<Share>> Auth::Shares(const std::string& run_id) {
  std::lock_guard lock(mu_);
  KILN_ASSIGN_OR_RETURN(
      store::sql::Stmt get,
      db_.Prepare("listing share links",
                  "SELECT " + std::string(kShareColumns) +
                      " FROM web_shares WHERE ?1 = '' OR run_id = ?1 ORDER BY created_ms DESC"));
  get.Bind(1, run_id);
  std::vector<Share> out;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(bool row, get.Step());
    if (!row) return out;
    out.push_back(ShareRow(get));
  }
}

}  // namespace kiln::web
