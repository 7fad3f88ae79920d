// main() of every GoogleTest suite: GoogleTest's own, plus a record of each
// test's outcome, so that a test skipped on this host is never silent.
//
// Under CTest each test runs in a process of its own, and CTest shows the
// output of failures only. When KILN_TEST_RESULTS names a file, each test
// appends JSON lines to it ({"binary", "test", "outcome", "reason"}), one
// when it starts and one with its outcome;
// kiln-test-summary (test_summary.cc) reads them after the run and prints
// what ran, what was stopped and what was skipped here, and why.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

// The text of the GTEST_SKIP() message, or of the first failure.
std::string Reason(const ::testing::TestResult& r) {
  for (int i = 0; i < r.total_part_count(); ++i) {
    const auto& part = r.GetTestPartResult(i);
    if (part.skipped() || part.failed()) return part.message();
  }
  return "";
}

class ResultRecorder : public ::testing::EmptyTestEventListener {
 public:
  explicit ResultRecorder(std::string path) : path_(std::move(path)) {}

  // A test that crashes or times out never ends: its "started" line is what
  // the summary finds last.
  void OnTestStart(const ::testing::TestInfo& info) override { Record(info, "started", ""); }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    const ::testing::TestResult& r = *info.result();
    const char* outcome = r.Skipped() ? "skipped" : r.Failed() ? "failed" : "passed";
    Record(info, outcome, outcome[0] == 'p' ? "" : Reason(r));
  }

 private:
  void Record(const ::testing::TestInfo& info, const char* outcome, const std::string& reason) {
    nlohmann::json line = {{"binary", program_invocation_short_name},
                           {"test", std::string(info.test_suite_name()) + "." + info.name()},
                           {"outcome", outcome},
                           {"reason", reason}};
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    // One write of an O_APPEND file: lines of tests running in parallel do
    // not interleave.
    int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      std::fprintf(stderr, "kiln test main: cannot record the outcome in %s: %s\n", path_.c_str(),
                   std::strerror(errno));
    }
    if (fd >= 0) ::close(fd);
  }

  std::string path_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (const char* path = std::getenv("KILN_TEST_RESULTS"); path != nullptr && *path != '\0') {
    ::testing::UnitTest::GetInstance()->listeners().Append(new ResultRecorder(path));
  }
  return RUN_ALL_TESTS();
}
