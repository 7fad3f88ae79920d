// The events inbox: idempotent appends, pending order, processing marks,
// on both store backends.
#include "controller/forge/inbox.h"

#include <gtest/gtest.h>

#include "controller/store/schema.h"
#include "controller/store/testutil.h"

namespace kiln::forge {
namespace {

using ::kiln::testing::TempDir;

Event Webhook(const std::string& delivery, const std::string& kind, int64_t number) {
  Event e;
  e.delivery = delivery;
  e.source = "github";
  e.kind = kind;
  e.repo = "acme/widget";
  e.number = number;
  e.actor = "octocat";
  e.payload = {{"label", "ready-to-spec"}};
  return e;
}

// On both store backends: several hosts of a fleet share one inbox on
// PostgreSQL.
class InboxTest : public store::testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto inbox = Inbox::Open(location_);
    ASSERT_TRUE(inbox.ok()) << inbox.error().message();
    inbox_ = std::move(*inbox);
  }
  std::unique_ptr<Inbox> inbox_;
};

TEST_P(InboxTest, DuplicateDeliveryIsStoredOnce) {
  auto first = inbox_->Append(Webhook("d-1", "issue.labeled", 7), 1000);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_TRUE(*first);
  Event again = Webhook("d-1", "issue.closed", 8);  // same delivery, whatever it says
  auto second = inbox_->Append(again, 2000);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  auto pending = inbox_->Pending(0);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  const Event& e = pending->front();
  EXPECT_EQ(e.kind, "issue.labeled");
  EXPECT_EQ(e.number, 7);
  EXPECT_EQ(e.source, "github");
  EXPECT_EQ(e.actor, "octocat");
  EXPECT_EQ(e.payload["label"], "ready-to-spec");
  EXPECT_EQ(e.received_ms, 1000);
  EXPECT_GT(e.seq, 0);
}

TEST_P(InboxTest, PendingInSeqOrderUntilProcessed) {
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(*inbox_->Append(Webhook("d-" + std::to_string(i), "issue.opened", i), 10 - i));
  }
  auto two = inbox_->Pending(2);
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].delivery, "d-1");  // seq order, not received_ms order
  EXPECT_EQ((*two)[1].delivery, "d-2");
  ASSERT_TRUE(inbox_->MarkProcessed((*two)[0].seq, "queued triage r1", 50).ok());
  auto rest = inbox_->Pending(0);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 3u);
  EXPECT_EQ(rest->front().delivery, "d-2");

  auto entries = inbox_->RecentEntries(0);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ(entries->back().event.delivery, "d-1");  // newest first
  EXPECT_EQ(entries->back().processed_ms, 50);
  EXPECT_EQ(entries->back().outcome, "queued triage r1");
  EXPECT_EQ(entries->front().processed_ms, 0);
  EXPECT_EQ(inbox_->Recent(1)->front().delivery, "d-4");
  EXPECT_TRUE(inbox_->Recent(0, "other/repo")->empty());

  auto unknown = inbox_->MarkProcessed(999, "x", 1);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Error::Code::kNotFound);
}

TEST_P(InboxTest, RefusesEventsWithoutIdentity) {
  EXPECT_FALSE(inbox_->Append(Webhook("", "issue.opened", 1), 1).ok());
  Event no_kind = Webhook("d-9", "", 1);
  EXPECT_FALSE(inbox_->Append(no_kind, 1).ok());
  Event no_source = Webhook("d-9", "issue.opened", 1);
  no_source.source = "";
  EXPECT_FALSE(inbox_->Append(no_source, 1).ok());
  EXPECT_TRUE(inbox_->Pending(0)->empty());
}

TEST_P(InboxTest, TwoInboxesShareOneStore) {
  auto other = Inbox::Open(location_);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(*inbox_->Append(Webhook("d-1", "issue.opened", 1), 1));
  EXPECT_FALSE(*(*other)->Append(Webhook("d-1", "issue.opened", 1), 2));
  ASSERT_EQ((*other)->Pending(0)->size(), 1u);
}

TEST_P(InboxTest, CorruptPayloadIsReportedWithItsSeq) {
  ASSERT_TRUE(*inbox_->Append(Webhook("d-1", "issue.opened", 1), 1));
  RawExec("UPDATE events SET payload = '{nope'");
  auto pending = inbox_->Pending(0);
  ASSERT_FALSE(pending.ok());
  EXPECT_EQ(pending.error().code(), Error::Code::kCorruption);
  EXPECT_NE(pending.error().message().find("event 1: column 'payload'"), std::string::npos)
      << pending.error().message();
}

TEST_P(InboxTest, RefusesADatabaseThatIsNotAStore) {
  inbox_.reset();
  // A database with someone else's tables, before kiln ever opened it.
  std::optional<::kiln::testing::PostgresDatabase> other;
  std::string foreign = dir_ / "foreign.db";
  if (GetParam() == store::testing::Backend::kPostgres) {
    other.emplace(::kiln::testing::TestPostgres().url);
    foreign = other->url();
  }
  location_ = foreign;
  RawExec("CREATE TABLE users (x TEXT)");
  auto inbox = Inbox::Open(foreign);
  ASSERT_FALSE(inbox.ok());
  EXPECT_NE(inbox.error().message().find("not a kiln store"), std::string::npos)
      << inbox.error().message();
  EXPECT_EQ(RawQuery("SELECT COUNT(*) FROM users"), "0");  // and left as it was
}

TEST_P(InboxTest, ANewerForgeTrackIsRefusedBeforeAnythingIsWritten) {
  ASSERT_TRUE(*inbox_->Append(Webhook("d-1", "issue.opened", 1), 1));
  RawExec("UPDATE kiln_meta SET value = '9' WHERE key = 'schema_version:forge'");
  auto newer = Inbox::Open(location_);
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(
      newer.error().message().find("the forge's tables are version 9, this kiln knows up to 2"),
      std::string::npos)
      << newer.error().message();
  EXPECT_EQ(RawQuery("SELECT value FROM kiln_meta WHERE key = 'schema_version:forge'"), "9");
  EXPECT_EQ(RawQuery("SELECT COUNT(*) FROM events"), "1");
}

// A connection the server dropped (a restart, a cut) fails the one call it
// cut, naming the store, and the next call reconnects.
class InboxOnPostgres : public InboxTest {};

TEST_P(InboxOnPostgres, ALostConnectionFailsOneCallAndTheNextReconnects) {
  ASSERT_TRUE(*inbox_->Append(Webhook("d-1", "issue.opened", 1), 1));
  RawQuery(
      "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  auto cut = inbox_->Pending(0);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message().find("store 'postgres://"), std::string::npos)
      << cut.error().message();
  auto again = inbox_->Append(Webhook("d-2", "issue.opened", 2), 2);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_TRUE(*again);
  auto pending = inbox_->Pending(0);
  ASSERT_TRUE(pending.ok()) << pending.error().message();
  EXPECT_EQ(pending->size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Backends, InboxTest, store::testing::AllBackends(),
                         store::testing::BackendName);
INSTANTIATE_TEST_SUITE_P(Postgres, InboxOnPostgres,
                         ::testing::Values(store::testing::Backend::kPostgres),
                         store::testing::BackendName);

}  // namespace
}  // namespace kiln::forge
