// Runs on toolchain images end to end (docs/images.md): an image imported
// into the store is what the run's tools see, its digest is what run.start
// and the store record, a replay asks for that digest, and an image that is
// missing or in use is refused before anything happens.
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "base/digest.h"
#include "base/strings.h"
#include "tests/integration/controller_fixture.h"

namespace kiln::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kScript[] = R"(
replies:
  - tool_calls: [{name: shell, input: {command: "echo \"$(< /kiln-image-marker)\"; test -e /usr/bin/gcc || echo no-gcc"}}]
  - tool_calls: [{name: submit, input: {summary: "looked around"}}]
)";

class Images : public Controller {
 protected:
  void SetUp() override {
    Controller::SetUp();
    if (IsSkipped()) return;
    name_ = "tiny-" + std::to_string(::getpid());
  }
  void TearDown() override {
    if (!config_.empty()) {
      Kiln({"image", "rm", "--config", config_, name_});
      Kiln({"image", "gc", "--config", config_});
    }
    Controller::TearDown();
  }

  // An OCI layout holding one layer: bash and the libraries it loads, copied
  // from this host, and a marker file. Imported as name_.
  void ImportTiny() {
    std::string tree = root_ + "/tiny";
    fs::create_directories(tree + "/bin");
    fs::copy_file("/bin/bash", tree + "/bin/bash");
    Outcome ldd = kiln::testing::Run({"/usr/bin/ldd", "/bin/bash"});
    ASSERT_EQ(ldd.status, 0);
    for (const std::string& line : Split(ldd.out, '\n')) {
      size_t slash = line.find('/');
      if (slash == std::string::npos) continue;
      std::string lib = line.substr(slash, line.find(' ', slash) - slash);
      fs::create_directories(tree + fs::path(lib).parent_path().string());
      fs::copy_file(lib, tree + lib, fs::copy_options::overwrite_existing);
    }
    WriteAll(tree + "/kiln-image-marker", "the tiny image\n");
    std::string layout = root_ + "/layout";
    fs::create_directories(layout + "/blobs/sha256");
    Outcome tar = kiln::testing::Run(
        {"/usr/bin/tar", "--numeric-owner", "-C", tree, "-cf", root_ + "/layer.tar", "."});
    ASSERT_EQ(tar.status, 0) << tar.err;
    auto blob = [&](const std::string& data) {
      std::string digest = "sha256:" + Sha256Hex(data);
      WriteAll(layout + "/blobs/sha256/" + digest.substr(7), data);
      return json{{"digest", digest}, {"size", data.size()}};
    };
    json layer = blob(ReadAll(root_ + "/layer.tar"));
    layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar";
    json config = blob(json{{"architecture", "amd64"},
                            {"os", "linux"},
                            {"config", {{"Env", {"PATH=/bin", "KILN_IMAGE_TEST=1"}}}}}
                           .dump());
    json manifest =
        blob(json{{"schemaVersion", 2}, {"config", config}, {"layers", {layer}}}.dump());
    WriteAll(layout + "/index.json", json{{"schemaVersion", 2}, {"manifests", {manifest}}}.dump());
    Outcome imp = Kiln({"image", "import", "--config", config_, "--name", name_, layout});
    ASSERT_EQ(imp.status, 0) << imp.err;
    digest_ = Split(Trim(imp.out), ' ').back();
    ASSERT_TRUE(digest_.starts_with("sha256:")) << imp.out;
  }

  std::string name_, digest_;
};

TEST_F(Images, ARunOnAStoreImageSeesItAndRecordsItsDigest) {
  Setup(kScript);
  ImportTiny();
  Skill("edit", "image: " + name_ + "\n");
  Outcome o = RunRole("edit");
  ASSERT_EQ(o.status, 0) << o.err;
  json run = RunJson(o);
  EXPECT_EQ(run["image_digest"], digest_);
  std::string log = run["log_path"];
  ExpectLogVerifies(log);
  bool saw_tool = false;
  for (const json& r : Records(log)) {
    if (r["type"] == "run.start") {
      EXPECT_EQ(r["payload"]["image"]["name"], name_);
      EXPECT_EQ(r["payload"]["image"]["digest"], digest_);
    }
    if (r["type"] == "tool.result" && r["payload"]["tool"] == "shell") {
      saw_tool = true;
      std::string out = r["payload"]["output"];
      EXPECT_TRUE(Contains(out, "the tiny image")) << out;
      EXPECT_TRUE(Contains(out, "no-gcc")) << "the host's /usr is not in the image: " << out;
    }
  }
  EXPECT_TRUE(saw_tool);

  // The replay gets the recorded digest: identical while it is here...
  Outcome same = Kiln({"replay", "--config", config_, run["id"], "--json"});
  EXPECT_EQ(same.status, 0) << same.out << same.err;
  // ...and refused, naming it, once it is gone.
  ASSERT_EQ(Kiln({"image", "rm", "--config", config_, name_}).status, 0);
  ASSERT_EQ(Kiln({"image", "gc", "--config", config_}).status, 0);
  Outcome gone = Kiln({"replay", "--config", config_, run["id"], "--json"});
  EXPECT_EQ(gone.status, 2) << gone.out << gone.err;
  EXPECT_TRUE(Contains(gone.out + gone.err, digest_ + " is not on this host"))
      << gone.out << gone.err;
}

TEST_F(Images, AMissingImageIsRefusedBeforeAnythingIsQueued) {
  Setup(kScript);
  Skill("edit", "image: nowhere-" + name_ + "\n");
  Outcome o = RunRole("edit");
  EXPECT_EQ(o.status, 2) << o.out << o.err;
  EXPECT_TRUE(Contains(o.err, "'image': image 'nowhere-" + name_ + "' is not in the image store"))
      << o.err;
  Outcome submit = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                         "--role", "edit", "--task", "t"});
  EXPECT_EQ(submit.status, 2) << submit.out;
  EXPECT_TRUE(Contains(submit.err, "is not in the image store")) << submit.err;
  Outcome list = Kiln({"runs", "list", "--config", config_, "--json"});
  EXPECT_EQ(Trim(list.out), "[]") << "nothing was queued";
}

TEST_F(Images, AnImageAQueuedRunUsesCannotBeRemoved) {
  Setup(kScript);
  ImportTiny();
  // The request names the image (the skill names none).
  Outcome submit = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                         "--role", "edit", "--task", "t", "--image", name_});
  ASSERT_EQ(submit.status, 0) << submit.err;
  std::string id(Trim(submit.out));
  Outcome rm = Kiln({"image", "rm", "--config", config_, name_});
  EXPECT_EQ(rm.status, 1);
  EXPECT_TRUE(Contains(rm.err, "is used by a queued or running run")) << rm.err;
  Outcome ls = Kiln({"image", "ls", "--config", config_, "--json"});
  EXPECT_TRUE(Contains(ls.out, digest_)) << "still there";
  ASSERT_EQ(Kiln({"runs", "cancel", "--config", config_, id}).status, 0);
  EXPECT_EQ(Kiln({"image", "rm", "--config", config_, name_}).status, 0);
}

// kiln serve keeps its image's layer seals checked between runs (a walk at
// the first, then fanotify's reports): a file of the layer edited while it
// serves is seen, and the next run on the image is refused.
TEST_F(Images, ALayerEditedWhileServingRefusesTheNextRun) {
  Setup("default: {tool_calls: [{name: submit, input: {summary: done}}]}\n");
  ImportTiny();
  Outcome inspect = Kiln({"image", "inspect", "--config", config_, name_});
  ASSERT_EQ(inspect.status, 0) << inspect.err;
  const std::string layer = json::parse(inspect.out)["layers"][0]["path"];
  auto submit = [&] {
    Outcome o = Kiln({"runs", "submit", "--config", config_, "--repo", repo_, "--commit", "main",
                      "--role", "edit", "--task", "t", "--image", name_});
    EXPECT_EQ(o.status, 0) << o.err;
    return std::string(Trim(o.out));
  };
  auto ended = [](const json& j) { return j["status"] != "queued" && j["status"] != "running"; };
  const std::string serve_log = root_ + "/serve.log";
  Daemon daemon(config_, serve_log);
  for (int i = 0; i < 2; ++i) {
    json run = WaitFor(submit(), ended);
    EXPECT_EQ(run["status"], "succeeded") << run.dump();
    EXPECT_EQ(run["image_digest"], digest_);
  }
  WriteAll(layer + "/kiln-image-marker", "edited on the host\n");
  json refused = WaitFor(submit(), ended);
  EXPECT_EQ(refused["status"], "error") << refused.dump();
  EXPECT_TRUE(Contains(refused.value("error", ""), "has changed since it was stored"))
      << refused.dump();
  const std::string said = ReadAll(serve_log);
  if (Contains(said, "image seals: checked by a walk")) {
    std::printf("note: this host could not watch the seals; each run walked its layers\n");
  }
}

}  // namespace
}  // namespace kiln::testing
