// The forge's tables on their own track of migrations, and a store from
// before owners had tracks handing its tables over.
#include "controller/forge/db.h"

#include <gtest/gtest.h>

#include "controller/store/schema.h"
#include "controller/store/testutil.h"

namespace kiln::forge {
namespace {

using ::kiln::testing::TempDir;
using store::testing::RawDb;

std::string Meta(const std::string& path, const std::string& key) {
  RawDb raw(path);
  return raw.Query("SELECT coalesce(max(value), 'none') FROM kiln_meta WHERE key = ?1", {key});
}

TEST(ForgeDb, ANewStoreGetsTheForgeTablesOnTheForgeTrack) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  ASSERT_TRUE(db::Open(path).ok());
  EXPECT_EQ(Meta(path, "schema_version"), std::to_string(store::schema::Migrations().size()));
  EXPECT_EQ(Meta(path, "schema_version:forge"), "2");
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM forge_repos"), "0");
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_master WHERE name = 'events_fingerprint'"), "1");
}

// A store that kiln before the owners' tracks migrated to version 5 (every
// table in one list) already has the forge's tables: they are handed over
// at version 2, not created again, and their rows stay.
TEST(ForgeDb, AStoreFromBeforeTheTracksHandsItsTablesOver) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  ASSERT_TRUE(db::Open(path).ok());
  {
    RawDb raw(path);
    raw.Exec(
        "INSERT INTO forge_repos (name, path, default_branch, created_ms) "
        "VALUES ('acme/widget', '/x', 'main', 1);"
        "DELETE FROM kiln_meta WHERE key != 'schema_version';" +
        store::testing::RewindStoreSql(5));
  }
  auto reopened = db::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message();
  EXPECT_EQ(Meta(path, "schema_version:forge"), "2");
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT name FROM forge_repos"), "acme/widget");
}

// At version 4 the fingerprint was still to come: the forge's version 1,
// and its step 2 adds it.
TEST(ForgeDb, AStoreAtVersionFourGainsTheFingerprint) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  ASSERT_TRUE(db::Open(path).ok());
  {
    RawDb raw(path);
    raw.Exec(
        "DROP INDEX events_fingerprint;"
        "ALTER TABLE events DROP COLUMN fingerprint;"
        "DELETE FROM kiln_meta WHERE key != 'schema_version';" +
        store::testing::RewindStoreSql(4));
  }
  auto reopened = db::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message();
  EXPECT_EQ(Meta(path, "schema_version:forge"), "2");
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_master WHERE name = 'events_fingerprint'"), "1");
}

TEST(ForgeDb, NewerForgeTablesAreRefusedNamingTheOwner) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  ASSERT_TRUE(db::Open(path).ok());
  {
    RawDb raw(path);
    raw.Exec("UPDATE kiln_meta SET value = '9' WHERE key = 'schema_version:forge';");
  }
  auto refused = db::Open(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(),
            "store '" + path + "': the forge's tables are version 9, this kiln knows up to 2");
  EXPECT_EQ(Meta(path, "schema_version:forge"), "9");  // left as it was
}

// kiln from before the owners' tracks knows up to version 5: it refuses a
// store that has moved on rather than creating the forge's tables twice.
TEST(ForgeDb, KilnFromBeforeTheTracksRefusesTheStore) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  ASSERT_TRUE(db::Open(path).ok());
  auto lite = store::sqlite::Db::Open(path, 1000);
  ASSERT_TRUE(lite.ok());
  store::sql::Db db(std::move(*lite));
  auto seen = store::schema::ReadVersion(db, 5);
  ASSERT_FALSE(seen.ok());
  EXPECT_NE(seen.error().message().find("this kiln knows up to 5"), std::string::npos);
}

}  // namespace
}  // namespace kiln::forge
