// The pipeline's table on its own track of migrations.
#include "controller/pipeline/state.h"

#include <gtest/gtest.h>

#include "controller/store/store.h"
#include "controller/store/testutil.h"

namespace kiln::pipeline {
namespace {

using ::kiln::testing::TempDir;
using store::testing::RawDb;

TEST(PipelineState, ANewStoreGetsThePipelineTableOnItsTrack) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  ASSERT_TRUE(State::Open(path).ok());
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT value FROM kiln_meta WHERE key = 'schema_version:pipeline'"), "2");
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM pipeline_runs"), "0");
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM pipeline_lead"), "0");
}

// A store that kiln before the owners' tracks migrated to version 3 or
// later has pipeline_runs already: it is handed over with its rows, at the
// pipeline's version 1, then brought to the current one.
TEST(PipelineState, AStoreFromBeforeTheTracksHandsItsTableOver) {
  TempDir dir;
  const std::string path = dir / "kiln.db";
  std::string run_id;
  {
    auto store = store::testing::MustOpen(path);
    ASSERT_NE(store, nullptr);
    run_id = store::testing::MustEnqueue(*store, store::testing::Request(), 1).id;
    auto state = State::Open(path);
    ASSERT_TRUE(state.ok()) << state.error().message();
    Tracked t;
    t.run_id = run_id;
    t.repo = "acme/widget";
    t.number = 7;
    t.role = "triage";
    ASSERT_TRUE((*state)->Track(t).ok());
  }
  {
    RawDb raw(path);
    raw.Exec("DELETE FROM kiln_meta WHERE key != 'schema_version'; DROP TABLE pipeline_lead;" +
             store::testing::RewindStoreSql(3));
  }
  auto state = State::Open(path);
  ASSERT_TRUE(state.ok()) << state.error().message();
  auto rows = (*state)->ForIssue("acme/widget", 7, "triage");
  ASSERT_TRUE(rows.ok()) << rows.error().message();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].run_id, run_id);
  RawDb raw(path);
  EXPECT_EQ(raw.Query("SELECT value FROM kiln_meta WHERE key = 'schema_version:pipeline'"), "2");
}

}  // namespace
}  // namespace kiln::pipeline
