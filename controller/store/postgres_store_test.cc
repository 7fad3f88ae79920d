// What only the PostgreSQL backend has: its URL and its errors at start-up,
// its schema versions beside SQLite's, text PostgreSQL cannot hold, and a
// server that goes away and comes back. The behaviour both backends share
// is tested on both (store_test.cc, queue_test.cc).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "base/process.h"
#include "controller/store/postgres.h"
#include "controller/store/schema.h"
#include "controller/store/sql.h"
#include "controller/store/store.h"
#include "controller/store/testutil.h"
#include "tests/support/net.h"
#include "tests/support/postgres.h"

namespace kiln::store {
namespace {

using testing::Backend;
using testing::BackendTest;
using testing::MustEnqueue;
using testing::MustGet;
using testing::Request;

// Statements are written once with SQLite's ?1, ?2 ...; PostgreSQL gets
// $1, $2 ..., and text in quotes is left as it is.
TEST(PostgresDialectTest, ParametersOutsideQuotesBecomeDollars) {
  EXPECT_EQ(sql::PostgresParameters("SELECT a FROM t WHERE b = ?1 AND c IN (?2, ?10)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $10)");
  EXPECT_EQ(sql::PostgresParameters("SELECT '?1', \"?2\", 'it''s ?3', ?4"),
            "SELECT '?1', \"?2\", 'it''s ?3', $4");
  EXPECT_EQ(sql::PostgresParameters("SELECT labels::jsonb ? 'bug'"),
            "SELECT labels::jsonb ? 'bug'");
}

TEST(PostgresUrlTest, PasswordsNeverShow) {
  EXPECT_EQ(pg::Redact("postgres://kiln:s3cret@db:5432/kiln"), "postgres://kiln:***@db:5432/kiln");
  EXPECT_EQ(pg::Redact("postgresql://kiln:p%40ss@db/kiln?sslmode=require"),
            "postgresql://kiln:***@db/kiln?sslmode=require");
  EXPECT_EQ(pg::Redact("postgres://db/kiln?user=k&password=s3cret&sslmode=require"),
            "postgres://db/kiln?user=k&password=***&sslmode=require");
  EXPECT_EQ(pg::Redact("postgres://kiln@db/kiln"), "postgres://kiln@db/kiln");
  EXPECT_EQ(pg::Redact("postgres://db/kiln"), "postgres://db/kiln");
  EXPECT_TRUE(pg::IsUrl("postgres://db/kiln"));
  EXPECT_TRUE(pg::IsUrl("postgresql://db/kiln"));
  EXPECT_FALSE(pg::IsUrl("/var/lib/kiln/kiln.db"));
  EXPECT_FALSE(pg::IsUrl("postgres.db"));
}

class PostgresStoreTest : public BackendTest {
 protected:
  using Run = store::Run;
  // The message of the error opening location gives; a failure if it opens.
  static std::string OpenError(const std::string& location) {
    auto store = Open(location);
    EXPECT_FALSE(store.ok()) << location << " opened";
    return store.ok() ? "" : store.error().message();
  }
  std::string Scalar(const std::string& sql) {
    auto conn = pg::Conn::Connect(location_);
    EXPECT_TRUE(conn.ok()) << conn.error().message();
    if (!conn.ok()) return "";
    auto rows = conn->Exec("test", sql);
    EXPECT_TRUE(rows.ok()) << rows.error().message();
    return rows.ok() && rows->size() > 0 ? rows->Text(0, 0) : "";
  }
};

TEST_P(PostgresStoreTest, EachBadUrlGetsOneClearErrorWithoutItsPassword) {
  const std::string good = location_;
  const std::string password =
      good.substr(good.find(':', 11) + 1, good.find('@') - good.find(':', 11) - 1);
  ASSERT_FALSE(password.empty());

  // Nothing listens on a port just freed.
  const int closed = ::kiln::testing::FreePort();
  std::string unreachable =
      "postgres://kiln:" + password + "@127.0.0.1:" + std::to_string(closed) + "/kiln";
  std::string message = OpenError(unreachable);
  EXPECT_NE(message.find("cannot connect"), std::string::npos) << message;
  EXPECT_NE(message.find("postgres://kiln:***@127.0.0.1:"), std::string::npos) << message;
  EXPECT_EQ(message.find(password), std::string::npos) << message;

  std::string wrong = good;
  wrong.replace(wrong.find(password), password.size(), "not-the-password");
  message = OpenError(wrong);
  EXPECT_NE(message.find("password authentication failed"), std::string::npos) << message;
  EXPECT_EQ(message.find("not-the-password"), std::string::npos) << message;

  message = OpenError(::kiln::testing::WithDatabase(good, "no_such_database"));
  EXPECT_NE(message.find("\"no_such_database\" does not exist"), std::string::npos) << message;

  message = OpenError("postgres://kiln@127.0.0.1:notaport/kiln");
  EXPECT_NE(message.find("invalid integer value \"notaport\" for connection option \"port\""),
            std::string::npos)
      << message;
  message = OpenError("postgres://kiln@127.0.0.1/kiln?sslmod=require");
  EXPECT_NE(message.find("not a PostgreSQL URL: invalid URI query parameter: \"sslmod\""),
            std::string::npos)
      << message;

  // None of them left a connection or wrote anything: the good database
  // still has no tables.
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'"), "0");
}

TEST_P(PostgresStoreTest, ANewerOrForeignDatabaseIsRefusedUntouched) {
  {
    auto store = Open(location_);
    ASSERT_TRUE(store.ok()) << store.error().message();
  }
  EXPECT_EQ(Scalar("SELECT value FROM kiln_meta WHERE key = 'schema_version'"),
            std::to_string(schema::kVersion));
  RawExec("UPDATE kiln_meta SET value = '99' WHERE key = 'schema_version'");
  std::string message = OpenError(location_);
  EXPECT_NE(message.find("database is version 99, this kiln knows up to " +
                         std::to_string(schema::kVersion)),
            std::string::npos)
      << message;
  EXPECT_EQ(Scalar("SELECT value FROM kiln_meta WHERE key = 'schema_version'"), "99");

  RawExec("UPDATE kiln_meta SET value = 'six' WHERE key = 'schema_version'");
  message = OpenError(location_);
  EXPECT_NE(message.find("not a version number"), std::string::npos) << message;

  // Somebody else's database: its tables named, no kiln_meta created.
  RawExec("DROP TABLE kiln_meta");
  RawExec("DROP TABLE steering");
  RawExec("DROP TABLE runs");
  RawExec("CREATE TABLE invoices (id INTEGER)");
  message = OpenError(location_);
  EXPECT_NE(message.find("not a kiln store"), std::string::npos) << message;
  EXPECT_NE(message.find("'invoices'"), std::string::npos) << message;
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM pg_tables WHERE tablename = 'kiln_meta'"), "0");
}

TEST_P(PostgresStoreTest, HostsOpeningANewDatabaseAtOnceMigrateItOnce) {
  std::vector<std::thread> hosts;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    hosts.emplace_back([&] {
      auto store = Open(location_);
      EXPECT_TRUE(store.ok()) << store.error().message();
      if (store.ok()) opened++;
    });
  }
  for (auto& t : hosts) t.join();
  EXPECT_EQ(opened.load(), 4);
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM kiln_meta"), "1");
  EXPECT_EQ(Scalar("SELECT value FROM kiln_meta WHERE key = 'schema_version'"),
            std::to_string(schema::kVersion));
}

TEST_P(PostgresStoreTest, TextPostgresCannotHoldIsKeptAsReplacementCharacters) {
  auto store = Open(location_);
  ASSERT_TRUE(store.ok()) << store.error().message();
  RunRequest req = Request();
  constexpr char kTask[] = "fix \xff\xfe it\0now";
  req.task = std::string(kTask, sizeof kTask - 1);
  Run run = MustEnqueue(**store, req, 1);
  ASSERT_FALSE(run.id.empty());
  EXPECT_EQ(MustGet(**store, run.id).request.task,
            "fix \xEF\xBF\xBD\xEF\xBF\xBD it\xEF\xBF\xBDnow");
}

// The server stops (connections cut) and comes back 3 s later: a call made
// while it is away waits for it and succeeds, on the same Store.
TEST_P(PostgresStoreTest, AServerRestartIsWaitedOutAndNothingIsDoubled) {
  // A server of this test's own: the shared one serves other suites.
  ::kiln::testing::TempDir state;
  const std::string script = std::string(KILN_SOURCE_DIR) + "/scripts/postgres-test-server.sh";
  auto server_script = [&](const std::string& command) {
    auto done = RunProgram({script, command, state.path()});
    EXPECT_TRUE(done.ok()) << done.error().message();
    EXPECT_EQ(done.ok() ? done->status : -1, 0) << (done.ok() ? done->output : "");
    return done.ok() && done->status == 0;
  };
  ASSERT_TRUE(server_script("start"));
  struct Stop {
    std::function<bool(const std::string&)> script;
    ~Stop() { script("stop"); }
  } stop{server_script};
  auto server = ::kiln::testing::TestPostgres(state.path());
  ASSERT_TRUE(server.skip.empty()) << server.skip;
  ::kiln::testing::PostgresDatabase database(server.url);

  auto host = Open(database.url());
  ASSERT_TRUE(host.ok()) << host.error().message();
  Run first = MustEnqueue(**host, Request("r", 1), 1);

  ASSERT_TRUE(server_script("down"));
  std::thread back([&] {
    std::this_thread::sleep_for(std::chrono::seconds(3));
    server_script("up");
  });
  // Made while the server is down: each waits for it.
  auto claimed = (*host)->Claim({}, "host-a", 2);
  back.join();
  ASSERT_TRUE(claimed.ok()) << claimed.error().message();
  ASSERT_TRUE(claimed->has_value());
  EXPECT_EQ((*claimed)->id, first.id);
  EXPECT_EQ((*claimed)->attempt, 1);
  Run second = MustEnqueue(**host, Request("r", 0), 3);
  auto all = (*host)->List({std::nullopt, "", "", 0});
  ASSERT_TRUE(all.ok()) << all.error().message();
  EXPECT_EQ(all->size(), 2u);
  EXPECT_EQ(MustGet(**host, second.id).status, Status::kQueued);
  EXPECT_EQ(MustGet(**host, first.id).status, Status::kRunning);
}

// Only the PostgreSQL instantiation runs (the SQLite one skips): the tests
// use BackendTest's database and RawExec.
// The other owners' write transactions (sql::Txn): a connection lost in the
// middle of one fails the rest of it and its commit, never carrying on
// outside the transaction on a new connection; the next one reconnects.
TEST_P(PostgresStoreTest, ALostConnectionFailsTheRestOfItsTransaction) {
  auto db = schema::Open(location_, 0);
  ASSERT_TRUE(db.ok()) << db.error().message();
  auto txn = sql::Txn::Begin(*db, "test");
  ASSERT_TRUE(txn.ok()) << txn.error().message();
  ASSERT_TRUE(db->Exec("test", "INSERT INTO kiln_meta (key, value) VALUES ('a', '1')").ok());
  RawExec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  auto second = db->Exec("test", "INSERT INTO kiln_meta (key, value) VALUES ('b', '2')");
  ASSERT_FALSE(second.ok());
  auto commit = txn->Commit();
  ASSERT_FALSE(commit.ok());
  EXPECT_NE(commit.error().message().find("lost inside a transaction"), std::string::npos)
      << commit.error().message();
  EXPECT_EQ(RawQuery("SELECT COUNT(*) FROM kiln_meta WHERE key IN ('a', 'b')"), "0");
  // The next transaction reconnects.
  auto again = sql::Txn::Begin(*db, "test");
  ASSERT_TRUE(again.ok()) << again.error().message();
  ASSERT_TRUE(db->Exec("test", "INSERT INTO kiln_meta (key, value) VALUES ('c', '3')").ok());
  ASSERT_TRUE(again->Commit().ok());
  EXPECT_EQ(RawQuery("SELECT value FROM kiln_meta WHERE key = 'c'"), "3");
}

// A host paused inside a transaction (SIGSTOP, a frozen VM) holds its locks:
// the server ends its session after a while, and the other hosts go on. A
// fleet test found a claim stuck behind a paused host's advisory lock.
TEST_P(PostgresStoreTest, AHostPausedInsideATransactionDoesNotHoldTheOthersBack) {
  auto paused = pg::Conn::Connect(location_);
  auto other = pg::Conn::Connect(location_);
  ASSERT_TRUE(paused.ok() && other.ok());
  ASSERT_TRUE(paused->Exec("test", "BEGIN").ok());
  ASSERT_TRUE(paused->Exec("test", "SELECT pg_advisory_xact_lock(4242)").ok());
  // Without the server's timeout this would wait for as long as the host
  // stays paused; the bound turns that into a failure of this test.
  ASSERT_TRUE(other->Exec("test", "SET lock_timeout = '120s'").ok());
  ASSERT_TRUE(other->Exec("test", "BEGIN").ok());
  auto got = other->Exec("test", "SELECT pg_advisory_xact_lock(4242)");
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_TRUE(other->Exec("test", "COMMIT").ok());
  // The paused host finds its session ended when it goes on, and nothing of
  // its transaction stands.
  auto late = paused->Exec("test", "SELECT 1");
  EXPECT_FALSE(late.ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, PostgresStoreTest, ::testing::Values(Backend::kPostgres),
                         testing::BackendName);

}  // namespace
}  // namespace kiln::store
