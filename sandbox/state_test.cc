// Records of running sandboxes: created whole under their id, reusing the
// inode of a removed one, and a claim left by a killed supervisor is gc'd.
#include "sandbox/state.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace kiln::sandbox::state {
namespace {

namespace fs = std::filesystem;

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Prepare(dir_).ok()); }

  static Record Of(const std::string& id) {
    return {id, ::getpid(), ProcessStartTime(::getpid()), "", ""};
  }
  static ino_t Inode(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  }
  // Every name in dir/run and dir/run/.spare, sorted.
  std::vector<std::string> Names() const {
    std::vector<std::string> out;
    for (const auto& sub : {dir_ + "/run", dir_ + "/run/.spare"}) {
      if (!fs::exists(sub)) continue;
      for (const auto& e : fs::directory_iterator(sub)) {
        out.push_back(e.path().lexically_relative(dir_ + "/run").string());
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  kiln::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(StateTest, ARemovedRecordsFileIsReusedByTheNext) {
  ASSERT_TRUE(Create(dir_, Of("aaaa")).ok());
  const ino_t first = Inode(RecordPath(dir_, "aaaa"));
  ASSERT_NE(first, 0u);
  ASSERT_TRUE(Remove(dir_, "aaaa").ok());
  EXPECT_EQ(Names(), (std::vector<std::string>{".spare", ".spare/aaaa"}));

  // A longer record, then a shorter one: each reads back whole and alone.
  Record longer = Of("bbbb");
  longer.cgroup_root = "/sys/fs/cgroup";
  longer.cgroup_parent = std::string(300, 'p');
  ASSERT_TRUE(Create(dir_, longer).ok());
  EXPECT_EQ(Inode(RecordPath(dir_, "bbbb")), first) << "the spare's inode, not a new one";
  EXPECT_EQ(Names(), (std::vector<std::string>{".spare", "bbbb.json"}));
  ASSERT_TRUE(Remove(dir_, "bbbb").ok());
  ASSERT_TRUE(Create(dir_, Of("cccc")).ok());
  auto back = Read(dir_, "cccc");
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->id, "cccc");
  EXPECT_EQ(back->supervisor_pid, ::getpid());
  EXPECT_EQ(back->cgroup_parent, "");
  EXPECT_EQ(Inode(RecordPath(dir_, "cccc")), first);
}

TEST_F(StateTest, AnIdInUseIsRefusedAndLeavesNothing) {
  // Another supervisor's claim of the same id, being written: not touched.
  std::ofstream(dir_ + "/run/.claim-dddd.1") << "{\"id\":";
  ASSERT_TRUE(Create(dir_, Of("dddd")).ok());
  auto again = Create(dir_, Of("dddd"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Error::Code::kInvalidArgument);
  EXPECT_NE(again.error().message().find("sandbox id 'dddd' is already in use"), std::string::npos)
      << again.error().message();
  EXPECT_EQ(Names(), (std::vector<std::string>{".claim-dddd.1", ".spare", "dddd.json"}));
  EXPECT_EQ(Read(dir_, "dddd")->supervisor_pid, ::getpid());
}

TEST_F(StateTest, AStateDirectoryWithoutSparesStillWorks) {
  // Made by an older kiln: no run/.spare. Records are created and unlinked.
  ASSERT_EQ(::rmdir((dir_ + "/run/.spare").c_str()), 0);
  ASSERT_TRUE(Create(dir_, Of("eeee")).ok());
  ASSERT_TRUE(Remove(dir_, "eeee").ok());
  EXPECT_FALSE(fs::exists(RecordPath(dir_, "eeee")));
  ASSERT_TRUE(Remove(dir_, "eeee").ok()) << "removing what is gone is fine";
}

TEST_F(StateTest, GcRemovesOldClaimsOnly) {
  // A supervisor killed between taking a file and naming it leaves a claim.
  for (const char* name : {".claim-old", ".claim-young"}) {
    std::ofstream(dir_ + "/run/" + name) << "{\"id\":";
  }
  timeval old[2] = {{::time(nullptr) - 120, 0}, {::time(nullptr) - 120, 0}};
  ASSERT_EQ(::utimes((dir_ + "/run/.claim-old").c_str(), old), 0);
  GcResult r = Gc(dir_, "/sys/fs/cgroup", "kiln-state-test-none");
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(Names(), (std::vector<std::string>{".claim-young", ".spare"}));
}

}  // namespace
}  // namespace kiln::sandbox::state
