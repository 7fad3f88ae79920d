#include "controller/images/seal_watch.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>

#include "controller/images/layer.h"
#include "controller/images/store.h"
#include "controller/images/test_tar.h"
#include "tests/support/temp_dir.h"

namespace kiln::images {
namespace {

namespace fs = std::filesystem;
using kiln::testing::TempDir;
using testing::Member;
using testing::WriteTar;

// A store with one image of one layer, and a watch on the store's
// filesystem. Skips, saying why, where this host cannot watch.
class SealWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::Open(tmp_.path());
    ASSERT_TRUE(s.ok()) << s.error().message();
    store_.emplace(std::move(*s));
    auto w = SealWatch::Start(store_->root());
    if (!w) GTEST_SKIP() << "this host cannot watch seals: " << w.error().message();
    watch_ = std::move(*w);
    std::string tar = tmp_ / "layer.tar";
    WriteTar(tar, {{"etc/os-release", 'f', "ID=kiln\n"},
                   {"etc/hosts", 'f', "h\n"},
                   {"usr/bin/tool", 'f', "tool", 0755},
                   {"usr/bin/sh", 'l', "tool"}});
    auto layer = store_->AddLayer(tar, tar, {}, nullptr);
    ASSERT_TRUE(layer.ok()) << layer.error().message();
    layer_ = *layer;
    auto digest = store_->AddImage({layer_.digest}, {{"env", {"A=1"}}}, {{"test", "img"}}, "img");
    ASSERT_TRUE(digest.ok()) << digest.error().message();
  }

  std::string Dir() const { return store_->LayerDir(layer_.digest); }

  // Resolves img through the watch; true when the layer's seal held.
  bool Holds() {
    auto img = store_->Resolve("img", watch_.get());
    if (img.ok()) return true;
    EXPECT_EQ(img.error().code(), Error::Code::kCorruption) << img.error().message();
    EXPECT_NE(img.error().message().find("has changed since it was stored"), std::string::npos)
        << img.error().message();
    return false;
  }

  TempDir tmp_;
  std::optional<Store> store_;
  std::unique_ptr<SealWatch> watch_;
  Layer layer_;
};

TEST_F(SealWatchTest, AnUnchangedLayerIsWalkedOnceAndChangesElsewhereDoNotCount) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Holds());
  EXPECT_EQ(watch_->walks(), 1u);
  // The same filesystem, outside the layer: files written, renamed, removed.
  for (int i = 0; i < 20; ++i) {
    std::string f = tmp_ / ("other-" + std::to_string(i));
    kiln::testing::Spit(f, "x");
    fs::rename(f, f + ".moved");
    fs::remove(f + ".moved");
  }
  ASSERT_TRUE(Holds());
  EXPECT_EQ(watch_->walks(), 1u);
  EXPECT_EQ(watch_->drops(), 0u);
}

// A change of each kind, made after the watch has walked the layer: the next
// use walks again and refuses the layer, as a walk at every use would.
struct Change {
  std::string name;
  std::function<void(const std::string& dir, const std::string& tmp)> make;
};

class SealWatchChange : public SealWatchTest, public ::testing::WithParamInterface<Change> {};

TEST_P(SealWatchChange, IsSeenAndTheLayerIsRefused) {
  ASSERT_TRUE(Holds());
  GetParam().make(Dir(), tmp_.path());
  EXPECT_FALSE(Holds());
  EXPECT_EQ(watch_->walks(), 2u);
  EXPECT_GE(watch_->drops(), 1u);
  // A plain walk agrees: the watch hid nothing.
  auto img = store_->Resolve("img");
  EXPECT_FALSE(img.ok());
}

INSTANTIATE_TEST_SUITE_P(
    SealWatch, SealWatchChange,
    ::testing::Values(Change{"ContentWritten",
                             [](const std::string& d, const std::string&) {
                               kiln::testing::Spit(d + "/etc/os-release", "ID=evil\n");
                             }},
                      Change{"ModeChanged",
                             [](const std::string& d, const std::string&) {
                               ASSERT_EQ(::chmod((d + "/usr/bin/tool").c_str(), 04755), 0);
                             }},
                      Change{"OwnerChanged",
                             [](const std::string& d, const std::string&) {
                               ASSERT_EQ(::lchown((d + "/etc/hosts").c_str(), 1234, 1234), 0);
                             }},
                      Change{"FileAdded",
                             [](const std::string& d, const std::string&) {
                               kiln::testing::Spit(d + "/usr/bin/planted", "#!/bin/sh\n");
                             }},
                      Change{"FileRemoved",
                             [](const std::string& d, const std::string&) {
                               fs::remove(d + "/etc/hosts");
                             }},
                      Change{"Renamed",
                             [](const std::string& d, const std::string&) {
                               fs::rename(d + "/etc/hosts", d + "/etc/hosts.old");
                             }},
                      Change{"SymlinkReplaced",
                             [](const std::string& d, const std::string&) {
                               fs::remove(d + "/usr/bin/sh");
                               fs::create_symlink("/tmp/evil", d + "/usr/bin/sh");
                             }},
                      Change{"MovedOutAndBack",
                             [](const std::string& d, const std::string& tmp) {
                               // Back under its name, but a new change time.
                               fs::rename(d + "/usr/bin/tool", tmp + "/tool");
                               fs::rename(tmp + "/tool", d + "/usr/bin/tool");
                             }},
                      Change{"HardLinkedOutside",
                             [](const std::string& d, const std::string& tmp) {
                               ASSERT_EQ(
                                   ::link((d + "/etc/hosts").c_str(), (tmp + "/hosts").c_str()), 0);
                             }}),
    [](const ::testing::TestParamInfo<Change>& p) { return p.param.name; });

// A hard link made outside the layer before it was sealed: a write through
// that path names another directory, and is seen by the file's own id.
TEST_F(SealWatchTest, AWriteThroughALinkOutsideTheLayerIsSeen) {
  const std::string outside = tmp_ / "hosts-link";
  ASSERT_EQ(::link((Dir() + "/etc/hosts").c_str(), outside.c_str()), 0);
  // The layer as stored with that link: its record sealed again.
  auto seal = Seal(Dir());
  ASSERT_TRUE(seal.ok()) << seal.error().message();
  auto record = store_->LayerRecord(layer_.digest);
  ASSERT_TRUE(record.ok());
  (*record)["seal"] = *seal;
  kiln::testing::Spit(Dir() + ".json", record->dump() + "\n");
  ASSERT_TRUE(Holds());

  kiln::testing::Spit(outside, "evil\n");
  EXPECT_FALSE(Holds());
  EXPECT_EQ(watch_->walks(), 2u);
}

}  // namespace
}  // namespace kiln::images
