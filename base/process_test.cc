#include "base/process.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include <string>

namespace kiln {
namespace {

const std::vector<std::string> kEnv = {"PATH=/usr/bin:/bin"};

// A feed of total bytes in pieces of piece bytes.
Feed Pieces(size_t total, size_t piece, size_t* fed) {
  return [=]() -> Result<std::string> {
    const size_t n = std::min(piece, total - *fed);
    *fed += n;
    return std::string(n, 'x');
  };
}

// 32 MiB through cat, far more than a pipe holds either way: all of it
// comes back, in order, a piece at a time, with neither side held whole.
TEST(RunPiped, LargeInputAndOutputFlowThroughWithoutDeadlock) {
  size_t fed = 0, got = 0, largest = 0;
  bool in_order = true;
  auto r = RunPiped(
      "/bin/cat", {}, kEnv, Pieces(32 << 20, 1 << 20, &fed),
      [&](std::string_view piece) -> Status {
        in_order = in_order && piece.find_first_not_of('x') == std::string_view::npos;
        got += piece.size();
        largest = std::max(largest, piece.size());
        return Ok();
      },
      1 << 10);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 0);
  EXPECT_EQ(fed, size_t{32} << 20);
  EXPECT_EQ(got, size_t{32} << 20);
  EXPECT_TRUE(in_order);
  EXPECT_LE(largest, size_t{64} << 10);
}

// A program that stops reading early: the rest of the input is dropped, its
// output still comes, its exit status is kept.
TEST(RunPiped, AProgramThatStopsReadingEndsWithItsStatus) {
  size_t fed = 0;
  std::string out;
  auto r = RunPiped(
      "/bin/sh", {"-c", "head -c 5; echo; exit 3"}, kEnv, Pieces(8 << 20, 64 << 10, &fed),
      [&](std::string_view piece) -> Status {
        out += piece;
        return Ok();
      },
      1 << 10);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->status, 3);
  EXPECT_EQ(out, "xxxxx\n");
}

// A feed or a sink that fails (a client gone) kills the program and is the
// result; so is stderr past its limit.
TEST(RunPiped, AFailingFeedSinkOrStderrKillsTheProgram) {
  auto bad_feed = RunPiped(
      "/bin/cat", {}, kEnv, []() -> Result<std::string> { return Error::Invalid("client left"); },
      [](std::string_view) { return Ok(); }, 1 << 10);
  ASSERT_FALSE(bad_feed.ok());
  EXPECT_EQ(bad_feed.error().message(), "client left");

  auto bad_sink = RunPiped(
      "/bin/sh", {"-c", "yes"}, kEnv, [] { return Result<std::string>(std::string()); },
      [](std::string_view) -> Status { return Error::Invalid("nobody reads"); }, 1 << 10);
  ASSERT_FALSE(bad_sink.ok());
  EXPECT_EQ(bad_sink.error().message(), "nobody reads");

  auto noisy = RunPiped(
      "/bin/sh", {"-c", "yes >&2"}, kEnv, [] { return Result<std::string>(std::string()); },
      [](std::string_view) { return Ok(); }, 1 << 10);
  ASSERT_FALSE(noisy.ok());
  EXPECT_NE(noisy.error().message().find("wrote more than 1024 bytes to stderr"), std::string::npos)
      << noisy.error().message();

  auto missing = RunPiped(
      "/nonexistent/program", {}, kEnv, [] { return Result<std::string>(std::string()); },
      [](std::string_view) { return Ok(); }, 1 << 10);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Error::Code::kUnsupported);
}

// What the program started goes with it: its process group is killed.
TEST(RunPiped, AProgramStoppedTakesWhatItStartedWithIt) {
  auto r = RunPiped(
      "/bin/sh", {"-c", "sleep 31.25 & echo started"}, kEnv,
      [] { return Result<std::string>(std::string()); },
      [](std::string_view) -> Status { return Error::Invalid("enough"); }, 1 << 10);
  ASSERT_FALSE(r.ok());
  bool gone = false;
  for (int i = 0; i < 50 && !gone; ++i) {
    gone = std::system("pgrep -f 'sleep 31[.]25' >/dev/null") != 0;
    if (!gone) ::usleep(20'000);
  }
  EXPECT_TRUE(gone) << "the program's child outlived it";
}

}  // namespace
}  // namespace kiln
