// Opening files: new, older, newer and foreign ones, migrations step by step,
// and damaged rows.
#include "controller/store/schema.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "base/strings.h"
#include "controller/store/store.h"
#include "controller/store/testutil.h"

namespace kiln::store {
namespace {

using testing::MustEnqueue;
using testing::RawDb;
using testing::Request;
using testing::Slurp;
using testing::Spit;
using testing::StoreTest;
using testing::TempDir;

const std::string kCurrent = std::to_string(schema::Migrations().size());

TEST(SchemaTest, NewFileBecomesACurrentStoreInWalMode) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  auto store = testing::MustOpen(path);
  ASSERT_NE(store, nullptr);
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT value FROM kiln_meta WHERE key = 'schema_version'"), kCurrent);
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM runs"), "0");
}

TEST(SchemaTest, EmptyFileBecomesAStore) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  Spit(path, "");
  auto store = testing::MustOpen(path);
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(MustEnqueue(*store, Request(), 1).id.empty());
}

TEST(SchemaTest, VersionZeroStoreIsMigrated) {
  // What a crash between creating kiln_meta and the first step leaves.
  TempDir dir;
  const std::string path = dir / "kiln.db";
  {
    RawDb raw(path);
    raw.Exec(
        "CREATE TABLE kiln_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
        "INSERT INTO kiln_meta VALUES ('schema_version', '0');");
  }
  auto store = testing::MustOpen(path);
  ASSERT_NE(store, nullptr);
  store::Run run = MustEnqueue(*store, Request(), 1);
  EXPECT_EQ(testing::MustGet(*store, run.id).request.task, "fix issue 7");
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT value FROM kiln_meta WHERE key = 'schema_version'"), kCurrent);
}

TEST(SchemaTest, VersionOneStoreGainsSteeringAndKeepsItsRuns) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  std::string id;
  {
    auto store = testing::MustOpen(path);
    id = MustEnqueue(*store, Request(), 1).id;
  }
  {
    // Back to version 1: only the runs table as version 1 made it. Every
    // later step's tables go (whatever they are), and runs.context (version 3).
    RawDb raw(path);
    raw.Exec(testing::RewindStoreSql(1));
    const std::string later = raw.Query(
        "SELECT group_concat(name) FROM sqlite_master WHERE type = 'table' AND name NOT IN "
        "('runs', 'kiln_meta') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'");
    ASSERT_NE(later.find("steering"), std::string::npos);
    std::string drop;
    for (const std::string& table : Split(later, ',')) drop += "DROP TABLE " + table + ";";
    raw.Exec(drop + "ALTER TABLE runs DROP COLUMN context;");
  }
  auto store = testing::MustOpen(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(testing::MustGet(*store, id).request.task, "fix issue 7");
  EXPECT_TRUE(store->AddSteering(id, "alice", "hello", 2).ok());
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT value FROM kiln_meta WHERE key = 'schema_version'"), kCurrent);
}

// The migration engine, with a list of steps of its own.
class MigrateTest : public ::testing::Test {
 protected:
  sql::Db Open() {
    auto db = sqlite::Db::Open(path_, 5000);
    EXPECT_TRUE(db.ok()) << db.error().message();
    return sql::Db(std::move(*db));
  }
  std::string Version() {
    RawDb raw(path_);
    return raw.Query("SELECT value FROM kiln_meta WHERE key = 'schema_version'");
  }

  TempDir dir_;
  std::string path_ = dir_ / "m.db";
};

TEST_F(MigrateTest, AppliesOnlyMissingStepsInOrder) {
  const std::string_view v1[] = {"CREATE TABLE a (x);"};
  {
    sql::Db db = Open();
    ASSERT_TRUE(schema::Migrate(db, v1).ok());
  }
  EXPECT_EQ(Version(), "1");
  // Step 1 would fail if applied again (table a exists); step 3 needs step 2.
  const std::string_view v3[] = {"CREATE TABLE a (x);",
                                 "CREATE TABLE b (y); INSERT INTO b VALUES (2);",
                                 "INSERT INTO a SELECT y + 1 FROM b;"};
  {
    sql::Db db = Open();
    auto st = schema::Migrate(db, v3);
    ASSERT_TRUE(st.ok()) << st.error().message();
    ASSERT_TRUE(schema::Migrate(db, v3).ok());  // up to date: nothing to do
  }
  EXPECT_EQ(Version(), "3");
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT x FROM a"), "3");
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM a"), "1");
}

TEST_F(MigrateTest, FailedStepIsRolledBackAndNamed) {
  const std::string_view steps[] = {"CREATE TABLE a (x);",
                                    "CREATE TABLE b (y); INSERT INTO missing VALUES (1);"};
  sql::Db db = Open();
  auto st = schema::Migrate(db, steps);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("store '" + path_ + "': migrating to version 2: "),
            std::string::npos)
      << st.error().message();
  EXPECT_NE(st.error().message().find("no such table: missing"), std::string::npos);
  EXPECT_EQ(Version(), "1");
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'"), "0");
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_master WHERE name = 'a'"), "1");
}

TEST(SchemaTest, NewerStoreIsRefusedNamingBothVersions) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  {
    RawDb raw(path);
    raw.Exec(
        "CREATE TABLE kiln_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
        "INSERT INTO kiln_meta VALUES ('schema_version', '99');");
  }
  const std::string before = Slurp(path);
  auto store = OpenSqlite(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), Error::Code::kUnsupported);
  EXPECT_EQ(store.error().message(),
            "store '" + path + "': database is version 99, this kiln knows up to " + kCurrent);
  EXPECT_EQ(Slurp(path), before);
}

TEST(SchemaTest, NonSqliteFileIsRefusedAndLeftAlone) {
  TempDir dir;
  const std::string path = dir / "notes.txt";
  std::string text = "these are not the tables you are looking for\n";
  for (int i = 0; i < 200; ++i) text += "line " + std::to_string(i) + "\n";
  Spit(path, text);
  auto store = OpenSqlite(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), Error::Code::kCorruption);
  EXPECT_NE(store.error().message().find("store '" + path + "'"), std::string::npos)
      << store.error().message();
  EXPECT_NE(store.error().message().find("not a database"), std::string::npos)
      << store.error().message();
  EXPECT_EQ(Slurp(path), text);
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(path + "-journal"));
}

TEST(SchemaTest, ForeignSqliteDatabaseIsRefusedAndLeftAlone) {
  TempDir dir;
  const std::string path = dir / "other.db";
  {
    RawDb raw(path);
    raw.Exec(
        "CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada');"
        "CREATE TABLE accounts (n INTEGER);");
  }
  const std::string before = Slurp(path);
  auto store = OpenSqlite(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), Error::Code::kInvalidArgument);
  EXPECT_EQ(store.error().message(),
            "store '" + path +
                "': not a kiln store: a SQLite database with tables 'accounts', 'users' but no "
                "kiln_meta table");
  EXPECT_EQ(Slurp(path), before);
  RawDb raw(path);
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "delete");
}

TEST(SchemaTest, UnreadableVersionIsCorruption) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  {
    RawDb raw(path);
    raw.Exec(
        "CREATE TABLE kiln_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
        "INSERT INTO kiln_meta VALUES ('schema_version', 'one');");
  }
  auto store = OpenSqlite(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code(), Error::Code::kCorruption);
  EXPECT_NE(store.error().message().find("schema_version 'one'"), std::string::npos)
      << store.error().message();
}

TEST(SchemaTest, ProcessesOpeningANewFileTogetherAllSucceed) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto store = OpenSqlite(path);
      EXPECT_TRUE(store.ok()) << store.error().message();
      if (store.ok() && (*store)->Enqueue(Request(), 1).ok()) opened++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM runs"), "4");
  EXPECT_EQ(raw.Query("SELECT value FROM kiln_meta WHERE key = 'schema_version'"), kCurrent);
}

TEST_P(StoreTest, CorruptJsonColumnIsCorruptionNamingRunAndColumn) {
  Run run = MustEnqueue(*store_, Request(), 1);
  RawExec("UPDATE runs SET result = '{\"summary\": ' WHERE id = $1", {run.id});
  auto got = store_->Get(run.id);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), Error::Code::kCorruption);
  EXPECT_NE(got.error().message().find("run '" + run.id + "': column 'result'"), std::string::npos)
      << got.error().message();

  Run other = MustEnqueue(*store_, Request(), 2);
  RawExec("UPDATE runs SET budgets = 'max_turns=3' WHERE id = $1", {other.id});
  auto listed = store_->List({});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), Error::Code::kCorruption);
  EXPECT_NE(listed.error().message().find("run '" + other.id + "': column 'budgets'"),
            std::string::npos)
      << listed.error().message();
}

TEST_P(StoreTest, UnknownStatusIsCorruption) {
  Run run = MustEnqueue(*store_, Request(), 1);
  RawExec("UPDATE runs SET status = 'paused' WHERE id = $1", {run.id});
  auto got = store_->Get(run.id);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), Error::Code::kCorruption);
  EXPECT_NE(got.error().message().find("column 'status'"), std::string::npos);
  auto counts = store_->CountByStatus();
  ASSERT_FALSE(counts.ok());
  EXPECT_EQ(counts.error().code(), Error::Code::kCorruption);
  EXPECT_NE(counts.error().message().find("'paused'"), std::string::npos);
}

}  // namespace
}  // namespace kiln::store
