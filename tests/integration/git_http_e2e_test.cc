// git's smart HTTP on kiln serve's listener, with plain `git` as a user
// would use it (docs/web.md): clone with a forge token, push a branch (the
// forge records the push), a push to the protected default branch by
// someone who does not maintain the repository refused, and no access
// without a token.
#include <filesystem>

#include "tests/integration/controller_fixture.h"
#include "tests/support/net.h"

namespace kiln::testing {
namespace {

using nlohmann::json;

class GitHttp : public Controller {
 protected:
  Outcome Git(const std::string& args) {
    RunOptions o;
    o.timeout_seconds = 60;
    return kiln::testing::Run(
        {"/bin/sh", "-c",
         "GIT_TERMINAL_PROMPT=0 git -c user.name=t -c user.email=t@t -c credential.helper= " +
             args},
        o);
  }
  std::string Token(const std::string& user) {
    Outcome u = Kiln({"forge", "user", "add", "--config", config_, user});
    EXPECT_EQ(u.status, 0) << u.err;
    return u.out.substr(0, u.out.find('\n'));
  }

  // kiln serve with the local forge on a free port, holding repository
  // name (the test repository, maintained by "maint"): its host:port, ""
  // after a failure.
  std::string Serve(const std::string& name) {
    const uint16_t port = FreePort();
    EXPECT_NE(port, 0);
    const std::string host = "127.0.0.1:" + std::to_string(port);
    Setup("default: {tool_calls: [{name: submit, input: {summary: done}}]}\n",
          "pipeline: {api_listen: \"" + host + "\"}\n");
    Outcome init = Kiln(
        {"forge", "init", "--config", config_, name, "--from", repo_, "--maintainer", "maint"});
    EXPECT_EQ(init.status, 0) << init.err;
    daemon_.emplace(config_, root_ + "/serve.log");
    for (int i = 0; i < 100 && !Listening(port); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(Listening(port)) << ReadAll(root_ + "/serve.log");
    return init.status == 0 && Listening(port) ? host : "";
  }

  // The daemon stops before the fixture checks that nothing was left.
  void TearDown() override {
    daemon_.reset();
    Controller::TearDown();
  }

  std::optional<Daemon> daemon_;
};

TEST_F(GitHttp, CloneAndPushWithATokenAndTheDefaultBranchIsProtected) {
  const std::string host = Serve("acme/widget");
  ASSERT_FALSE(host.empty());
  const std::string maint = Token("maint"), bob = Token("bob");
  auto url = [&](const std::string& token) {
    return "http://" + (token.empty() ? "" : "someone:" + token + "@") + host + "/acme/widget.git";
  };

  // No token, a wrong token: nothing.
  Outcome anon = Git("clone -q " + url("") + " '" + root_ + "/anon'");
  EXPECT_NE(anon.status, 0);
  EXPECT_TRUE(Contains(anon.err, "could not read Username") || Contains(anon.err, "401"))
      << anon.err;
  Outcome wrong = Git("clone -q " + url("kiln_nope") + " '" + root_ + "/wrong'");
  EXPECT_NE(wrong.status, 0);
  EXPECT_TRUE(Contains(wrong.err, "Authentication failed")) << wrong.err;
  Outcome missing =
      Git("clone -q http://x:" + bob + "@" + host + "/acme/nothing.git '" + root_ + "/missing'");
  EXPECT_NE(missing.status, 0);

  // bob clones, pushes a branch: the forge records the push.
  const std::string work = root_ + "/bob";
  Outcome clone = Git("clone -q " + url(bob) + " '" + work + "'");
  ASSERT_EQ(clone.status, 0) << clone.err;
  EXPECT_EQ(ReadAll(work + "/README.md"), "hello\n");
  WriteAll(work + "/NOTES.md", "from bob\n");
  ASSERT_EQ(Git("-C '" + work + "' checkout -q -b feature").status, 0);
  ASSERT_EQ(Git("-C '" + work + "' add NOTES.md").status, 0);
  ASSERT_EQ(Git("-C '" + work + "' commit -q -m notes").status, 0);
  Outcome pushed = Git("-C '" + work + "' push -q origin feature");
  ASSERT_EQ(pushed.status, 0) << pushed.err;
  const std::string head = Git("-C '" + work + "' rev-parse HEAD").out;
  json events = json::parse(Kiln({"forge", "events", "--config", config_, "--json"}).out);
  bool recorded = false;
  for (const json& e : events) {
    if (e.value("kind", "") == "push" && e.value("actor", "") == "bob") {
      recorded = true;
      EXPECT_EQ(e["payload"]["branch"], "feature") << e.dump();
      EXPECT_EQ(e["payload"]["before"], "");
      EXPECT_EQ(e["payload"]["after"].get<std::string>() + "\n", head);
    }
  }
  EXPECT_TRUE(recorded) << events.dump(2);

  // bob may not push main; the maintainer may.
  const std::string main_before = Git("ls-remote " + url(bob) + " refs/heads/main").out;
  ASSERT_EQ(Git("-C '" + work + "' push -q origin feature:main").status != 0, true);
  Outcome refused = Git("-C '" + work + "' push origin feature:main");
  EXPECT_NE(refused.status, 0);
  EXPECT_TRUE(Contains(refused.err, "protected branch")) << refused.err;
  EXPECT_EQ(Git("ls-remote " + url(bob) + " refs/heads/main").out, main_before);
  ASSERT_EQ(Git("-C '" + work + "' remote add maint " + url(maint)).status, 0);
  Outcome by_maint = Git("-C '" + work + "' push -q maint feature:main");
  EXPECT_EQ(by_maint.status, 0) << by_maint.err;
  EXPECT_EQ(Git("ls-remote " + url(bob) + " refs/heads/main").out,
            head.substr(0, 40) + "\trefs/heads/main\n");
}

// The peak resident memory of process pid (VmHWM), in bytes.
uint64_t PeakMemory(pid_t pid) {
  const std::string status = ReadAll("/proc/" + std::to_string(pid) + "/status");
  const size_t at = status.find("VmHWM:");
  if (at == std::string::npos) return 0;
  return std::stoull(status.substr(at + 6)) * 1024;
}

// A push and a clone larger than the listener takes whole (25 MiB) or
// should hold: 48 MiB of random bytes go up (a chunked request) and come
// back (a chunked reply) through pipes, and the daemon's peak memory grows
// by far less than that. A body that is not git's is refused, naming why.
TEST_F(GitHttp, APushAndACloneOfFortyEightMiBStreamThrough) {
  const std::string host = Serve("acme/big");
  ASSERT_FALSE(host.empty());
  const std::string bob = Token("bob");
  const std::string url = "http://bob:" + bob + "@" + host + "/acme/big.git";

  const std::string work = root_ + "/up";
  ASSERT_EQ(Git("clone -q " + url + " '" + work + "'").status, 0);
  // A commit of one file of random bytes (no compression helps) in work.
  auto commit_random = [&](const std::string& file, size_t bytes) {
    return kiln::testing::Run(
               {"/bin/sh", "-c",
                "head -c " + std::to_string(bytes) + " /dev/urandom > '" + work + "/" + file + "'"})
                   .status == 0 &&
           Git("-C '" + work + "' add " + file).status == 0 &&
           Git("-C '" + work + "' commit -q -m " + file).status == 0;
  };
  const uint64_t peak_before = PeakMemory(daemon_->pid());
  ASSERT_GT(peak_before, 0u);
  ASSERT_EQ(Git("-C '" + work + "' checkout -q -b big").status, 0);
  ASSERT_TRUE(commit_random("blob.bin", 48 << 20));
  Outcome pushed = Git("-C '" + work + "' push -q origin big");
  ASSERT_EQ(pushed.status, 0) << pushed.err << ReadAll(root_ + "/serve.log");

  const std::string down = root_ + "/down";
  Outcome cloned = Git("clone -q -b big " + url + " '" + down + "'");
  ASSERT_EQ(cloned.status, 0) << cloned.err;
  auto sum = [](const std::string& file) {
    return kiln::testing::Run({"/usr/bin/sha256sum", file}).out.substr(0, 64);
  };
  EXPECT_EQ(sum(down + "/blob.bin"), sum(work + "/blob.bin"));
  const uint64_t grew = PeakMemory(daemon_->pid()) - peak_before;
  std::printf("48 MiB pushed and cloned; the daemon's peak memory grew by %.1f MiB\n",
              static_cast<double>(grew) / (1 << 20));
  EXPECT_LT(grew, uint64_t{16} << 20) << "the pack was held in memory";

  // A large pack to the protected branch: refused before git sees it, and
  // git shows why (the connection not reset under the pack still coming).
  ASSERT_TRUE(commit_random("blob2.bin", 24 << 20));
  Outcome refused = Git("-C '" + work + "' push origin HEAD:main");
  EXPECT_NE(refused.status, 0);
  EXPECT_TRUE(Contains(refused.err, "protected branch")) << refused.err;

  // A push that declares more than 2 GiB: 413 before anything is read.
  Outcome huge = kiln::testing::Run({"/usr/bin/curl", "-sS", "-o", "/dev/stdout", "-w",
                                     "%{http_code}", "-H", "Content-Length: 3221225472", "-H",
                                     "Content-Type: application/x-git-receive-pack-request",
                                     "--data-binary", "x", url + "/git-receive-pack"});
  EXPECT_TRUE(Contains(huge.out, "the push is larger than 2 GiB")) << huge.out << huge.err;
  EXPECT_TRUE(huge.out.ends_with("413")) << huge.out;

  // Not git's pkt-lines: a clear 400, and nothing moves.
  WriteAll(root_ + "/junk", "this is not a push\n");
  Outcome junk =
      kiln::testing::Run({"/usr/bin/curl", "-sS", "-o", "/dev/stdout", "-w", "%{http_code}", "-H",
                          "Content-Type: application/x-git-receive-pack-request", "--data-binary",
                          "@" + root_ + "/junk", url + "/git-receive-pack"});
  EXPECT_TRUE(Contains(junk.out, "the push's ref updates are not git pkt-lines")) << junk.out;
  EXPECT_TRUE(junk.out.ends_with("400")) << junk.out;
  EXPECT_EQ(Git("ls-remote " + url + " refs/heads/big").out.substr(0, 40),
            Git("-C '" + work + "' rev-parse HEAD~1").out.substr(0, 40));
}

}  // namespace
}  // namespace kiln::testing
