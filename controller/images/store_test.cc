#include "controller/images/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "base/digest.h"
#include "controller/images/test_tar.h"
#include "tests/support/temp_dir.h"

namespace kiln::images {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using kiln::testing::TempDir;
using testing::Member;
using testing::WriteTar;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(tmp_.path());
    ASSERT_TRUE(s.ok()) << s.error().message();
    store_.emplace(std::move(*s));
  }

  std::string AddLayer(const std::vector<Member>& members) {
    std::string tar = tmp_ / ("l" + std::to_string(n_++) + ".tar");
    WriteTar(tar, members);
    auto layer = store_->AddLayer(tar, tar, {}, nullptr);
    EXPECT_TRUE(layer.ok()) << layer.error().message();
    return layer.ok() ? layer->digest : "";
  }

  std::string AddImage(const std::string& name, const std::vector<std::string>& layers) {
    auto digest = store_->AddImage(layers, {{"env", {"A=1"}}}, {{"test", name}}, name);
    EXPECT_TRUE(digest.ok()) << digest.error().message();
    return digest.ok() ? *digest : "";
  }

  TempDir tmp_;
  std::optional<Store> store_;
  int n_ = 0;
};

TEST_F(StoreTest, LayersAreSharedBetweenImages) {
  std::string base = AddLayer({{"etc/os-release", 'f', "ID=kiln\n"}});
  std::string again = AddLayer({{"etc/os-release", 'f', "ID=kiln\n"}});
  EXPECT_EQ(base, again);
  std::string top = AddLayer({{"usr/bin/tool", 'f', "tool", 0755}});
  std::string a = AddImage("a", {base});
  std::string b = AddImage("b", {base, top});
  EXPECT_NE(a, b);
  size_t trees = 0;
  for (const auto& e : fs::directory_iterator(store_->root() + "/layers")) {
    trees += e.is_directory();
  }
  EXPECT_EQ(trees, 2u) << "the shared layer is stored once";

  auto img = store_->Resolve("b");
  ASSERT_TRUE(img.ok()) << img.error().message();
  EXPECT_EQ(img->digest, b);
  ASSERT_EQ(img->layer_dirs.size(), 2u);
  EXPECT_EQ(img->layer_dirs[0], store_->LayerDir(base));
  EXPECT_EQ(img->manifest["config"]["env"][0], "A=1");
  auto by_digest = store_->Resolve(b);
  ASSERT_TRUE(by_digest.ok());
  EXPECT_EQ(by_digest->layer_dirs, img->layer_dirs);

  auto list = store_->List();
  ASSERT_EQ(list.size(), 2u);
  for (const Summary& s : list) EXPECT_EQ(s.names.size(), 1u);
}

TEST_F(StoreTest, SameLayersAndConfigGiveTheSameDigest) {
  std::string l = AddLayer({{"a", 'f', "a"}});
  EXPECT_EQ(AddImage("x", {l}), AddImage("x", {l}));
}

TEST_F(StoreTest, UnknownAndMalformedRefsAreClearErrors) {
  auto missing = store_->Resolve("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("image 'nope' is not in the image store"),
            std::string::npos);
  EXPECT_NE(missing.error().message().find("kiln image build nope"), std::string::npos);
  auto bad = store_->Resolve("Bad/Name");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("expected [a-z0-9]"), std::string::npos);
  auto short_digest = store_->Resolve("sha256:abc");
  ASSERT_FALSE(short_digest.ok());
  EXPECT_NE(short_digest.error().message().find("not a sha256 digest"), std::string::npos);
  auto absent = store_->Resolve("sha256:" + std::string(64, 'a'));
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code(), Error::Code::kNotFound);
}

TEST_F(StoreTest, AnEditedLayerIsRefusedAtUseAndVerifyNamesTheFile) {
  std::string l = AddLayer({{"etc/os-release", 'f', "ID=kiln\n"}, {"etc/hosts", 'f', "h\n"}});
  AddImage("img", {l});
  ASSERT_TRUE(store_->Resolve("img").ok());
  auto clean = store_->Verify("img");
  ASSERT_TRUE(clean.ok()) << clean.error().message();
  EXPECT_TRUE(clean->empty());

  std::string file = store_->LayerDir(l) + "/etc/os-release";
  kiln::testing::Spit(file, "ID=evil\n");
  auto used = store_->Resolve("img");
  ASSERT_FALSE(used.ok());
  EXPECT_EQ(used.error().code(), Error::Code::kCorruption);
  EXPECT_NE(used.error().message().find("has changed since it was stored"), std::string::npos)
      << used.error().message();
  auto findings = store_->Verify("img");
  ASSERT_TRUE(findings.ok());
  ASSERT_EQ(findings->size(), 1u);
  EXPECT_EQ((*findings)[0].layer, l);
  EXPECT_TRUE((*findings)[0].message.starts_with("'etc/os-release': "));
  EXPECT_NE((*findings)[0].message.find("sha256 is \"" + Sha256Hex("ID=evil\n")), std::string::npos)
      << (*findings)[0].message;

  fs::remove(store_->LayerDir(l) + "/etc/hosts");
  findings = store_->Verify("img");
  ASSERT_TRUE(findings.ok());
  std::vector<std::string> messages;
  for (const Finding& f : *findings) messages.push_back(f.message);
  EXPECT_NE(std::find(messages.begin(), messages.end(), "'etc/hosts' is missing"), messages.end());
}

TEST_F(StoreTest, RemoveAndGcDropOnlyWhatNothingUses) {
  std::string shared = AddLayer({{"a", 'f', "a"}});
  std::string own = AddLayer({{"b", 'f', "b"}});
  std::string keep = AddImage("keep", {shared});
  std::string gone = AddImage("gone", {shared, own});
  ASSERT_TRUE(store_->Tag("alias", gone).ok());
  auto removed = store_->Remove("gone");
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(store_->Resolve("alias").ok()) << "another name still points at it";
  ASSERT_TRUE(store_->Remove("alias").ok());
  EXPECT_FALSE(store_->Resolve(gone).ok());
  fs::create_directory(store_->root() + "/tmp/layer-leftover");

  auto gc = store_->Gc();
  ASSERT_TRUE(gc.ok()) << gc.error().message();
  EXPECT_EQ(gc->layers_removed, std::vector<std::string>{own});
  EXPECT_EQ(gc->bytes_freed, 1u);
  EXPECT_FALSE(fs::exists(store_->LayerDir(own)));
  EXPECT_FALSE(fs::exists(store_->LayerDir(own) + ".json"));
  EXPECT_FALSE(fs::exists(store_->LayerDir(own) + ".files.json"));
  EXPECT_TRUE(fs::exists(store_->LayerDir(shared) + ".files.json"));
  EXPECT_TRUE(fs::is_empty(store_->root() + "/tmp"));
  auto kept = store_->Resolve("keep");
  ASSERT_TRUE(kept.ok()) << kept.error().message();
  EXPECT_EQ(kept->digest, keep);
  auto again = store_->Gc();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->layers_removed.empty());
}

TEST_F(StoreTest, FilesMergesTheLayersAsTheOverlayWould) {
  if (::geteuid() != 0) GTEST_SKIP() << "whiteouts need root";
  std::string base = AddLayer({{"etc/a", 'f', "a"}, {"etc/b", 'f', "b"}, {"opt/x", 'f', "x"}});
  std::string top = AddLayer({{"etc/.wh.a", 'f'}, {"opt/.wh..wh..opq", 'f'}, {"opt/y", 'f', "y"}});
  std::string img = AddImage("img", {base, top});
  auto files = store_->Files(img);
  ASSERT_TRUE(files.ok());
  std::vector<std::string> paths;
  for (const auto& [p, e] : *files) paths.push_back(p);
  EXPECT_EQ(paths, (std::vector<std::string>{"etc", "etc/b", "opt", "opt/y"}));
}

}  // namespace
}  // namespace kiln::images
