// The events inbox: idempotent appends, pending order, processing marks.
#include "controller/forge/inbox.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "controller/store/schema.h"
#include "tests/support/temp_dir.h"

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

class InboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto inbox = Inbox::Open(dir_ / "kiln.db");
    ASSERT_TRUE(inbox.ok()) << inbox.error().message();
    inbox_ = std::move(*inbox);
  }
  TempDir dir_;
  std::unique_ptr<Inbox> inbox_;
};

TEST_F(InboxTest, DuplicateDeliveryIsStoredOnce) {
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

TEST_F(InboxTest, PendingInSeqOrderUntilProcessed) {
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

TEST_F(InboxTest, RefusesEventsWithoutIdentity) {
  EXPECT_FALSE(inbox_->Append(Webhook("", "issue.opened", 1), 1).ok());
  Event no_kind = Webhook("d-9", "", 1);
  EXPECT_FALSE(inbox_->Append(no_kind, 1).ok());
  Event no_source = Webhook("d-9", "issue.opened", 1);
  no_source.source = "";
  EXPECT_FALSE(inbox_->Append(no_source, 1).ok());
  EXPECT_TRUE(inbox_->Pending(0)->empty());
}

TEST_F(InboxTest, TwoInboxesShareOneStore) {
  auto other = Inbox::Open(dir_ / "kiln.db");
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(*inbox_->Append(Webhook("d-1", "issue.opened", 1), 1));
  EXPECT_FALSE(*(*other)->Append(Webhook("d-1", "issue.opened", 1), 2));
  ASSERT_EQ((*other)->Pending(0)->size(), 1u);
}

TEST_F(InboxTest, CorruptPayloadIsReportedWithItsSeq) {
  ASSERT_TRUE(*inbox_->Append(Webhook("d-1", "issue.opened", 1), 1));
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "kiln.db").c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "UPDATE events SET payload = '{nope'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  auto pending = inbox_->Pending(0);
  ASSERT_FALSE(pending.ok());
  EXPECT_EQ(pending.error().code(), Error::Code::kCorruption);
  EXPECT_NE(pending.error().message().find("event 1: column 'payload'"), std::string::npos)
      << pending.error().message();
}

TEST_F(InboxTest, RefusesAFileThatIsNotAStore) {
  const std::string path = dir_ / "foreign.db";
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "CREATE TABLE users (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto inbox = Inbox::Open(path);
  ASSERT_FALSE(inbox.ok());
  EXPECT_NE(inbox.error().message().find("not a kiln store"), std::string::npos);
}

}  // namespace
}  // namespace kiln::forge
