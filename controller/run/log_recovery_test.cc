#include "controller/run/log_recovery.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "controller/sessionlog/testutil.h"
#include "controller/sessionlog/verify.h"
#include "controller/sessionlog/writer.h"

namespace kiln::log_recovery {
namespace {

using sessionlog::testing::Lines;
using sessionlog::testing::NewSigner;
using sessionlog::testing::Slurp;
using sessionlog::testing::TempDir;

std::unique_ptr<sessionlog::Writer> Started(const std::string& path,
                                            std::shared_ptr<const sessionlog::Signer> signer) {
  sessionlog::WriterOptions o;
  o.durability = sessionlog::Durability::kNone;
  auto w = sessionlog::Writer::Create(path, "r1", std::move(signer), o);
  EXPECT_TRUE(w.ok()) << w.error().message();
  EXPECT_TRUE((*w)->Append("run.start", {{"role", "test"}}).ok());
  return std::move(*w);
}

TEST(LogSweeper, ClosesWhatAStoppedWriterLeftAndOnlyThat) {
  TempDir dir;
  auto signer = NewSigner();
  std::string stopped = dir / "stopped.log", held = dir / "held.log", done = dir / "done.log";
  Started(stopped, signer).reset();  // stops without run.end, as a full disk leaves it
  auto holder = Started(held, signer);
  auto finished = Started(done, signer);
  ASSERT_TRUE(finished->Close({{"status", "succeeded"}}).ok());
  std::string done_before = Slurp(done);

  Sweeper sweeper(dir.path(), signer, /*settle_seconds=*/0);
  EXPECT_EQ(sweeper.Sweep(), 1u);
  EXPECT_TRUE(EndsWithRunEnd(stopped));
  auto lines = Lines(Slurp(stopped));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(nlohmann::json::parse(lines[1])["type"], "recovery");
  auto end = nlohmann::json::parse(lines[2]);
  EXPECT_EQ(end["payload"]["status"], "error");
  sessionlog::VerifyOptions vo;
  vo.trusted_keys = {signer->public_key()};
  auto report = sessionlog::Verify(stopped, vo);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << "the recovered log verifies";

  EXPECT_FALSE(EndsWithRunEnd(held)) << "a log its writer holds is left alone";
  EXPECT_TRUE(holder->Append("steer", {{"m", "still writing"}}).ok());
  EXPECT_EQ(Slurp(done), done_before);
  EXPECT_EQ(sweeper.Sweep(), 0u) << "nothing is closed twice";
}

// A new process (each `kiln run`) trusts what earlier sweeps settled while
// a log's size and modification time stay, and reads it again once they move.
TEST(LogSweeper, WhatASweepSettledIsNotReadAgainByTheNext) {
  TempDir dir;
  auto signer = NewSigner();
  std::string done = dir / "done.log", stopped = dir / "stopped.log";
  auto finished = Started(done, signer);
  ASSERT_TRUE(finished->Close({{"status", "succeeded"}}).ok());
  {
    Sweeper first(dir.path(), signer, /*settle_seconds=*/0);
    EXPECT_EQ(first.Sweep(), 0u);
  }
  std::string settled = Slurp(dir / ".settled");
  EXPECT_NE(settled.find(" done.log\n"), std::string::npos) << settled;

  // A log without run.end, which the index says is settled at its present
  // size and time (as if an earlier sweep had found it beyond recovery).
  Started(stopped, signer).reset();
  struct stat st {};
  ASSERT_EQ(::stat(stopped.c_str(), &st), 0);
  std::ofstream(dir / ".settled", std::ios::app)
      << st.st_size << " " << st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec
      << " stopped.log\n";
  Sweeper second(dir.path(), signer, /*settle_seconds=*/0);
  EXPECT_EQ(second.Sweep(), 0u) << "the index was not used";
  EXPECT_FALSE(EndsWithRunEnd(stopped));

  // Once the file moves, it is read and closed.
  timespec times[2] = {{0, UTIME_OMIT}, {st.st_mtim.tv_sec - 60, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, stopped.c_str(), times, 0), 0);
  Sweeper third(dir.path(), signer, /*settle_seconds=*/0);
  EXPECT_EQ(third.Sweep(), 1u);
  EXPECT_TRUE(EndsWithRunEnd(stopped));

  // A damaged index is no index: every log is read.
  std::ofstream(dir / ".settled", std::ios::trunc) << "garbage\n12 x\n";
  Sweeper fourth(dir.path(), signer, /*settle_seconds=*/0);
  EXPECT_EQ(fourth.Sweep(), 0u);
  settled = Slurp(dir / ".settled");
  EXPECT_NE(settled.find(" done.log\n"), std::string::npos) << settled;
  EXPECT_NE(settled.find(" stopped.log\n"), std::string::npos) << settled;
}

TEST(LogSweeper, ALongRunEndIsStillFoundComplete) {
  TempDir dir;
  auto signer = NewSigner();
  auto w = Started(dir / "long.log", signer);
  ASSERT_TRUE(w->Close({{"status", "error"}, {"error", std::string(200 << 10, 'e')}}).ok());
  EXPECT_TRUE(EndsWithRunEnd(dir / "long.log"));
  std::string before = Slurp(dir / "long.log");
  EXPECT_EQ(Sweeper(dir.path(), signer, 0).Sweep(), 0u);
  EXPECT_EQ(Slurp(dir / "long.log"), before);
}

TEST(LogSweeper, AFreshLogIsLeftForTheNextSweep) {
  TempDir dir;
  auto signer = NewSigner();
  Started(dir / "new.log", signer).reset();
  EXPECT_EQ(Sweeper(dir.path(), signer, /*settle_seconds=*/3600).Sweep(), 0u);
  EXPECT_FALSE(EndsWithRunEnd(dir / "new.log"));
}

}  // namespace
}  // namespace kiln::log_recovery
