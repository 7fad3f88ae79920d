#include "controller/sessionlog/signer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "base/digest.h"
#include "controller/sessionlog/testutil.h"

namespace kiln::sessionlog {
namespace {

using testing::TempDir;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(SessionLogSigner, SignsAndVerifiesWithEd25519) {
  auto s = Signer::Generate();
  ASSERT_TRUE(s.ok());
  auto sig = (*s)->Sign("message");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE((*s)->public_key().Verify("message", *sig));
  EXPECT_FALSE((*s)->public_key().Verify("messagE", *sig));
  std::string bad = *sig;
  bad[5] ^= 1;
  EXPECT_FALSE((*s)->public_key().Verify("message", bad));
  EXPECT_FALSE((*s)->public_key().Verify("message", sig->substr(1)));
}

TEST(SessionLogSigner, KeyIdIsTheFirst16BytesOfSha256OfTheRawKey) {
  auto s = Signer::Generate();
  ASSERT_TRUE(s.ok());
  const PublicKey& pk = (*s)->public_key();
  EXPECT_EQ(pk.raw().size(), 32u);
  EXPECT_EQ(pk.id(), Hex(Sha256Of(pk.raw())).substr(0, 32));
  auto again = PublicKey::FromPem(pk.Pem(), "test");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id(), pk.id());
}

TEST(SessionLogSigner, CreatedOnFirstUseWithPrivatePermissions) {
  TempDir tmp;
  const std::string dir = tmp / "state/kiln/keys";
  auto first = LoadOrCreateSigner(dir);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(dir + "/session-signing.key"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/session-signing.pub"), 0644u);
  auto second = LoadOrCreateSigner(dir);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*first)->key_id(), (*second)->key_id());
  auto trusted = TrustedKeys(dir);
  ASSERT_TRUE(trusted.ok());
  ASSERT_EQ(trusted->size(), 1u);
  EXPECT_EQ((*trusted)[0].id(), (*first)->key_id());
}

TEST(SessionLogSigner, ConcurrentFirstUseAgreesOnOneKey) {
  TempDir tmp;
  const std::string dir = tmp / "keys";
  std::vector<std::string> ids(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ids.size(); ++i) {
    threads.emplace_back([&, i] {
      auto s = LoadOrCreateSigner(dir);
      ids[i] = s.ok() ? (*s)->key_id() : s.error().message();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
}

TEST(SessionLogSigner, RefusesAKeyOthersCanRead) {
  TempDir tmp;
  ASSERT_TRUE(LoadOrCreateSigner(tmp.path()).ok());
  ASSERT_EQ(::chmod((tmp / "session-signing.key").c_str(), 0644), 0);
  auto s = LoadSigner(tmp.path());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("mode 0644"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("session-signing.key"), std::string::npos);
}

TEST(SessionLogSigner, MissingKeyAndBadPemAreClearErrors) {
  TempDir tmp;
  auto s = LoadSigner(tmp / "nope");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("nope/session-signing.key"), std::string::npos);
  auto pk = PublicKey::FromPem("garbage", "'k.pem'");
  ASSERT_FALSE(pk.ok());
  EXPECT_NE(pk.error().message().find("'k.pem'"), std::string::npos);
  auto trusted = TrustedKeys(tmp / "absent");
  ASSERT_TRUE(trusted.ok());
  EXPECT_TRUE(trusted->empty());
}

TEST(SessionLogSigner, DefaultKeyDirFollowsTheUser) {
  if (::geteuid() == 0) {
    EXPECT_EQ(DefaultKeyDir(), "/var/lib/kiln/keys");
  } else {
    ::setenv("XDG_STATE_HOME", "/tmp/xdg-state", 1);
    EXPECT_EQ(DefaultKeyDir(), "/tmp/xdg-state/kiln/keys");
    ::unsetenv("XDG_STATE_HOME");
    EXPECT_NE(DefaultKeyDir().find("/.local/state/kiln/keys"), std::string::npos);
  }
}

}  // namespace
}  // namespace kiln::sessionlog
