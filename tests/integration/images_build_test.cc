// The shipped recipes built for real with mmdebstrap from Debian's archive
// (label slow-images; scripts/test-images.sh runs it, and CI): base and
// python, their digests reproducible, the sample repository's tests run
// inside the python image, and apt's own message for a package that does
// not exist. Each build takes about a minute.
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "base/strings.h"
#include "tests/integration/controller_fixture.h"

namespace kiln::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class ImageBuild : public Controller {
 protected:
  void SetUp() override {
    Controller::SetUp();
    if (IsSkipped()) return;
    if (::geteuid() != 0) GTEST_SKIP() << "mmdebstrap's root mode needs root";
    if (::access("/usr/bin/mmdebstrap", X_OK) != 0) {
      GTEST_SKIP() << "mmdebstrap is not installed (scripts/install-deps.sh installs it)";
    }
    Setup("replies: []\n", "images_dir: " + std::string(KILN_SOURCE_DIR) + "/images\n");
  }

  // `kiln image build NAMES...`: name -> digest.
  std::map<std::string, std::string> Build(std::vector<std::string> args, Outcome* out = nullptr) {
    args.insert(args.begin(), {KilnBinary(), "image", "build", "--config", config_});
    // A build is a minute here and over two on a slow mirror (CI's): the
    // harness's default of 120 s per command is too short for two.
    RunOptions options;
    options.timeout_seconds = 600;
    Outcome o = kiln::testing::Run(args, options);
    EXPECT_EQ(o.status, 0) << o.err;
    std::map<std::string, std::string> digests;
    for (const std::string& line : Split(o.out, '\n')) {
      std::vector<std::string> w = Split(line, ' ');
      if (w.size() >= 2) digests[w[0]] = w[1];
    }
    if (out) *out = o;
    return digests;
  }

  json Inspect(const std::string& name) {
    Outcome o = Kiln({"image", "inspect", "--config", config_, name});
    EXPECT_EQ(o.status, 0) << o.err;
    return json::parse(o.out, nullptr, false);
  }
};

TEST_F(ImageBuild, BaseAndPythonBuildReproduciblyAndRunTheSampleTests) {
  auto first = Build({"base", "python"});
  ASSERT_TRUE(first["base"].starts_with("sha256:"));
  ASSERT_TRUE(first["python"].starts_with("sha256:"));

  // Nothing changed: found by its key, not built.
  Outcome again;
  EXPECT_EQ(Build({"base"}, &again)["base"], first["base"]);
  EXPECT_TRUE(Contains(again.out, "(up to date)")) << again.out;
  // Built again from scratch: the same digests (python's layer is made by
  // subtracting base from a whole tree: that too gives the same bytes).
  Outcome forced;
  auto second = Build({"base", "python", "--force"}, &forced);
  EXPECT_EQ(second["base"], first["base"]);
  EXPECT_EQ(second["python"], first["python"]);
  EXPECT_FALSE(Contains(forced.out, "(up to date)"));

  // python is base's layer and one of its own.
  json base = Inspect("base");
  json python = Inspect("python");
  ASSERT_EQ(python["layers"].size(), 2u);
  EXPECT_EQ(python["layers"][0]["digest"], base["layers"][0]["digest"]);
  EXPECT_LT(python["layers"][1]["bytes"].get<uint64_t>(), base["bytes"].get<uint64_t>());
  bool has_python3 = false;
  for (const json& p : python["packages"]) {
    if (p["name"] == "python3") has_python3 = !p["version"].get<std::string>().empty();
  }
  EXPECT_TRUE(has_python3) << python["packages"].dump();
  EXPECT_EQ(Kiln({"image", "verify", "--config", config_, "python"}).status, 0);

  // The sample repository's tests, inside the image: they run, and the one
  // its bug breaks fails.
  std::string work = root_ + "/sample";
  fs::copy(std::string(KILN_SOURCE_DIR) + "/demo/sample", work);
  ::chown(work.c_str(), 1000, 1000);
  std::vector<std::string> args = {
      "sandbox", "run", "--state-dir", TestStateDir(), "--cgroup-parent", TestCgroupParent()};
  for (const json& l : python["layers"]) args.insert(args.end(), {"--layer", l["path"]});
  args.insert(args.end(),
              {"--workspace", work, "--tmpfs", "/tmp", "--", "python3", "-m", "unittest", "-v"});
  Outcome tests = Kiln(args);
  EXPECT_EQ(tests.status, 1) << tests.out << tests.err;
  EXPECT_TRUE(Contains(tests.err, "FAIL: test_median_of_an_even_number_of_values")) << tests.err;
  EXPECT_TRUE(Contains(tests.err, "Ran 4 tests")) << tests.err;
  EXPECT_TRUE(Contains(tests.err, "FAILED (failures=1)")) << tests.err;
}

TEST_F(ImageBuild, APackageAptDoesNotKnowIsAptsMessageAtItsLine) {
  std::string dir = root_ + "/recipes";
  fs::create_directories(dir);
  WriteAll(dir + "/bad.yaml", "suite: bookworm\npackages: [bash, kiln-no-such-package]\n");
  // mmdebstrap runs before apt refuses: the builds' time limit, not 120 s.
  RunOptions options;
  options.timeout_seconds = 600;
  Outcome o = kiln::testing::Run(
      {KilnBinary(), "image", "build", "--config", config_, "--recipes", dir, "bad"}, options);
  EXPECT_EQ(o.status, 2) << o.err;
  EXPECT_TRUE(Contains(o.err, dir + "/bad.yaml:2: 'packages': apt: E: Unable to locate package "
                                    "kiln-no-such-package"))
      << o.err;
  EXPECT_NE(Kiln({"image", "inspect", "--config", config_, "bad"}).status, 0);
}

}  // namespace
}  // namespace kiln::testing
