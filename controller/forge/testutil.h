// Helpers shared by forge_test: a state directory with a store (on the
// backend the test is instantiated with: store::testing::BackendTest) and a
// repositories directory, a forge per user, a work repository (the git CLI,
// the tests' oracle, makes its commits) whose commits reach the forge with
// PushBranch, and a raw look at the events table.
#pragma once

#include <gtest/gtest.h>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "controller/forge/inbox.h"
#include "controller/forge/local.h"
#include "controller/git/testutil.h"
#include "controller/store/testutil.h"

namespace kiln::forge::testing {

using ::kiln::git::testing::Git;
using ::kiln::git::testing::Sh;
using ::kiln::git::testing::ShQuote;
using ::kiln::git::testing::WriteText;
using ::kiln::testing::TempDir;

inline constexpr char kRepo[] = "acme/widget";

class ForgeTest : public store::testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // The starting files of acme/widget, maintained by alice.
    dir_.Write("seed/README.md", "# widget\n");
    dir_.Write("seed/src/main.c", "int main(void) {\n  return 0;\n}\n");
    std::filesystem::create_directories(dir_ / "state");
    alice_ = MustOpen("alice");
    ASSERT_NE(alice_, nullptr);
    auto repo = alice_->CreateRepo(kRepo, dir_ / "seed", {"alice"}, "");
    ASSERT_TRUE(repo.ok()) << repo.error().message();
    bare_ = repo->info.clone_url;
    // A clone to make commits in, as a developer (or kiln's mirror) would.
    Sh("rm -rf " + ShQuote(work()));
    Git(dir_.path(), "clone -q " + ShQuote(bare_) + " work");
  }

  std::unique_ptr<Local> MustOpen(const std::string& user) {
    auto f = Local::Open(store(), repos(), user);
    EXPECT_TRUE(f.ok()) << f.error().message();
    return f.ok() ? std::move(*f) : nullptr;
  }

  std::string store() const { return location_; }
  std::string repos() const { return dir_ / "state/forge/repos"; }
  std::string work() const { return dir_ / "work"; }

  // Commits files (path -> content) on branch of the work clone, starting
  // from `from` (a branch or sha), and returns the new commit.
  std::string Commit(const std::string& branch, const std::string& from,
                     const std::vector<std::pair<std::string, std::string>>& files,
                     const std::string& message) {
    Git(work(), "checkout -q -B " + ShQuote(branch) + " " + ShQuote(from));
    for (const auto& [path, content] : files) WriteText(work() + "/" + path, content);
    Git(work(), "add -A");
    Git(work(), "commit -q -m " + ShQuote(message));
    return Git(work(), "rev-parse HEAD");
  }

  // Pushes commit to branch of acme/widget through the forge, as alice.
  Status Push(const std::string& branch, const std::string& commit, bool force = false) {
    return alice_->PushBranch(kRepo, branch, work() + "/.git", commit, force);
  }

  std::string BareSha(const std::string& branch) {
    return Git(bare_, "rev-parse --verify -q refs/heads/" + branch);
  }

  // The events of the store, oldest first, as "kind #number".
  std::vector<Event> Events() {
    auto inbox = Inbox::Open(store());
    EXPECT_TRUE(inbox.ok());
    auto recent = (*inbox)->Recent(0);
    EXPECT_TRUE(recent.ok());
    std::vector<Event> out(recent->rbegin(), recent->rend());
    return out;
  }
  std::vector<std::string> EventKinds(size_t skip = 0) {
    std::vector<std::string> out;
    auto all = Events();
    for (size_t i = skip; i < all.size(); ++i) {
      out.push_back(all[i].kind + (all[i].number > 0 ? " #" + std::to_string(all[i].number) : ""));
    }
    return out;
  }
  size_t EventCount() { return Events().size(); }

  std::unique_ptr<Local> alice_;
  std::string bare_;
};

// Runs a fixture's TEST_Ps on both backends.
#define KILN_FORGE_ON_BOTH_BACKENDS(fixture)                                 \
  INSTANTIATE_TEST_SUITE_P(Backends, fixture, store::testing::AllBackends(), \
                           store::testing::BackendName)

}  // namespace kiln::forge::testing
