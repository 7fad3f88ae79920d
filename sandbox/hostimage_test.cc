#include "sandbox/hostimage.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace kiln::sandbox::hostimage {
namespace {

namespace fs = std::filesystem;

class HostImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(host_ + "etc/ssh");
    fs::create_directories(host_ + "etc/ssl/private");
    fs::create_directories(host_ + "usr/bin");
    fs::create_directories(state_);
    fs::create_symlink("usr/bin", host_ + "bin");
    fs::create_directories(host_ + "lib64");
    Write("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0644);
    Write("etc/hosts", "127.0.0.1 localhost\n", 0644);
    Write("etc/shadow", "root:$6$secret:19000::::::\n", 0640);
    Write("etc/private-config", "token\n", 0600);
    Write("etc/ssh/ssh_config", "Host *\n", 0644);
    Write("etc/ssh/ssh_host_ed25519_key", "PRIVATE\n", 0644);  // even world-readable: a key
    Write("etc/ssl/private/server.pem", "PRIVATE\n", 0644);
    fs::create_symlink("/run/resolv.conf", host_ + "etc/resolv.conf");
  }

  void Write(const std::string& rel, const std::string& content, mode_t mode) {
    std::ofstream(host_ + rel) << content;
    ::chmod((host_ + rel).c_str(), mode);
  }

  kiln::testing::TempDir tmp_;
  const std::string host_ = tmp_ / "host/";
  const std::string state_ = tmp_ / "state";
};

TEST_F(HostImageTest, CopiesPublicEtcAndLeavesSecretsOut) {
  auto dir = Ensure(state_, host_);
  ASSERT_TRUE(dir.ok()) << dir.error().message();
  std::string etc = *dir + "/etc/";
  EXPECT_TRUE(fs::exists(etc + "passwd"));
  EXPECT_TRUE(fs::exists(etc + "hosts"));
  EXPECT_TRUE(fs::exists(etc + "ssh/ssh_config"));
  EXPECT_TRUE(fs::is_symlink(etc + "resolv.conf"));
  EXPECT_EQ(fs::read_symlink(etc + "resolv.conf"), "/run/resolv.conf");
  EXPECT_FALSE(fs::exists(etc + "shadow"));
  EXPECT_FALSE(fs::exists(etc + "private-config"));
  EXPECT_FALSE(fs::exists(etc + "ssh/ssh_host_ed25519_key"));
  EXPECT_FALSE(fs::exists(etc + "ssl/private"));
  // The skeleton mirrors the host's layout: symlinks stay symlinks, real
  // directories become mount points.
  EXPECT_TRUE(fs::is_symlink(*dir + "/bin"));
  EXPECT_TRUE(fs::is_directory(*dir + "/usr"));
  EXPECT_TRUE(fs::is_directory(*dir + "/lib64"));
  EXPECT_FALSE(fs::exists(*dir + "/sbin"));
  struct stat st {};
  ASSERT_EQ(::stat((*dir + "/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
}

TEST_F(HostImageTest, CachedUntilEtcChanges) {
  constexpr std::chrono::milliseconds kEveryTime{0};
  auto first = Ensure(state_, host_, kEveryTime);
  ASSERT_TRUE(first.ok());
  auto again = Ensure(state_, host_, kEveryTime);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*first, *again);
  Write("etc/newfile", "x\n", 0644);  // mtimes have nanosecond resolution
  auto changed = Ensure(state_, host_, kEveryTime);
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(*first, *changed);
  EXPECT_TRUE(fs::exists(*changed + "/etc/newfile"));
  Write("etc/ssh/sshd_config", "x\n", 0644);  // a subdirectory changes too
  auto sub = Ensure(state_, host_, kEveryTime);
  ASSERT_TRUE(sub.ok());
  EXPECT_NE(*changed, *sub);
  EXPECT_TRUE(fs::exists(*sub + "/etc/ssh/sshd_config"));
}

// The fingerprint is checked at most once per interval: a change shows up in
// the images handed out once the interval since the last check has passed.
TEST_F(HostImageTest, EtcIsCheckedAtMostOncePerInterval) {
  constexpr std::chrono::milliseconds kRecheck{300};
  auto checked = std::chrono::steady_clock::now();
  auto first = Ensure(state_, host_, kRecheck);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(fs::read_symlink(state_ + "/images/current"), fs::path(*first).filename());
  Write("etc/newfile", "x\n", 0644);
  auto soon = Ensure(state_, host_, kRecheck);
  ASSERT_TRUE(soon.ok());
  if (std::chrono::steady_clock::now() < checked + kRecheck) {
    EXPECT_EQ(*soon, *first) << "checked again within the interval";
  }
  std::this_thread::sleep_for(kRecheck);
  auto later = Ensure(state_, host_, kRecheck);
  ASSERT_TRUE(later.ok());
  EXPECT_NE(*later, *first);
  EXPECT_TRUE(fs::exists(*later + "/etc/newfile"));
  EXPECT_EQ(fs::read_symlink(state_ + "/images/current"), fs::path(*later).filename());

  // An image that vanished (removed by hand) is never handed out.
  fs::remove_all(*later);
  auto rebuilt = Ensure(state_, host_, kRecheck);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(*rebuilt, *later);
  EXPECT_TRUE(fs::exists(*rebuilt + "/etc/newfile"));
}

TEST_F(HostImageTest, ThreadsBuildingAtOnceAllGetTheOneImage) {
  // The controller starts several runs at once in one process.
  std::vector<Result<std::string>> got(8, Error::Internal("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] { got[i] = Ensure(state_, host_); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : got) {
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, *got[0]);
  }
  EXPECT_TRUE(fs::exists(*got[0] + "/etc/passwd"));
  for (const auto& e : fs::directory_iterator(state_ + "/images")) {
    EXPECT_EQ(e.path().filename().string().rfind(".build-", 0), std::string::npos)
        << "left behind: " << e.path();
  }
}

TEST(IsSecretEtcPathTest, Rules) {
  EXPECT_TRUE(IsSecretEtcPath("shadow", S_IFREG | 0644));
  EXPECT_TRUE(IsSecretEtcPath("gshadow-", S_IFREG | 0644));
  EXPECT_TRUE(IsSecretEtcPath("sudoers.d", S_IFDIR | 0755));
  EXPECT_TRUE(IsSecretEtcPath("anything", S_IFREG | 0640));
  EXPECT_TRUE(IsSecretEtcPath("closed-dir", S_IFDIR | 0750));
  EXPECT_TRUE(IsSecretEtcPath("ssl/private/x.key", S_IFREG | 0644));
  EXPECT_FALSE(IsSecretEtcPath("passwd", S_IFREG | 0644));
  EXPECT_FALSE(IsSecretEtcPath("apt", S_IFDIR | 0755));
}

}  // namespace
}  // namespace kiln::sandbox::hostimage
