// Helpers shared by the store's unit tests: a store on either backend (a
// SQLite file in a temporary directory, or a database of its own on the test
// PostgreSQL server), a direct connection to look at or damage a store
// behind its back, and requests and runs to compare.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "controller/store/postgres.h"
#include "controller/store/store.h"
#include "tests/support/postgres.h"
#include "tests/support/temp_dir.h"

namespace kiln::store::testing {

using TempDir = ::kiln::testing::TempDir;

using ::kiln::testing::Slurp;
using ::kiln::testing::Spit;

// A plain connection, independent of the store's, as another process
// (or a person with the sqlite3 shell) would have.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK) << path;
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // Runs sql with params bound as text to ?1, ?2, ...; returns the first
  // column of the first row ("" when there is none).
  std::string Query(const std::string& sql, const std::vector<std::string>& params = {}) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << sqlite3_errmsg(db_);
    if (rc != SQLITE_OK) return "";
    for (size_t i = 0; i < params.size(); ++i) {
      sqlite3_bind_text(stmt, static_cast<int>(i + 1), params[i].c_str(), -1, SQLITE_TRANSIENT);
    }
    std::string out;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      if (text != nullptr) out = reinterpret_cast<const char*>(text);
    } else {
      EXPECT_EQ(rc, SQLITE_DONE) << sql << ": " << sqlite3_errmsg(db_);
    }
    sqlite3_finalize(stmt);
    return out;
  }

  // Runs a script of statements without parameters.
  void Exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }

 private:
  sqlite3* db_ = nullptr;
};

inline std::unique_ptr<Store> MustOpen(const std::string& location) {
  auto store = Open(location);
  EXPECT_TRUE(store.ok()) << store.error().message();
  return store.ok() ? std::move(*store) : nullptr;
}

inline RunRequest Request(std::string repo = "https://git.example/a.git", int priority = 0) {
  RunRequest r;
  r.role = "implement";
  r.repo = std::move(repo);
  r.commit = "main";
  r.task = "fix issue 7";
  r.priority = priority;
  r.requested_by = "cli:root";
  return r;
}

inline Run MustEnqueue(Store& store, const RunRequest& request, int64_t now_ms) {
  auto run = store.Enqueue(request, now_ms);
  EXPECT_TRUE(run.ok()) << run.error().message();
  return run.ok() ? *run : Run{};
}

// The id of the run Claim returns, "" for none (and a failure for an error).
inline std::string ClaimId(Store& store, const ClaimLimits& limits, int64_t now_ms,
                           std::string_view owner = "daemon-1") {
  auto claimed = store.Claim(limits, owner, now_ms);
  EXPECT_TRUE(claimed.ok()) << claimed.error().message();
  if (!claimed.ok() || !*claimed) return "";
  return (*claimed)->id;
}

// The end of an attempt with only a status and an outcome.
inline Finish Ended(Status status, std::string outcome = "") {
  Finish f;
  f.status = status;
  f.outcome = std::move(outcome);
  return f;
}

inline Progress Progressed(std::string commit_sha, std::string image_digest, std::string sandbox_id,
                           std::string log_path, std::string log_head) {
  Progress p;
  p.commit_sha = std::move(commit_sha);
  p.image_digest = std::move(image_digest);
  p.sandbox_id = std::move(sandbox_id);
  p.log_path = std::move(log_path);
  p.log_head = std::move(log_head);
  return p;
}

inline Run MustGet(Store& store, std::string_view id) {
  auto run = store.Get(id);
  EXPECT_TRUE(run.ok()) << run.error().message();
  return run.ok() ? *run : Run{};
}

inline void ExpectSameRun(const Run& a, const Run& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.request.role, b.request.role);
  EXPECT_EQ(a.request.repo, b.request.repo);
  EXPECT_EQ(a.request.commit, b.request.commit);
  EXPECT_EQ(a.request.task, b.request.task);
  EXPECT_EQ(a.request.priority, b.request.priority);
  EXPECT_EQ(a.request.budgets, b.request.budgets);
  EXPECT_EQ(a.request.requested_by, b.request.requested_by);
  EXPECT_EQ(a.request.max_attempts, b.request.max_attempts);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.created_ms, b.created_ms);
  EXPECT_EQ(a.started_ms, b.started_ms);
  EXPECT_EQ(a.finished_ms, b.finished_ms);
  EXPECT_EQ(a.not_before_ms, b.not_before_ms);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.cancel_requested, b.cancel_requested);
  EXPECT_EQ(a.commit_sha, b.commit_sha);
  EXPECT_EQ(a.image_digest, b.image_digest);
  EXPECT_EQ(a.sandbox_id, b.sandbox_id);
  EXPECT_EQ(a.log_path, b.log_path);
  EXPECT_EQ(a.log_head, b.log_head);
  EXPECT_EQ(a.outcome, b.outcome);
  EXPECT_EQ(a.result, b.result);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.lease_expires_ms, b.lease_expires_ms);
  EXPECT_EQ(a.live, b.live);
}

// SQL that takes a SQLite store at the current version back to `version`
// of the store's track as an older kiln left it (the later steps that
// changed anything undone), for the tests of upgrades.
inline std::string RewindStoreSql(int version) {
  std::string sql;
  if (version < 10) sql += "ALTER TABLE runs DROP COLUMN live;";
  if (version < 9)
    sql += "ALTER TABLE hosts DROP COLUMN url; ALTER TABLE hosts DROP COLUMN log_key;";
  if (version < 7) {
    sql +=
        "DROP TABLE hosts; DROP INDEX runs_by_lease; ALTER TABLE runs DROP COLUMN epoch; "
        "ALTER TABLE runs DROP COLUMN lease_expires_ms;";
  }
  return sql + "UPDATE kiln_meta SET value = '" + std::to_string(version) +
         "' WHERE key = 'schema_version';";
}

enum class Backend { kSqlite, kPostgres };

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "postgres";
}

// How GoogleTest (and so CTest's test list) shows a Backend.
inline void PrintTo(Backend backend, std::ostream* out) {
  *out << (backend == Backend::kSqlite ? "sqlite" : "postgres");
}

inline auto AllBackends() { return ::testing::Values(Backend::kSqlite, Backend::kPostgres); }

// A place for a store on the backend the test is instantiated with:
// location_ is a path or a URL, empty until SetUp. A PostgreSQL test skips,
// naming the reason, where the test server is not running.
class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kSqlite) {
      location_ = dir_ / "kiln.db";
      return;
    }
    auto server = ::kiln::testing::TestPostgres();
    if (!server.skip.empty()) GTEST_SKIP() << server.skip;
    database_.emplace(server.url);
    location_ = database_->url();
    ASSERT_FALSE(location_.empty());
  }

  // Runs one statement on the store's database behind its back, as another
  // tool or a person with a SQL shell would, with params as text in $1, $2 ...
  void RawExec(const std::string& sql, const std::vector<std::string>& params = {}) {
    if (GetParam() == Backend::kSqlite) {
      RawDb(location_).Query(sql, params);
      return;
    }
    auto conn = pg::Conn::Connect(location_);
    ASSERT_TRUE(conn.ok()) << conn.error().message();
    std::vector<pg::Param> values(params.begin(), params.end());
    auto done = conn->Exec("test", sql, values);
    ASSERT_TRUE(done.ok()) << done.error().message();
  }

  // The first column of the first row of a query on the store's database,
  // "" when there is none: what a person with a SQL shell would see.
  std::string RawQuery(const std::string& sql, const std::vector<std::string>& params = {}) {
    if (GetParam() == Backend::kSqlite) return RawDb(location_).Query(sql, params);
    auto conn = pg::Conn::Connect(location_);
    EXPECT_TRUE(conn.ok()) << conn.error().message();
    if (!conn.ok()) return "";
    std::vector<pg::Param> values(params.begin(), params.end());
    auto rows = conn->Exec("test", sql, values);
    EXPECT_TRUE(rows.ok()) << sql << ": " << rows.error().message();
    return rows.ok() && rows->size() > 0 ? rows->Text(0, 0) : "";
  }

  TempDir dir_;
  std::optional<::kiln::testing::PostgresDatabase> database_;
  std::string location_;
};

// A store on the test's backend.
class StoreTest : public BackendTest {
 protected:
  // Inside a test body, plain `Run` would name ::testing::Test::Run().
  using Run = store::Run;

  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store_ = MustOpen(location_);
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<Store> store_;
};

}  // namespace kiln::store::testing
