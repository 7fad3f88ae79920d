#include "controller/images/layer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>

#include "base/digest.h"
#include "controller/images/test_tar.h"
#include "tests/support/temp_dir.h"

namespace kiln::images {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using kiln::testing::Slurp;
using kiln::testing::TempDir;
using testing::Member;
using testing::WriteTar;

class LayerTest : public ::testing::Test {
 protected:
  // Unpacks members as a layer into a fresh directory.
  Result<Layer> Make(const std::vector<Member>& members, const std::string& dest = "layer",
                     UnpackPolicy policy = {}, bool gzip = false) {
    std::string tar = tmp_ / (dest + ".tar");
    WriteTar(tar, members, gzip);
    return Unpack(tar, "test.tar", tmp_ / dest, policy, &notes_);
  }

  // The host outside the layer stays as it was: nothing was created in the
  // directory an attack aimed at.
  void ExpectOutsideUntouched() {
    EXPECT_TRUE(fs::is_empty(tmp_ / "outside")) << "something was written outside the layer";
    EXPECT_FALSE(fs::exists(tmp_ / "layer")) << "a refused layer must leave nothing behind";
  }

  void SetUp() override { fs::create_directory(tmp_ / "outside"); }

  TempDir tmp_;
  UnpackNotes notes_;
};

const std::vector<Member> kSample = {
    {"etc/", 'd', "", 0755},        {"etc/os-release", 'f', "ID=kiln\n"},
    {"bin/", 'd', "", 0755},        {"bin/tool", 'f', "#!/bin/sh\necho hi\n", 0755},
    {"bin/alias", 'h', "bin/tool"}, {"bin/sh", 'l', "tool"},
    {"run/fifo", 'p', "", 0600},
};

TEST_F(LayerTest, UnpacksEveryKindOfMember) {
  auto layer = Make(kSample);
  ASSERT_TRUE(layer.ok()) << layer.error().message();
  std::string d = layer->path;
  EXPECT_EQ(Slurp(d + "/etc/os-release"), "ID=kiln\n");
  struct stat tool {
  }, alias{};
  ASSERT_EQ(::lstat((d + "/bin/tool").c_str(), &tool), 0);
  ASSERT_EQ(::lstat((d + "/bin/alias").c_str(), &alias), 0);
  EXPECT_EQ(tool.st_ino, alias.st_ino) << "a hard link stays a hard link";
  EXPECT_EQ(tool.st_mode & 07777, 0755u);
  EXPECT_EQ(tool.st_mtim.tv_sec, 1700000000);
  EXPECT_EQ(fs::read_symlink(d + "/bin/sh"), "tool");
  EXPECT_TRUE(fs::is_fifo(fs::symlink_status(d + "/run/fifo")));
  EXPECT_TRUE(fs::is_directory(d + "/run")) << "a missing parent directory is made";
  EXPECT_EQ(layer->entries, 8u);  // run/ made implicitly
  EXPECT_EQ(layer->bytes, 8u + 18u);
  ASSERT_EQ(layer->files.size(), 8u);
  EXPECT_EQ(layer->files[0]["path"], "bin");
  EXPECT_EQ(layer->files[1]["path"], "bin/alias");
  EXPECT_EQ(layer->files[1]["type"], "f") << "the first path of an inode holds its content";
  EXPECT_EQ(layer->files[3]["path"], "bin/tool");
  EXPECT_EQ(layer->files[3]["type"], "h");
  EXPECT_EQ(layer->files[3]["target"], "bin/alias");
}

TEST_F(LayerTest, DigestDependsOnContentNotOnMemberOrder) {
  auto a = Make(kSample, "a");
  std::vector<Member> reversed(kSample.rbegin(), kSample.rend());
  // A hard link must follow its target in a tar.
  std::swap(reversed[2], reversed[3]);
  auto b = Make(reversed, "b");
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ(a->digest, b->digest);
  EXPECT_TRUE(a->digest.starts_with("sha256:"));

  std::vector<Member> changed = kSample;
  changed[1].data = "ID=other\n";
  auto c = Make(changed, "c");
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->digest, c->digest);
  std::vector<Member> chmodded = kSample;
  chmodded[3].mode = 0700;
  auto d = Make(chmodded, "d");
  ASSERT_TRUE(d.ok());
  EXPECT_NE(a->digest, d->digest) << "modes are part of the content";
}

TEST_F(LayerTest, CanonicalTarOfAnUnpackedLayerUnpacksToTheSameDigest) {
  auto a = Make(kSample, "a");
  ASSERT_TRUE(a.ok());
  std::string tar = tmp_ / "canonical.tar";
  std::string bytes;
  ASSERT_TRUE(CanonicalTar(a->path, 0, [&](std::string_view b) {
                bytes.append(b);
                return Ok();
              }).ok());
  kiln::testing::Spit(tar, bytes);
  auto b = Unpack(tar, "canonical", tmp_ / "b", {}, nullptr);
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ(a->digest, b->digest);
  EXPECT_EQ(a->digest, "sha256:" + Sha256Hex(bytes)) << "the digest is the canonical tar's";
}

TEST_F(LayerTest, GzipLayersAreRead) {
  auto a = Make(kSample, "a");
  auto b = Make(kSample, "b", {}, true);
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ(a->digest, b->digest);
}

TEST_F(LayerTest, AbsolutePathIsRefused) {
  auto layer = Make({{"/etc/evil", 'f', "x"}});
  ASSERT_FALSE(layer.ok());
  EXPECT_NE(layer.error().message().find("'/etc/evil' has an absolute path"), std::string::npos)
      << layer.error().message();
  ExpectOutsideUntouched();
}

TEST_F(LayerTest, DotDotIsRefused) {
  auto layer = Make({{"a/", 'd'}, {"a/../../outside/evil", 'f', "x"}});
  ASSERT_FALSE(layer.ok());
  EXPECT_NE(layer.error().message().find("climbs out of the layer"), std::string::npos)
      << layer.error().message();
  ExpectOutsideUntouched();
}

TEST_F(LayerTest, WritingThroughASymlinkIsRefused) {
  // The classic: a symlink member pointing out, then a member under it.
  auto layer = Make({{"a", 'l', tmp_ / "outside"}, {"a/evil", 'f', "x"}});
  ASSERT_FALSE(layer.ok());
  EXPECT_NE(layer.error().message().find("'a/evil' would be written through 'a'"),
            std::string::npos)
      << layer.error().message();
  ExpectOutsideUntouched();
  // A relative one, and one deeper in the path.
  auto rel = Make({{"d/", 'd'}, {"d/up", 'l', "../../outside"}, {"d/up/x/evil", 'f', "x"}});
  ASSERT_FALSE(rel.ok());
  ExpectOutsideUntouched();
}

TEST_F(LayerTest, SymlinkReplacedByMemberIsNotFollowed) {
  // A later member of the same path replaces the symlink instead of writing
  // through it.
  auto layer = Make({{"a", 'l', tmp_ / "outside/evil"}, {"a", 'f', "mine"}});
  ASSERT_TRUE(layer.ok()) << layer.error().message();
  EXPECT_EQ(Slurp(layer->path + "/a"), "mine");
  EXPECT_TRUE(fs::is_empty(tmp_ / "outside"));
}

TEST_F(LayerTest, HardLinksOutOfTheLayerAreRefused) {
  kiln::testing::Spit(tmp_ / "outside/secret", "host secret");
  for (const std::vector<Member>& members : std::vector<std::vector<Member>>{
           {{"x", 'h', tmp_ / "outside/secret"}},
           {{"x", 'h', "../outside/secret"}},
           {{"a", 'l', tmp_ / "outside"}, {"x", 'h', "a/secret"}},
           {{"d/", 'd'}, {"x", 'h', "d"}},
           {{"x", 'h', "missing"}},
       }) {
    auto layer = Make(members);
    ASSERT_FALSE(layer.ok()) << members.back().data;
    EXPECT_FALSE(fs::exists(tmp_ / "layer"));
  }
  struct stat st {};
  ASSERT_EQ(::stat((tmp_ / "outside/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u) << "no link to a host file was made";
  EXPECT_EQ(Slurp(tmp_ / "outside/secret"), "host secret");
}

TEST_F(LayerTest, DeviceNodesAreDroppedAndSetuidClearedWhenUntrusted) {
  std::vector<Member> members = {{"dev/", 'd'},
                                 {"dev/mem", 'c'},
                                 {"bin/su", 'f', "su", 04755},
                                 {"bin/wall", 'f', "wall", 02755}};
  auto layer = Make(members);
  ASSERT_TRUE(layer.ok()) << layer.error().message();
  EXPECT_FALSE(fs::exists(fs::symlink_status(layer->path + "/dev/mem")));
  EXPECT_EQ(notes_.devices_dropped, 1u);
  EXPECT_EQ(notes_.setid_cleared, 2u);
  struct stat st {};
  ASSERT_EQ(::stat((layer->path + "/bin/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);

  UnpackPolicy trusted;
  trusted.trusted = true;
  auto kept = Make(members, "trusted", trusted);
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(::stat((kept->path + "/bin/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u) << "a layer kiln built keeps its modes";
}

TEST_F(LayerTest, IdsBeyondTheSandboxRangeBecomeNobody) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown needs root";
  UnpackPolicy policy;
  policy.id_shift = 1000000;
  auto layer =
      Make({{"a", 'f', "", 0644, 1000, 1000}, {"b", 'f', "", 0644, 70000, 5}}, "layer", policy);
  ASSERT_TRUE(layer.ok()) << layer.error().message();
  struct stat st {};
  ASSERT_EQ(::stat((layer->path + "/a").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1001000u) << "ids are shifted into the sandbox's range";
  ASSERT_EQ(::stat((layer->path + "/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000000u + 65534);
  EXPECT_EQ(notes_.ids_clamped, 1u);
  EXPECT_EQ(layer->files[0]["uid"], 1000) << "the file list has the image's own ids";
}

TEST_F(LayerTest, WhiteoutsBecomeOverlayWhiteoutsAndBack) {
  if (::geteuid() != 0) GTEST_SKIP() << "whiteouts and trusted.* xattrs need root";
  auto layer = Make({{"etc/", 'd'},
                     {"etc/.wh.passwd", 'f'},
                     {"opt/", 'd'},
                     {"opt/.wh..wh..opq", 'f'},
                     {"opt/new", 'f', "n"}});
  ASSERT_TRUE(layer.ok()) << layer.error().message();
  struct stat st {};
  ASSERT_EQ(::lstat((layer->path + "/etc/passwd").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
  char v = 0;
  EXPECT_EQ(::lgetxattr((layer->path + "/opt").c_str(), "trusted.overlay.opaque", &v, 1), 1);
  EXPECT_EQ(v, 'y');
  std::vector<std::string> paths;
  std::string bytes;
  ASSERT_TRUE(CanonicalTar(
                  layer->path, 0,
                  [&](std::string_view b) {
                    bytes.append(b);
                    return Ok();
                  },
                  [&](const json& e) { paths.push_back(e["path"]); })
                  .ok());
  EXPECT_EQ(paths, (std::vector<std::string>{"etc", "etc/passwd", "opt", "opt/new"}));
  EXPECT_NE(bytes.find("etc/.wh.passwd"), std::string::npos);
  EXPECT_NE(bytes.find("opt/.wh..wh..opq"), std::string::npos);
}

TEST_F(LayerTest, NotATarIsAClearError) {
  kiln::testing::Spit(tmp_ / "junk.tar", std::string(2000, 'x'));
  auto layer = Unpack(tmp_ / "junk.tar", "junk.tar", tmp_ / "layer", {}, nullptr);
  ASSERT_FALSE(layer.ok());
  EXPECT_NE(layer.error().message().find("junk.tar"), std::string::npos);
  EXPECT_FALSE(fs::exists(tmp_ / "layer"));
  // Truncated in the middle of a member.
  WriteTar(tmp_ / "full.tar", {{"big", 'f', std::string(100000, 'b')}});
  std::string full = Slurp(tmp_ / "full.tar");
  kiln::testing::Spit(tmp_ / "cut.tar", full.substr(0, 50000));
  auto cut = Unpack(tmp_ / "cut.tar", "cut.tar", tmp_ / "layer", {}, nullptr);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message().find("cut.tar"), std::string::npos) << cut.error().message();
  EXPECT_FALSE(fs::exists(tmp_ / "layer"));
}

TEST_F(LayerTest, SealChangesWhenTheLayerIsEdited) {
  auto layer = Make(kSample);
  ASSERT_TRUE(layer.ok());
  auto before = Seal(layer->path);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(*Seal(layer->path), *before);
  kiln::testing::Spit(layer->path + "/etc/os-release", "ID=kiln\n");  // same bytes, rewritten
  EXPECT_NE(*Seal(layer->path), *before);
}

TEST_F(LayerTest, SubtractKeepsOnlyWhatDiffersFromTheBase) {
  std::vector<Member> base_members = kSample;
  base_members.push_back({"opt/", 'd', "", 0755});
  base_members.push_back({"opt/old", 'f', "old"});
  auto base = Make(base_members, "base");
  ASSERT_TRUE(base.ok());
  FileIndex index = Merge({base->files});
  std::vector<Member> child = kSample;
  child.push_back({"opt/", 'd', "", 0755});  // the same directory, without opt/old
  child[1].data = "ID=child\n";              // changed
  child.push_back({"usr/", 'd'});            // new
  child.push_back({"usr/new", 'f', "new"});  // new
  child.erase(child.begin() + 6);            // run/fifo removed
  std::string tar = tmp_ / "child.tar";
  WriteTar(tar, child);
  if (::geteuid() != 0) GTEST_SKIP() << "whiteouts need root";
  auto layer = Unpack(tar, "child.tar", tmp_ / "child", {}, nullptr, &index);
  ASSERT_TRUE(layer.ok()) << layer.error().message();
  std::vector<std::string> paths;
  for (const json& e : layer->files)
    paths.push_back(e["path"].get<std::string>() + ":" + e["type"].get<std::string>());
  // bin/ and its files are the base's; run/ is gone (a whiteout); etc/, the
  // same as the base's, stays to hold what changed in it.
  EXPECT_EQ(paths, (std::vector<std::string>{"etc:d", "etc/os-release:f", "opt:d", "opt/old:w",
                                             "run:w", "usr:d", "usr/new:f"}));
  // Made again a second later: the same layer (what was removed from a
  // directory does not leave its time behind).
  ::sleep(1);
  auto again = Unpack(tar, "child.tar", tmp_ / "again", {}, nullptr, &index);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->digest, layer->digest);
  // The stack reads as the child's full tree.
  FileIndex merged = Merge({base->files, layer->files});
  EXPECT_FALSE(merged.contains("run/fifo"));
  EXPECT_FALSE(merged.contains("opt/old"));
  EXPECT_EQ(merged["opt"], index["opt"]);
  EXPECT_EQ(merged["etc/os-release"]["sha256"], Sha256Hex("ID=child\n"));
  EXPECT_TRUE(merged.contains("bin/tool"));
}

}  // namespace
}  // namespace kiln::images
