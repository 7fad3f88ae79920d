// The fleet's log API without a network: who may ask (signed requests
// checked against the store's hosts), and what may be asked for.
#include "controller/fleet/logs.h"

#include <gtest/gtest.h>

#include <climits>

#include "base/fd.h"
#include "controller/store/testutil.h"

namespace kiln::fleet {
namespace {

using store::testing::TempDir;

class FleetLogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenSqlite(dir_ / "kiln.db");
    ASSERT_TRUE(s.ok()) << s.error().message();
    store_ = std::move(*s);
    auto a = sessionlog::Signer::Generate();
    auto other = sessionlog::Signer::Generate();
    ASSERT_TRUE(a.ok() && other.ok());
    a_ = std::move(*a);
    other_ = std::move(*other);
    store::Host host{"runner-a/10:20",      4, "0.1.0", 1, 0, "http://runner-a:9465",
                     a_->public_key().Pem()};
    ASSERT_TRUE(store_->Beat(host, 1).ok());
    std::filesystem::create_directories(dir_ / "logs/blobs");
    ASSERT_TRUE(WriteNewFile(dir_ / "logs/r1.log", "the log\n", 0600, Sync::kNoFsync).ok());
    ASSERT_TRUE(WriteNewFile(dir_ / "secret", "not a log\n", 0600, Sync::kNoFsync).ok());
  }

  // A request from host to runner-b (this test's host), signed by `by`.
  Served Get(const sessionlog::Signer& by, const std::string& host, const std::string& path,
             int64_t signed_at, const std::string& to = "runner-b") {
    auto auth = SignRequest(by, host, to, "GET", path, signed_at);
    EXPECT_TRUE(auth.ok());
    return Serve(*store_, "runner-b", dir_ / "logs", "GET", path, auth.ok() ? *auth : "", kNow);
  }

  static constexpr int64_t kNow = 1'800'000'000'000;
  TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<sessionlog::Signer> a_, other_;
};

TEST_F(FleetLogsTest, AHostOfTheStoreGetsALog) {
  Served s = Get(*a_, "runner-a", "/api/v1/fleet/logs/r1.log", kNow);
  EXPECT_EQ(s.status, 200) << s.body;
  EXPECT_EQ(s.body, "the log\n");
  // `kiln` commands on that host sign with the same key: any of its
  // records will do, whatever the process.
  auto who = CheckRequest(*store_, "runner-b",
                          *SignRequest(*a_, "runner-a", "runner-b", "GET", "/p", kNow), "GET", "/p",
                          kNow + kRequestWindowMs);
  ASSERT_TRUE(who.ok()) << who.error().message();
  EXPECT_EQ(*who, "runner-a");
}

TEST_F(FleetLogsTest, OthersAreRefusedWithoutBeingTold) {
  const std::string refused = "not a request signed by a host of this store\n";
  const std::string log = "/api/v1/fleet/logs/r1.log";
  // Signed by a key the store does not hold for the host, or by a host the
  // store does not know: the same answer.
  Served forged = Get(*other_, "runner-a", log, kNow);
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(forged.body, refused);
  EXPECT_EQ(Get(*other_, "runner-z", log, kNow).body, refused);
  // A request of the past, or replayed later; one from a time so far off
  // that subtracting it would overflow.
  EXPECT_EQ(Get(*a_, "runner-a", log, kNow - kRequestWindowMs - 1).status, 401);
  EXPECT_EQ(Get(*a_, "runner-a", log, INT64_MIN + 5).status, 401);
  // Made for another host of the fleet, and replayed to this one.
  EXPECT_EQ(Get(*a_, "runner-a", log, kNow, "runner-c").status, 401);
  // Signed for another path.
  auto auth = SignRequest(*a_, "runner-a", "runner-b", "GET", log, kNow);
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(
      Serve(*store_, "runner-b", dir_ / "logs", "GET", "/api/v1/fleet/logs/r2.log", *auth, kNow)
          .status,
      401);
  for (const std::string bad :
       {"", "Bearer tok", "KilnHost runner-a", "KilnHost a b c",
        "KilnHost runner-a 1800000000000 zz", "KilnHost runner-a -9223372036854775808 00"}) {
    Served s = Serve(*store_, "runner-b", dir_ / "logs", "GET", log, bad, kNow);
    EXPECT_EQ(s.status, 401) << bad;
    EXPECT_EQ(s.body, refused) << bad;
  }
}

TEST_F(FleetLogsTest, OnlyLogsAndBlobsOfTheLogDirectoryAreServed) {
  for (const std::string path :
       {"/api/v1/fleet/logs/../secret", "/api/v1/fleet/logs/..%2Fsecret",
        "/api/v1/fleet/logs/.hidden.log", "/api/v1/fleet/logs/r1.txt",
        "/api/v1/fleet/logs/missing.log", "/api/v1/fleet/blobs/../../secret",
        "/api/v1/fleet/blobs/ABCDEF", "/api/v1/fleet/other"}) {
    Served s = Get(*a_, "runner-a", path, kNow);
    EXPECT_EQ(s.status, 404) << path;
    EXPECT_EQ(s.body, "no such log or blob\n") << path;
  }
  auto auth = SignRequest(*a_, "runner-a", "runner-b", "PUT", "/api/v1/fleet/logs/r1.log", kNow);
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(
      Serve(*store_, "runner-b", dir_ / "logs", "PUT", "/api/v1/fleet/logs/r1.log", *auth, kNow)
          .status,
      404);
}

}  // namespace
}  // namespace kiln::fleet
