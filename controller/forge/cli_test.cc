// The verbs end to end: kiln-forge-cli (the forge's verbs as `kiln` has
// them) run as a user would, checking exit status, stdout and stderr.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "base/digest.h"
#include "controller/forge/testutil.h"
#include "controller/forge/users.h"

namespace kiln::forge {
namespace {

using ::kiln::testing::TempDir;
using nlohmann::json;
using testing::Git;
using testing::ShQuote;

struct Outcome {
  int status = -1;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("kiln.yaml", "state_dir: " + dir_.path() + "/state\n");
    dir_.Write("seed/README.md", "# gadget\n");
  }

  // Runs the CLI with args (already quoted for sh) as user.
  Outcome Kiln(const std::string& args, const std::string& user = "alice") {
    const std::string out = dir_ / "out", err = dir_ / "err";
    const std::string cmd = "KILN_USER=" + user + " " + std::string(KILN_FORGE_CLI) + " " + args +
                            " >" + ShQuote(out) + " 2>" + ShQuote(err);
    Outcome r;
    int status = std::system(cmd.c_str());
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = dir_.Read("out");
    r.err = dir_.Read("err");
    return r;
  }
  // Kiln with --config added after the verb's words.
  Outcome K(const std::string& verb, const std::string& rest = "",
            const std::string& user = "alice") {
    return Kiln(verb + " --config " + ShQuote(dir_ / "kiln.yaml") + " " + rest, user);
  }

  void Init() {
    Outcome r =
        K("forge init acme/gadget", "--from " + ShQuote(dir_ / "seed") + " --maintainer alice");
    ASSERT_EQ(r.status, 0) << r.err;
  }

  TempDir dir_;
};

TEST_F(CliTest, ForgeInitReposAndUsers) {
  Outcome init = K("forge init acme/gadget", "--from " + ShQuote(dir_ / "seed"));
  ASSERT_EQ(init.status, 0) << init.err;
  const std::string bare = dir_.path() + "/state/forge/repos/acme/gadget.git";
  EXPECT_EQ(init.out,
            "created acme/gadget at " + bare + " (default branch main; maintainers alice)\n");
  EXPECT_EQ(Git(bare, "show main:README.md"), "# gadget");

  Outcome again = K("forge init acme/gadget", "--from " + ShQuote(dir_ / "seed"));
  EXPECT_EQ(again.status, 2);
  EXPECT_EQ(again.err, "kiln: error: repository 'acme/gadget' already exists\n");

  Outcome repos = K("forge repos", "--json");
  ASSERT_EQ(repos.status, 0) << repos.err;
  json list = json::parse(repos.out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["full_name"], "acme/gadget");
  EXPECT_EQ(list[0]["clone_url"], bare);

  Outcome add = K("forge user add", "carol");
  ASSERT_EQ(add.status, 0) << add.err;
  ASSERT_EQ(add.out.size(), 5u + 64u + 1u);  // kiln_<64 hex>\n
  EXPECT_EQ(add.out.rfind("kiln_", 0), 0u);
  EXPECT_NE(add.err.find("shown only this once"), std::string::npos);
  auto users = Users::Open(dir_.path() + "/state/kiln.db");
  ASSERT_TRUE(users.ok());
  EXPECT_EQ((*users)->Authenticate(add.out.substr(0, add.out.size() - 1))->value_or(""), "carol");
  EXPECT_EQ(K("forge user add", "carol").status, 2);
  Outcome rotated = K("forge user add", "carol --rotate");
  ASSERT_EQ(rotated.status, 0);
  EXPECT_FALSE((*users)->Authenticate(add.out.substr(0, add.out.size() - 1))->has_value());
  // The store keeps the token's SHA-256, never the token.
  const std::string stored = dir_.Read("state/kiln.db") + dir_.Read("state/kiln.db-wal");
  EXPECT_EQ(stored.find(rotated.out.substr(0, 69)), std::string::npos);
  EXPECT_NE(stored.find(Sha256Hex(rotated.out.substr(0, 69))), std::string::npos);
  // The pipeline's bot (pipeline.bot, "kiln" by default) authors kiln's pull
  // requests: no API user may be it.
  Outcome bot = K("forge user add", "kiln");
  EXPECT_EQ(bot.status, 2);
  EXPECT_NE(bot.err.find("'kiln' is the pipeline's bot"), std::string::npos) << bot.err;
  EXPECT_EQ(bot.out, "");
}

TEST_F(CliTest, IssueVerbs) {
  Init();
  dir_.Write("body.md", "It crashes.\n\nEvery time.\n");
  Outcome created =
      K("issue new",
        "--repo acme/gadget --title 'Crash on start' --body-file " + ShQuote(dir_ / "body.md"),
        "bob");
  ASSERT_EQ(created.status, 0) << created.err;
  EXPECT_EQ(created.out, "acme/gadget#1\n");

  Outcome label = K("issue label", "--repo acme/gadget 1 --add triaged area:core --remove bug");
  ASSERT_EQ(label.status, 0) << label.err;
  EXPECT_EQ(label.out, "#1 labels: area:core, triaged\n");
  Outcome outside = K("issue label", "--repo acme/gadget 1 --add wontfix");
  EXPECT_EQ(outside.status, 2);
  EXPECT_NE(outside.err.find("kiln: error: label 'wontfix' is not in the label set"),
            std::string::npos)
      << outside.err;

  Outcome comment = K("issue comment", "--repo acme/gadget 1 --body 'Looking into it'");
  ASSERT_EQ(comment.status, 0) << comment.err;
  EXPECT_EQ(comment.out, "comment 1 on #1\n");
  Outcome edit = K("issue comment", "--repo acme/gadget 1 --edit 1 --body 'Found it'");
  ASSERT_EQ(edit.status, 0) << edit.err;

  Outcome show = K("issue show", "--repo acme/gadget 1");
  ASSERT_EQ(show.status, 0) << show.err;
  EXPECT_EQ(show.out.rfind("#1 Crash on start\nstate    open\nauthor   bob\n"
                           "labels   area:core, triaged\n",
                           0),
            0u)
      << show.out;
  EXPECT_NE(show.out.find("  It crashes.\n  \n  Every time.\n"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("--- comment 1 by alice"), std::string::npos);
  EXPECT_NE(show.out.find("  Found it\n"), std::string::npos);
  EXPECT_EQ(show.out.find("Looking into it"), std::string::npos);

  Outcome json_show = K("issue show", "--repo acme/gadget 1 --json");
  ASSERT_EQ(json_show.status, 0);
  json j = json::parse(json_show.out);
  EXPECT_EQ(j["number"], 1);
  EXPECT_EQ(j["comments"][0]["body"], "Found it");

  Outcome list = K("issue list", "--repo acme/gadget --label triaged");
  ASSERT_EQ(list.status, 0);
  EXPECT_NE(list.out.find("#1     open    bob"), std::string::npos) << list.out;
  Outcome close = K("issue close", "--repo acme/gadget 1");
  ASSERT_EQ(close.status, 0);
  EXPECT_EQ(close.out, "#1 is closed\n");
  EXPECT_EQ(json::parse(K("issue list", "--repo acme/gadget --json").out).size(), 0u);
  EXPECT_EQ(json::parse(K("issue list", "--repo acme/gadget --state all --json").out).size(), 1u);

  Outcome events = K("forge events", "--repo acme/gadget --json");
  ASSERT_EQ(events.status, 0);
  json ev = json::parse(events.out);
  std::vector<std::string> kinds;
  for (auto it = ev.rbegin(); it != ev.rend(); ++it) kinds.push_back((*it)["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"repo.created", "issue.opened", "issue.labeled",
                                             "issue.labeled", "comment.created", "comment.edited",
                                             "issue.closed"}));
}

// What API users write reaches a maintainer's terminal: an escape sequence
// there (a window title, a line erase, a carriage return that overwrites the
// state line, a bidi override) is shown, never obeyed, in every verb.
TEST_F(CliTest, UsersTextIsEscapedForTheTerminal) {
  Init();
  dir_.Write("title", "Crash\x1b]0;pwned\x07\x1b[2K");
  dir_.Write("body.md",
             "line one\n\x1b[2K\x1b[1Agone\n\xe2\x80\xae"
             "evil\n");
  ASSERT_EQ(K("issue new",
              "--repo acme/gadget --title \"$(cat " + ShQuote(dir_ / "title") + ")\" --body-file " +
                  ShQuote(dir_ / "body.md"),
              "bob")
                .status,
            0);
  ASSERT_EQ(K("issue comment", "--repo acme/gadget 1 --body \"$(printf 'hi\\033[31m red\\rfake')\"")
                .status,
            0);
  for (const std::string args :
       {"list --repo acme/gadget", "show --repo acme/gadget 1", "list --repo acme/gadget --json",
        "show --repo acme/gadget 1 --json"}) {
    Outcome r = K("issue " + args.substr(0, 4), args.substr(5));
    ASSERT_EQ(r.status, 0) << args << ": " << r.err;
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << args << " printed an escape:\n" << r.out;
    EXPECT_EQ(r.out.find('\r'), std::string::npos) << args;
    EXPECT_EQ(r.out.find("\xe2\x80\xae"), std::string::npos) << args;
    EXPECT_NE(r.out.find("]0;pwned"), std::string::npos) << args << ": the title is still shown";
  }
  Outcome show = K("issue show", "--repo acme/gadget 1");
  EXPECT_EQ(show.out.rfind("#1 Crash\\x1b]0;pwned\\x07\\x1b[2K\nstate    open\n", 0), 0u)
      << show.out;
  EXPECT_NE(show.out.find("\\u202eevil"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("hi\\x1b[31m red\\rfake"), std::string::npos) << show.out;
  // The JSON keeps the values, as JSON escapes.
  json j = json::parse(K("issue show", "--repo acme/gadget 1 --json").out);
  EXPECT_EQ(j["title"], "Crash\x1b]0;pwned\x07\x1b[2K");
}

TEST_F(CliTest, ExitStatusesAndMessages) {
  Init();
  Outcome unknown = K("issue show", "--repo acme/gadget 7");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_EQ(unknown.err, "kiln: error: issue #7 not found in 'acme/gadget'\n");
  EXPECT_EQ(unknown.out, "");
  Outcome repo = K("issue list", "--repo acme/nope");
  EXPECT_EQ(repo.status, 1);
  EXPECT_EQ(repo.err, "kiln: error: repository 'acme/nope' not found\n");
  Outcome empty = K("issue new", "--repo acme/gadget --title ''");
  EXPECT_EQ(empty.status, 2);
  EXPECT_EQ(empty.err, "kiln: error: the title is empty\n");
  Outcome both = K("issue new", "--repo acme/gadget --title t --body b --body-file /dev/null");
  EXPECT_EQ(both.status, 2);
  EXPECT_EQ(K("issue new", "--title t").status, 2);            // --repo is required
  EXPECT_EQ(K("issue show", "--repo acme/gadget").status, 2);  // the number too
  EXPECT_EQ(K("issue list", "--repo acme/gadget --state shut").status, 2);
  EXPECT_EQ(K("issue label", "--repo acme/gadget 1").status, 2);
  Outcome config = Kiln("issue list --repo acme/gadget --config " + ShQuote(dir_ / "missing.yaml"));
  EXPECT_EQ(config.status, 1);
  EXPECT_NE(config.err.find("missing.yaml"), std::string::npos);
  Outcome noverb = Kiln("issue");
  EXPECT_EQ(noverb.status, 2);
}

TEST_F(CliTest, PullRequestVerbs) {
  Init();
  const std::string bare = dir_.path() + "/state/forge/repos/acme/gadget.git";
  // A developer pushes a branch with plain git, then opens a pull request.
  Git(dir_.path(), "clone -q " + ShQuote(bare) + " work");
  const std::string work = dir_ / "work";
  Git(work, "checkout -q -b fix");
  dir_.Write("work/README.md", "# gadget\n\nFixed.\n");
  Git(work, "commit -qam 'fix readme'");
  Git(work, "push -q origin fix");
  const std::string head = Git(work, "rev-parse HEAD");
  Outcome issue = K("issue new", "--repo acme/gadget --title 'README is wrong'", "bob");
  ASSERT_EQ(issue.status, 0) << issue.err;

  Outcome opened = K(
      "pr new", "--repo acme/gadget --head fix --title 'Fix the README' --body 'Fixes #1'", "bob");
  ASSERT_EQ(opened.status, 0) << opened.err;
  EXPECT_EQ(opened.out, "acme/gadget#2\n");

  Outcome diff = K("pr diff", "--repo acme/gadget 2");
  ASSERT_EQ(diff.status, 0) << diff.err;
  EXPECT_NE(diff.out.find("+Fixed."), std::string::npos) << diff.out;
  EXPECT_NE(diff.out.find("--- a/README.md"), std::string::npos);

  Outcome approve = K("pr approve", "--repo acme/gadget 2 --body 'Looks right'");
  ASSERT_EQ(approve.status, 0) << approve.err;
  EXPECT_EQ(approve.out.rfind("#2 approved at " + head.substr(0, 12), 0), 0u) << approve.out;

  {
    // Inline comments, one on a range of lines, written as the API would.
    auto bob = Local::Open(dir_ / "state/kiln.db", dir_ / "state/forge/repos", "bob");
    ASSERT_TRUE(bob.ok()) << bob.error().message();
    ReviewComment range{"README.md", 3, "RIGHT", "minor", "these lines"};
    range.start_line = 1;
    range.start_side = "RIGHT";
    Review r;
    r.verdict = "comment";
    r.comments = {{"README.md", 3, "RIGHT", "nit", "this line"}, range};
    auto added = (*bob)->AddReview("acme/gadget", 2, r);
    ASSERT_TRUE(added.ok()) << added.error().message();
  }
  Outcome show = K("pr show", "--repo acme/gadget 2");
  ASSERT_EQ(show.status, 0) << show.err;
  EXPECT_NE(show.out.find("    README.md:3 (RIGHT), nit: this line\n"
                          "    README.md:1-3 (RIGHT), minor: these lines\n"),
            std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("head     fix @ " + head), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("base     main @ "), std::string::npos);
  EXPECT_NE(show.out.find("review 1 by alice: approve at " + head.substr(0, 12)), std::string::npos)
      << show.out;
  EXPECT_NE(show.out.find("    Looks right\n"), std::string::npos);
  json pj = json::parse(K("pr show", "--repo acme/gadget 2 --json").out);
  EXPECT_EQ(pj["head"]["sha"], head);
  EXPECT_EQ(pj["reviews"][0]["state"], "APPROVED");

  Outcome not_maintainer = K("pr merge", "--repo acme/gadget 2", "bob");
  EXPECT_EQ(not_maintainer.status, 1);
  EXPECT_NE(not_maintainer.err.find("'bob' is not a maintainer of 'acme/gadget'"),
            std::string::npos);
  Outcome merged = K("pr merge", "--repo acme/gadget 2");
  ASSERT_EQ(merged.status, 0) << merged.err;
  EXPECT_EQ(merged.out, "#2 merged into main: " + head + "\n");
  EXPECT_EQ(Git(bare, "rev-parse main"), head);
  json issue1 = json::parse(K("issue show", "--repo acme/gadget 1 --json").out);
  EXPECT_EQ(issue1["state"], "closed");  // "Fixes #1"
  Outcome list = K("pr list", "--repo acme/gadget --state merged");
  EXPECT_NE(list.out.find("#2     merged  bob          fix -> main"), std::string::npos)
      << list.out;
  Outcome not_pull = K("pr show", "--repo acme/gadget 1");
  EXPECT_EQ(not_pull.status, 1);
  EXPECT_EQ(not_pull.err,
            "kiln: error: pull request #1 not found in 'acme/gadget' (#1 is an issue)\n");
}

}  // namespace
}  // namespace kiln::forge
