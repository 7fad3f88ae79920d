// The test PostgreSQL server (scripts/postgres-test-server.sh, started by the
// CTest fixture kiln_postgres for suites registered with POSTGRES) and a
// database of its own for each test. Header-only; link kiln_store.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>

#include "controller/store/postgres.h"
#include "tests/support/temp_dir.h"

namespace kiln::testing {

#ifdef KILN_TEST_POSTGRES_DIR
inline constexpr const char* kPostgresStateDir = KILN_TEST_POSTGRES_DIR;
#else
inline constexpr const char* kPostgresStateDir = "";
#endif

// The server's superuser URL, or why there is none (to skip with).
struct PostgresServer {
  std::string url;
  std::string skip;
};

inline PostgresServer TestPostgres(const std::string& state = kPostgresStateDir) {
  namespace fs = std::filesystem;
  if (state.empty()) return {"", "this suite is not registered with POSTGRES"};
  if (fs::exists(fs::path(state) / "skip")) {
    return {"", "no test PostgreSQL server: " + Slurp(fs::path(state) / "skip")};
  }
  if (!fs::exists(fs::path(state) / "url")) {
    return {"", "no test PostgreSQL server: " + state +
                    "/url is missing (run through ctest, whose fixture kiln_postgres starts it)"};
  }
  std::string url = Slurp(fs::path(state) / "url");
  while (!url.empty() && url.back() == '\n') url.pop_back();
  return {url, ""};
}

// url with its database (the path after host:port) replaced by name.
inline std::string WithDatabase(const std::string& url, const std::string& name) {
  return url.substr(0, url.rfind('/') + 1) + name;
}

// A fresh database on the server, dropped (its connections cut) when this
// goes out of scope.
class PostgresDatabase {
 public:
  explicit PostgresDatabase(const std::string& server_url) : admin_url_(server_url) {
    static std::atomic<int> counter{0};
    name_ = "kiln_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    auto admin = store::pg::Conn::Connect(admin_url_);
    EXPECT_TRUE(admin.ok()) << admin.error().message();
    if (!admin.ok()) return;
    (void)admin->Exec("dropping", "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    auto created = admin->Exec("creating a test database", "CREATE DATABASE " + name_);
    EXPECT_TRUE(created.ok()) << created.error().message();
    url_ = WithDatabase(admin_url_, name_);
  }
  ~PostgresDatabase() {
    auto admin = store::pg::Conn::Connect(admin_url_);
    if (admin.ok())
      (void)admin->Exec("dropping", "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  PostgresDatabase(const PostgresDatabase&) = delete;
  PostgresDatabase& operator=(const PostgresDatabase&) = delete;

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

}  // namespace kiln::testing
