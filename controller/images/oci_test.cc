#include "controller/images/oci.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "base/digest.h"
#include "controller/images/test_tar.h"
#include "tests/support/temp_dir.h"

namespace kiln::images {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using kiln::testing::Slurp;
using kiln::testing::Spit;
using kiln::testing::TempDir;
using testing::Member;
using testing::WriteTar;

class OciTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(tmp_ / "state");
    ASSERT_TRUE(s.ok());
    store_.emplace(std::move(*s));
  }

  // Writes a blob into layout dir; returns its descriptor.
  json Blob(const std::string& dir, const std::string& data, const std::string& type) {
    std::string digest = "sha256:" + Sha256Hex(data);
    fs::create_directories(dir + "/blobs/sha256");
    Spit(dir + "/blobs/sha256/" + digest.substr(7), data);
    return {{"mediaType", type}, {"digest", digest}, {"size", data.size()}};
  }

  // An OCI layout of layers (each a member list), gzip-compressed.
  std::string Layout(const std::string& name, const std::vector<std::vector<Member>>& layers,
                     const std::string& ref_name = "docker.io/library/tools:1.0") {
    std::string dir = tmp_ / name;
    json descs = json::array();
    for (size_t i = 0; i < layers.size(); ++i) {
      std::string tar = tmp_ / (name + std::to_string(i) + ".tgz");
      WriteTar(tar, layers[i], true);
      descs.push_back(Blob(dir, Slurp(tar), "application/vnd.oci.image.layer.v1.tar+gzip"));
    }
    json config = {
        {"architecture", "amd64"},
        {"os", "linux"},
        {"config", {{"Env", {"PATH=/usr/bin", "LANG=C.UTF-8"}}, {"WorkingDir", "/src"}}}};
    json manifest = {
        {"schemaVersion", 2},
        {"config", Blob(dir, config.dump(), "application/vnd.oci.image.config.v1+json")},
        {"layers", descs}};
    json m = Blob(dir, manifest.dump(), "application/vnd.oci.image.manifest.v1+json");
    m["annotations"] = {{"io.containerd.image.name", ref_name}};
    Spit(dir + "/index.json", json{{"schemaVersion", 2}, {"manifests", {m}}}.dump());
    Spit(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    return dir;
  }

  TempDir tmp_;
  std::optional<Store> store_;
};

const std::vector<std::vector<Member>> kTwoLayers = {
    {{"etc/os-release", 'f', "ID=tools\n"}, {"usr/bin/old", 'f', "old", 0755}},
    {{"usr/bin/.wh.old", 'f'}, {"usr/bin/new", 'f', "new", 0755}},
};

TEST_F(OciTest, ImportsAnOciLayout) {
  auto imp = Import(*store_, Layout("oci", kTwoLayers), "");
  ASSERT_TRUE(imp.ok()) << imp.error().message();
  EXPECT_EQ(imp->name, "tools") << "named from its reference";
  EXPECT_EQ(imp->layers.size(), 2u);
  auto img = store_->Resolve("tools");
  ASSERT_TRUE(img.ok()) << img.error().message();
  EXPECT_EQ(img->manifest["config"]["env"][1], "LANG=C.UTF-8");
  EXPECT_EQ(img->manifest["config"]["workdir"], "/src");
  EXPECT_EQ(Slurp(img->layer_dirs[1] + "/usr/bin/new"), "new");
  if (::geteuid() == 0) {
    auto files = store_->Files(img->digest);
    ASSERT_TRUE(files.ok());
    EXPECT_FALSE(files->contains("usr/bin/old")) << "the whiteout hides the lower file";
    EXPECT_TRUE(files->contains("usr/bin/new"));
  }
}

TEST_F(OciTest, ImportsATarOfALayoutAndADockerSave) {
  std::string dir = Layout("oci", kTwoLayers);
  std::vector<Member> members;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    members.push_back({fs::relative(e.path(), dir).string(), 'f', Slurp(e.path())});
  }
  WriteTar(tmp_ / "oci.tar", members);
  auto from_tar = Import(*store_, tmp_ / "oci.tar", "fromtar");
  ASSERT_TRUE(from_tar.ok()) << from_tar.error().message();

  // docker save (before Docker 25): manifest.json, <id>/layer.tar.
  std::vector<Member> docker;
  std::vector<std::string> layer_paths;
  for (size_t i = 0; i < kTwoLayers.size(); ++i) {
    std::string tar = tmp_ / ("d" + std::to_string(i) + ".tar");
    WriteTar(tar, kTwoLayers[i]);
    layer_paths.push_back("layer" + std::to_string(i) + "/layer.tar");
    docker.push_back({layer_paths.back(), 'f', Slurp(tar)});
  }
  docker.push_back({"cfg.json", 'f', json{{"config", {{"User", "1000"}}}}.dump()});
  docker.push_back({"manifest.json", 'f',
                    json::array({{{"Config", "cfg.json"},
                                  {"RepoTags", {"registry.example/team/Builder:latest"}},
                                  {"Layers", layer_paths}}})
                        .dump()});
  WriteTar(tmp_ / "docker.tar", docker);
  auto d = Import(*store_, tmp_ / "docker.tar", "");
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(d->name, "builder");
  EXPECT_EQ(d->layers, from_tar->layers) << "the same layers, whatever the container format";
  auto img = store_->Resolve("builder");
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->manifest["config"]["user"], "1000");
}

TEST_F(OciTest, ExportThenImportGivesTheSameLayers) {
  auto imp = Import(*store_, Layout("oci", kTwoLayers), "tools");
  ASSERT_TRUE(imp.ok());
  auto manifest = Export(*store_, "tools", tmp_ / "out");
  ASSERT_TRUE(manifest.ok()) << manifest.error().message();
  json index = json::parse(Slurp(tmp_ / "out/index.json"));
  EXPECT_EQ(index["manifests"][0]["digest"], *manifest);
  EXPECT_EQ(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "tools");
  for (const std::string& layer : imp->layers) {
    std::string blob = tmp_ / ("out/blobs/sha256/" + layer.substr(7));
    ASSERT_TRUE(fs::exists(blob)) << "the layer blob is the canonical tar, named by its digest";
    EXPECT_EQ("sha256:" + Sha256Hex(Slurp(blob)), layer);
  }
  auto again = Import(*store_, tmp_ / "out", "again");
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->layers, imp->layers);
  auto not_empty = Export(*store_, "tools", tmp_ / "out");
  ASSERT_FALSE(not_empty.ok());
  EXPECT_NE(not_empty.error().message().find("is not empty"), std::string::npos);
}

TEST_F(OciTest, ABlobThatDoesNotMatchItsDigestIsRefused) {
  std::string dir = Layout("oci", kTwoLayers);
  json index = json::parse(Slurp(dir + "/index.json"));
  std::string m = index["manifests"][0]["digest"];
  json manifest = json::parse(Slurp(dir + "/blobs/sha256/" + m.substr(7)));
  std::string layer = manifest["layers"][1]["digest"];
  std::string path = dir + "/blobs/sha256/" + layer.substr(7);
  WriteTar(path, {{"usr/bin/new", 'f', "trojan", 0755}}, true);
  auto imp = Import(*store_, dir, "tools");
  ASSERT_FALSE(imp.ok());
  EXPECT_NE(imp.error().message().find("does not match its digest"), std::string::npos)
      << imp.error().message();
  EXPECT_FALSE(store_->Resolve("tools").ok());
  auto gc = store_->Gc();  // the layer unpacked before the bad one is all that was added
  ASSERT_TRUE(gc.ok());
  EXPECT_LE(gc->layers_removed.size(), 1u);
}

TEST_F(OciTest, PathsOutOfTheArchiveAreRefused) {
  Spit(tmp_ / "host-file.tar", "not yours");
  for (const std::string& bad :
       {std::string("../host-file.tar"), tmp_ / "host-file.tar", std::string("link/x.tar")}) {
    std::string dir = tmp_ / "docker";
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::create_directory_symlink(tmp_.path(), dir + "/link");
    Spit(dir + "/cfg.json", "{}");
    Spit(dir + "/manifest.json",
         json::array({{{"Config", "cfg.json"}, {"Layers", {bad}}, {"RepoTags", {"x:1"}}}}).dump());
    auto imp = Import(*store_, dir, "");
    ASSERT_FALSE(imp.ok()) << bad;
    EXPECT_TRUE(imp.error().message().find("out of the image") != std::string::npos ||
                imp.error().message().find("not a path inside") != std::string::npos)
        << imp.error().message();
  }
  // An OCI descriptor whose digest is a path.
  std::string dir = Layout("oci", kTwoLayers);
  json index = json::parse(Slurp(dir + "/index.json"));
  index["manifests"][0]["digest"] = "sha256:../../../host-file.tar";
  Spit(dir + "/index.json", index.dump());
  auto imp = Import(*store_, dir, "");
  ASSERT_FALSE(imp.ok());
  EXPECT_NE(imp.error().message().find("is not a sha256 digest"), std::string::npos);
}

TEST_F(OciTest, WhatIsNotAnImageIsAClearError) {
  fs::create_directories(tmp_ / "empty");
  auto empty = Import(*store_, tmp_ / "empty", "x");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message().find("neither an OCI image layout"), std::string::npos);
  Spit(tmp_ / "junk.tar", std::string(3000, 'j'));
  auto junk = Import(*store_, tmp_ / "junk.tar", "x");
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().message().find("junk.tar"), std::string::npos);
  EXPECT_TRUE(fs::is_empty(store_->root() + "/tmp")) << "no half-imported leftovers";
  auto unnamed = Import(*store_, Layout("oci", kTwoLayers, "!!!"), "");
  ASSERT_FALSE(unnamed.ok());
  EXPECT_NE(unnamed.error().message().find("give --name"), std::string::npos);
}

}  // namespace
}  // namespace kiln::images
