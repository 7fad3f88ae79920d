// The local forge's repositories, issues, comments, labels and events, and
// two forges on one store.
#include "controller/forge/local.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

#include "controller/forge/testutil.h"
#include "controller/store/store.h"

namespace kiln::forge {
namespace {

using testing::ForgeTest;
using testing::Git;
using testing::kRepo;
using testing::WriteText;

TEST_P(ForgeTest, CreateRepoFromADirectoryCommitsItsFiles) {
  auto repo = alice_->GetRepo(kRepo);
  ASSERT_TRUE(repo.ok()) << repo.error().message();
  EXPECT_EQ(repo->info.default_branch, "main");
  EXPECT_EQ(repo->info.clone_url, repos() + "/acme/widget.git");
  EXPECT_EQ(repo->maintainers, std::vector<std::string>{"alice"});
  EXPECT_NE(std::find(repo->info.labels.begin(), repo->info.labels.end(), "ready-to-spec"),
            repo->info.labels.end());
  EXPECT_EQ(Git(bare_, "symbolic-ref HEAD"), "refs/heads/main");
  EXPECT_EQ(Git(bare_, "ls-tree -r --name-only main"), "README.md\nsrc/main.c");
  EXPECT_EQ(Git(bare_, "show main:src/main.c"), "int main(void) {\n  return 0;\n}");
  EXPECT_EQ(Git(bare_, "log -1 --format=%an main"), "alice");
  EXPECT_EQ(EventKinds(), std::vector<std::string>{"repo.created"});
}

TEST_P(ForgeTest, CreateRepoFromAGitRepositoryImportsItsBranches) {
  const std::string src = dir_ / "src";
  kiln::git::testing::InitRepo(src);
  WriteText(src + "/a.txt", "one\n");
  const std::string first = kiln::git::testing::CommitAll(src, "first");
  Git(src, "checkout -q -b feature");
  WriteText(src + "/b.txt", "two\n");
  const std::string second = kiln::git::testing::CommitAll(src, "second");
  Git(src, "tag v1");
  WriteText(src + "/dirty.txt", "not committed\n");

  auto repo = alice_->CreateRepo("acme/imported", src, {"bob", "alice", "bob"}, "");
  ASSERT_TRUE(repo.ok()) << repo.error().message();
  // The source's current branch becomes the default; every branch and tag comes along.
  EXPECT_EQ(repo->info.default_branch, "feature");
  EXPECT_EQ(repo->maintainers, (std::vector<std::string>{"alice", "bob"}));
  const std::string bare = repo->info.clone_url;
  EXPECT_EQ(Git(bare, "rev-parse main"), first);
  EXPECT_EQ(Git(bare, "rev-parse feature"), second);
  EXPECT_EQ(Git(bare, "rev-parse v1^{commit}"), second);
  EXPECT_EQ(Git(bare, "symbolic-ref HEAD"), "refs/heads/feature");
  EXPECT_EQ(Git(bare, "ls-tree -r --name-only feature"), "a.txt\nb.txt");

  auto main = alice_->CreateRepo("acme/imported2", src, {}, "main");
  ASSERT_TRUE(main.ok()) << main.error().message();
  EXPECT_EQ(main->info.default_branch, "main");
  EXPECT_EQ(main->maintainers, std::vector<std::string>{"alice"});  // the actor by default

  auto missing = alice_->CreateRepo("acme/imported3", src, {}, "trunk");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("'trunk' is not a branch"), std::string::npos)
      << missing.error().message();
  // Nothing is left behind by the refused import.
  EXPECT_FALSE(kiln::git::testing::Exists(repos() + "/acme/imported3.git"));
  EXPECT_EQ(kiln::git::testing::List(repos() + "/acme"),
            (std::vector<std::string>{"imported.git", "imported2.git", "widget.git"}));
}

TEST_P(ForgeTest, CreateRepoRefusesBadInput) {
  auto dup = alice_->CreateRepo(kRepo, dir_ / "seed", {}, "");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message(), "repository 'acme/widget' already exists");
  auto name = alice_->CreateRepo("../escape", dir_ / "seed", {}, "");
  ASSERT_FALSE(name.ok());
  EXPECT_EQ(name.error().code(), Error::Code::kInvalidArgument);
  auto from = alice_->CreateRepo("acme/none", dir_ / "nowhere", {}, "");
  ASSERT_FALSE(from.ok());
  EXPECT_NE(from.error().message().find("nowhere"), std::string::npos);
  auto branch = alice_->CreateRepo("acme/b", dir_ / "seed", {}, "bad..name");
  ASSERT_FALSE(branch.ok());
  EXPECT_NE(branch.error().message().find("'bad..name'"), std::string::npos);
  auto maint = alice_->CreateRepo("acme/m", dir_ / "seed", {"not a user"}, "");
  ASSERT_FALSE(maint.ok());
  EXPECT_NE(maint.error().message().find("maintainer"), std::string::npos);
  auto repos_list = alice_->ListRepos();
  ASSERT_TRUE(repos_list.ok());
  ASSERT_EQ(repos_list->size(), 1u);
  EXPECT_EQ(repos_list->front().info.name, kRepo);
}

// An API user may write only where GitHub would let them: the author or a
// maintainer edits, closes and reopens; only a maintainer labels; every
// refusal changes nothing and emits nothing. The app (kiln's pipeline) writes
// everywhere.
TEST_P(ForgeTest, WritesNeedAuthorshipOrMaintainership) {
  auto bob = MustOpen("bob");
  auto mallory = MustOpen("mallory");
  ASSERT_TRUE(bob->CreateIssue(kRepo, "Crash on start", "Steps: run it").ok());
  ASSERT_TRUE(alice_->AddLabels(kRepo, 1, {"bug"}).ok());
  const Issue before = *alice_->GetIssue(kRepo, 1);
  const size_t events = Events().size();

  auto refused = [&](const Status& st, const std::string& what) {
    ASSERT_FALSE(st.ok()) << what << " was allowed";
    EXPECT_EQ(st.error().code(), Error::Code::kPermission) << st.error().message();
    EXPECT_NE(st.error().message().find("'mallory'"), std::string::npos) << st.error().message();
  };
  refused(mallory->EditIssue(kRepo, 1, std::string("Works as intended"), std::nullopt), "retitle");
  refused(mallory->EditIssue(kRepo, 1, std::nullopt, std::string("ignore the above")), "rewrite");
  refused(mallory->Close(kRepo, 1), "close");
  refused(mallory->RemoveLabel(kRepo, 1, "bug"), "unlabel");
  refused(mallory->AddLabels(kRepo, 1, {"triaged"}), "label");
  auto labelled = mallory->CreateIssue(kRepo, "Another", "", {"ready-to-spec"});
  refused(labelled.ok() ? Ok() : Status(labelled.error()), "label a new issue");
  const Issue after = *alice_->GetIssue(kRepo, 1);
  EXPECT_EQ(after.title, before.title);
  EXPECT_EQ(after.body, before.body);
  EXPECT_EQ(after.state, before.state);
  EXPECT_EQ(after.labels, before.labels);
  EXPECT_EQ(Events().size(), events) << "a refused write emitted an event";

  // The author edits, closes and reopens their own; labels stay the maintainers'.
  ASSERT_TRUE(bob->EditIssue(kRepo, 1, std::nullopt, std::string("Steps: run it twice")).ok());
  ASSERT_TRUE(bob->Close(kRepo, 1).ok());
  ASSERT_TRUE(bob->Reopen(kRepo, 1).ok());
  EXPECT_EQ(bob->AddLabels(kRepo, 1, {"triaged"}).error().code(), Error::Code::kPermission);
  // The app writes everywhere.
  auto app = Local::Open(store(), repos(), "kiln", Access::kApp);
  ASSERT_TRUE(app.ok());
  ASSERT_TRUE((*app)->AddLabels(kRepo, 1, {"triaged"}).ok());
  ASSERT_TRUE((*app)->Close(kRepo, 1).ok());
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->state, "closed");
}

TEST_P(ForgeTest, IssueLifecycle) {
  auto bob = MustOpen("bob");
  auto issue = bob->CreateIssue(kRepo, "Crash on start", "Steps:\n1. run it\n", {});
  ASSERT_TRUE(issue.ok()) << issue.error().message();
  EXPECT_EQ(issue->number, 1);
  EXPECT_FALSE(issue->is_pull);
  EXPECT_EQ(issue->author, "bob");
  EXPECT_EQ(issue->state, "open");
  EXPECT_GT(issue->created_ms, 0);
  ASSERT_TRUE(alice_->AddLabels(kRepo, 1, {"bug"}).ok());  // the maintainer labels it
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->labels, std::vector<std::string>{"bug"});

  auto got = alice_->GetIssue(kRepo, 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->title, "Crash on start");
  EXPECT_EQ(got->body, "Steps:\n1. run it\n");

  ASSERT_TRUE(alice_->EditIssue(kRepo, 1, std::string("Crash on start-up"), std::nullopt).ok());
  ASSERT_TRUE(alice_->Close(kRepo, 1).ok());
  ASSERT_TRUE(alice_->Close(kRepo, 1).ok());  // again: nothing changes
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->state, "closed");
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->title, "Crash on start-up");

  IssueFilter open;
  EXPECT_TRUE(alice_->ListIssues(kRepo, open)->empty());
  IssueFilter closed;
  closed.state = "closed";
  ASSERT_EQ(alice_->ListIssues(kRepo, closed)->size(), 1u);

  ASSERT_TRUE(bob->Reopen(kRepo, 1).ok());
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->state, "open");
  EXPECT_EQ(EventKinds(1),
            (std::vector<std::string>{"issue.opened #1", "issue.labeled #1", "issue.edited #1",
                                      "issue.closed #1", "issue.reopened #1"}));
  auto events = Events();
  EXPECT_EQ(events[1].actor, "bob");
  EXPECT_EQ(events[2].actor, "alice");
  EXPECT_EQ(events[2].payload["label"], "bug");
  EXPECT_EQ(events[4].actor, "alice");
  EXPECT_EQ(events[1].source, "local");
  EXPECT_EQ(events[1].delivery.rfind("local-", 0), 0u);
}

TEST_P(ForgeTest, IssueListFilters) {
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "one", "", {"bug"}).ok());
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "two", "", {"enhancement", "area:ui"}).ok());
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "three", "").ok());
  ASSERT_TRUE(alice_->Close(kRepo, 3).ok());
  auto titles = [&](const IssueFilter& f) {
    std::vector<std::string> out;
    auto list = alice_->ListIssues(kRepo, f);
    EXPECT_TRUE(list.ok()) << list.error().message();
    for (const auto& i : *list) out.push_back(i.title);
    return out;
  };
  IssueFilter f;
  EXPECT_EQ(titles(f), (std::vector<std::string>{"one", "two"}));
  f.label = "area:ui";
  EXPECT_EQ(titles(f), (std::vector<std::string>{"two"}));
  f.label = "";
  f.state = "all";
  EXPECT_EQ(titles(f), (std::vector<std::string>{"one", "two", "three"}));
  f.state = "shut";
  auto bad = alice_->ListIssues(kRepo, f);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Error::Code::kInvalidArgument);
}

TEST_P(ForgeTest, IssuesAndPullsShareNumbers) {
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "first", "").ok());
  const std::string c = Commit("topic", "main", {{"x.txt", "x\n"}}, "add x");
  ASSERT_TRUE(Push("topic", c).ok());
  auto pull = alice_->OpenPull(kRepo, "Add x", "", "topic", "");
  ASSERT_TRUE(pull.ok()) << pull.error().message();
  EXPECT_EQ(pull->issue.number, 2);
  auto third = alice_->CreateIssue(kRepo, "third", "");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->number, 3);
  // The pull request is an issue too; issue-only listings leave it out.
  auto as_issue = alice_->GetIssue(kRepo, 2);
  ASSERT_TRUE(as_issue.ok());
  EXPECT_TRUE(as_issue->is_pull);
  IssueFilter only_issues;
  only_issues.kind = IssueFilter::Kind::kIssues;
  EXPECT_EQ(alice_->ListIssues(kRepo, only_issues)->size(), 2u);
  auto not_pull = alice_->GetPull(kRepo, 1);
  ASSERT_FALSE(not_pull.ok());
  EXPECT_EQ(not_pull.error().message(),
            "pull request #1 not found in 'acme/widget' (#1 is an issue)");
}

TEST_P(ForgeTest, LabelsOutsideTheSetAreRefused) {
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "t", "").ok());
  const size_t before = EventCount();
  auto st = alice_->AddLabels(kRepo, 1, {"triaged", "wontfix"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Error::Code::kInvalidArgument);
  EXPECT_NE(st.error().message().find("label 'wontfix' is not in the label set of 'acme/widget'"),
            std::string::npos)
      << st.error().message();
  // All or nothing: 'triaged' was not added either.
  EXPECT_TRUE(alice_->GetIssue(kRepo, 1)->labels.empty());
  EXPECT_EQ(EventCount(), before);
  auto created = alice_->CreateIssue(kRepo, "u", "", {"nope"});
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(alice_->ListIssues(kRepo, IssueFilter{})->size(), 1u);  // no issue #2
  EXPECT_FALSE(alice_->RemoveLabel(kRepo, 1, "nope").ok());
}

TEST_P(ForgeTest, LabelsAddAndRemove) {
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "t", "").ok());
  const size_t before = EventCount();
  ASSERT_TRUE(alice_->AddLabels(kRepo, 1, {"triaged", "area:core"}).ok());
  ASSERT_TRUE(alice_->AddLabels(kRepo, 1, {"triaged"}).ok());  // already there: no event
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->labels, (std::vector<std::string>{"area:core", "triaged"}));
  ASSERT_TRUE(alice_->RemoveLabel(kRepo, 1, "triaged").ok());
  ASSERT_TRUE(alice_->RemoveLabel(kRepo, 1, "triaged").ok());  // not there: no event
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->labels, std::vector<std::string>{"area:core"});
  EXPECT_EQ(EventKinds(before), (std::vector<std::string>{"issue.labeled #1", "issue.labeled #1",
                                                          "issue.unlabeled #1"}));
  auto events = Events();
  EXPECT_EQ(events[before].payload["label"], "triaged");
  EXPECT_EQ(events[before + 1].payload["label"], "area:core");
  EXPECT_EQ(events[before + 2].payload["label"], "triaged");
}

TEST_P(ForgeTest, CommentsAreEditedInPlace) {
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "t", "").ok());
  auto bot = MustOpen("kiln[bot]");
  auto c = bot->AddComment(kRepo, 1, "Triage: working on it");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->author, "kiln[bot]");
  auto other = MustOpen("mallory");
  ASSERT_TRUE(other->AddComment(kRepo, 1, "first!").ok());
  ASSERT_TRUE(bot->EditComment(kRepo, c->id, "Triage: done, labelled bug").ok());

  auto comments = alice_->Comments(kRepo, 1);
  ASSERT_TRUE(comments.ok());
  ASSERT_EQ(comments->size(), 2u);
  EXPECT_EQ((*comments)[0].id, c->id);  // same comment, same place
  EXPECT_EQ((*comments)[0].body, "Triage: done, labelled bug");
  EXPECT_GE((*comments)[0].updated_ms, (*comments)[0].created_ms);
  EXPECT_EQ((*comments)[1].body, "first!");

  // Someone else's comment: only its author or a maintainer may edit it.
  auto denied = other->EditComment(kRepo, c->id, "hijacked");
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code(), Error::Code::kPermission);
  EXPECT_TRUE(alice_->EditComment(kRepo, c->id, "fixed typo by a maintainer").ok());
  EXPECT_EQ(alice_->Comments(kRepo, 1)->front().body, "fixed typo by a maintainer");

  auto missing = bot->EditComment(kRepo, 999, "x");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(), "comment 999 not found in 'acme/widget'");
  EXPECT_FALSE(bot->AddComment(kRepo, 1, "  \n").ok());

  auto kinds = EventKinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "comment.created #1"), 2);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "comment.edited #1"), 2);
  auto events = Events();
  auto created = std::find_if(events.begin(), events.end(),
                              [](const Event& e) { return e.kind == "comment.created"; });
  ASSERT_NE(created, events.end());
  EXPECT_EQ(created->payload["comment_id"], c->id);
  EXPECT_EQ(created->payload["body"], "Triage: working on it");
}

TEST_P(ForgeTest, UnknownRepositoryAndIssueAndEmptyTitle) {
  auto repo = alice_->GetIssue("acme/nothing", 1);
  ASSERT_FALSE(repo.ok());
  EXPECT_EQ(repo.error().code(), Error::Code::kNotFound);
  EXPECT_EQ(repo.error().message(), "repository 'acme/nothing' not found");
  auto issue = alice_->GetIssue(kRepo, 42);
  ASSERT_FALSE(issue.ok());
  EXPECT_EQ(issue.error().code(), Error::Code::kNotFound);
  EXPECT_EQ(issue.error().message(), "issue #42 not found in 'acme/widget'");
  EXPECT_FALSE(alice_->AddComment(kRepo, 42, "hi").ok());
  EXPECT_FALSE(alice_->AddLabels(kRepo, 42, {"bug"}).ok());
  EXPECT_FALSE(alice_->Close(kRepo, 42).ok());
  auto empty = alice_->CreateIssue(kRepo, "   ", "body");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), Error::Code::kInvalidArgument);
  EXPECT_EQ(empty.error().message(), "the title is empty");
  EXPECT_FALSE(alice_->CreateIssue("acme/nothing", "t", "").ok());
  EXPECT_FALSE(Local::Open(store(), repos(), "").ok());
  EXPECT_EQ(EventKinds(), std::vector<std::string>{"repo.created"});  // nothing else written
}

TEST_P(ForgeTest, TrustIsMaintainership) {
  EXPECT_TRUE(*alice_->IsTrusted(kRepo, "alice"));
  EXPECT_FALSE(*alice_->IsTrusted(kRepo, "mallory"));
  EXPECT_FALSE(alice_->IsTrusted("acme/nothing", "alice").ok());
  EXPECT_EQ(alice_->kind(), "local");
  EXPECT_EQ(alice_->actor(), "alice");
}

TEST_P(ForgeTest, TwoForgesOnOneStoreNumberWithoutGapsOrRepeats) {
  auto other = MustOpen("bob");
  constexpr int kPerThread = 25;
  std::vector<int64_t> a, b;
  std::thread t1([&] {
    for (int i = 0; i < kPerThread; ++i) {
      auto r = alice_->CreateIssue(kRepo, "from alice " + std::to_string(i), "");
      ASSERT_TRUE(r.ok()) << r.error().message();
      a.push_back(r->number);
    }
  });
  std::thread t2([&] {
    for (int i = 0; i < kPerThread; ++i) {
      auto r = other->CreateIssue(kRepo, "from bob " + std::to_string(i), "");
      ASSERT_TRUE(r.ok()) << r.error().message();
      b.push_back(r->number);
    }
  });
  t1.join();
  t2.join();
  std::set<int64_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  ASSERT_EQ(all.size(), 2u * kPerThread);
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), 2 * kPerThread);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  // One issue.opened per issue, each with its own delivery.
  auto events = Events();
  std::set<std::string> deliveries;
  int opened = 0;
  for (const auto& e : events) {
    deliveries.insert(e.delivery);
    opened += e.kind == "issue.opened";
  }
  EXPECT_EQ(opened, 2 * kPerThread);
  EXPECT_EQ(deliveries.size(), events.size());
}

TEST_P(ForgeTest, SharesTheFileWithTheRunStore) {
  // The run store opens the same file and finds its own tables beside the forge's.
  auto runs = store::Open(store());
  ASSERT_TRUE(runs.ok()) << runs.error().message();
  store::RunRequest req;
  req.role = "triage";
  req.repo = kRepo;
  req.commit = "main";
  req.task = "triage #1";
  req.requested_by = "test";
  ASSERT_TRUE((*runs)->Enqueue(req, 1).ok());
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "still works", "").ok());
  EXPECT_EQ((*runs)->List({})->size(), 1u);
}

KILN_FORGE_ON_BOTH_BACKENDS(ForgeTest);

}  // namespace
}  // namespace kiln::forge
