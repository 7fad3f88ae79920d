// The local forge's pull requests: opening, pushes, reviews, statuses,
// merges (fast-forward, merge commit, conflict) and diffs.
#include <gtest/gtest.h>

#include <algorithm>

#include "controller/forge/local.h"
#include "controller/forge/testutil.h"

namespace kiln::forge {
namespace {

using testing::ForgeTest;
using testing::Git;
using testing::kRepo;

class PullTest : public ForgeTest {
 protected:
  void SetUp() override {
    ForgeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (HasFatalFailure()) return;
    main_ = BareSha("main");
    feature_ = Commit("feature", "main", {{"src/main.c", "int main(void) {\n  return 1;\n}\n"}},
                      "return 1");
    ASSERT_TRUE(Push("feature", feature_).ok());
  }

  // A contributor's pull request, which the maintainer (alice) reviews and
  // merges: no one approves their own.
  PullRequest MustOpenPull(const std::string& body = "") {
    auto p = MustOpen("dave")->OpenPull(kRepo, "Return 1", body, "feature", "main");
    EXPECT_TRUE(p.ok()) << p.error().message();
    return p.ok() ? *p : PullRequest{};
  }

  std::string main_;
  std::string feature_;
};

TEST_P(PullTest, OpenReadsShasFromTheRepository) {
  PullRequest p = MustOpenPull("Fixes nothing");
  EXPECT_EQ(p.issue.number, 1);
  EXPECT_TRUE(p.issue.is_pull);
  EXPECT_EQ(p.head_branch, "feature");
  EXPECT_EQ(p.base_branch, "main");
  EXPECT_EQ(p.head_sha, feature_);
  EXPECT_EQ(p.base_sha, main_);
  EXPECT_TRUE(p.merged_sha.empty());
  auto found = alice_->FindPull(kRepo, "feature");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->issue.number, 1);
  EXPECT_FALSE(alice_->FindPull(kRepo, "other")->has_value());
  auto events = Events();
  ASSERT_EQ(events.back().kind, "pull.opened");
  EXPECT_EQ(events.back().payload["head_branch"], "feature");
  EXPECT_EQ(events.back().payload["base_branch"], "main");
  EXPECT_EQ(events.back().payload["head_sha"], feature_);
}

// As GitHub: an author's own verdict would count as a review; a comment is
// fine. Statuses and merges are for maintainers.
TEST_P(PullTest, NoOneApprovesTheirOwnPullRequest) {
  MustOpenPull();
  auto dave = MustOpen("dave");
  for (const char* verdict : {"approve", "request_changes"}) {
    Review own;
    own.verdict = verdict;
    own.body = "my verdict";
    auto r = dave->AddReview(kRepo, 1, own);
    ASSERT_FALSE(r.ok()) << verdict;
    EXPECT_EQ(r.error().code(), Error::Code::kInvalidArgument);
    EXPECT_NE(r.error().message().find(std::string(verdict) == "approve"
                                           ? "Can not approve your own pull request"
                                           : "Can not request changes on your own pull request"),
              std::string::npos)
        << r.error().message();
  }
  Review remark;
  remark.verdict = "comment";
  remark.body = "a note to myself";
  EXPECT_TRUE(dave->AddReview(kRepo, 1, remark).ok());
  EXPECT_EQ(alice_->Reviews(kRepo, 1)->size(), 1u);

  CommitStatus green{"kiln/verify", "success", "all tests pass", "", 0};
  EXPECT_EQ(dave->SetStatus(kRepo, feature_, green).error().code(), Error::Code::kPermission);
  EXPECT_TRUE(alice_->Statuses(kRepo, feature_)->empty()) << "a forged verify gate";
  EXPECT_EQ(dave->Merge(kRepo, 1).error().code(), Error::Code::kPermission);
  EXPECT_TRUE(alice_->SetStatus(kRepo, feature_, green).ok());
  // Branches through the forge are the maintainers' (people push with git).
  EXPECT_EQ(dave->DeleteBranch(kRepo, "feature").error().code(), Error::Code::kPermission);
  EXPECT_EQ(dave->PushBranch(kRepo, "other", work() + "/.git", feature_, false).error().code(),
            Error::Code::kPermission);
  EXPECT_EQ(alice_->DeleteBranch(kRepo, "main").error().code(), Error::Code::kInvalidArgument);
  EXPECT_TRUE(alice_->BranchSha(kRepo, "main")->has_value());
}

TEST_P(PullTest, OpenRefusesBadBranches) {
  auto same = alice_->OpenPull(kRepo, "t", "", "main", "main");
  ASSERT_FALSE(same.ok());
  EXPECT_NE(same.error().message().find("nothing to merge"), std::string::npos);
  auto missing = alice_->OpenPull(kRepo, "t", "", "nope", "");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(), "head branch 'nope' not found in 'acme/widget'");
  ASSERT_TRUE(Push("old", main_).ok());
  auto empty = alice_->OpenPull(kRepo, "t", "", "old", "");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message().find("no commits between 'main' and 'old'"), std::string::npos);
  MustOpenPull();
  auto twice = alice_->OpenPull(kRepo, "again", "", "feature", "main");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().message().find("pull request #1"), std::string::npos);
  auto title = alice_->OpenPull(kRepo, "", "", "feature", "main");
  ASSERT_FALSE(title.ok());
  EXPECT_EQ(title.error().message(), "the title is empty");
}

TEST_P(PullTest, PushBranchMovesTheBranchAndSynchronizesItsPull) {
  MustOpenPull();
  const size_t before = EventCount();
  const std::string next = Commit("feature", "feature", {{"NEWS", "return 1 now\n"}}, "add news");
  ASSERT_TRUE(Push("feature", next).ok());
  EXPECT_EQ(BareSha("feature"), next);
  auto p = alice_->GetPull(kRepo, 1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->head_sha, next);
  EXPECT_EQ(EventKinds(before), (std::vector<std::string>{"push #1", "pull.synchronized #1"}));
  auto events = Events();
  EXPECT_EQ(events.back().payload["head_sha"], next);
  EXPECT_EQ(events.back().payload["head_branch"], "feature");
  EXPECT_EQ(events[before].payload["before"], feature_);
  EXPECT_EQ(events[before].payload["after"], next);

  // The same commit again moves nothing and says nothing.
  ASSERT_TRUE(Push("feature", next).ok());
  EXPECT_EQ(EventCount(), before + 2);

  // A push to a branch without a pull request is a push, no more.
  const std::string other = Commit("other", "main", {{"o.txt", "o\n"}}, "other");
  ASSERT_TRUE(Push("other", other).ok());
  EXPECT_EQ(EventKinds(before + 2), std::vector<std::string>{"push"});
}

TEST_P(PullTest, PushBranchNeedsForceToRewrite) {
  const std::string rewritten = Commit("rewrite", "main", {{"r.txt", "r\n"}}, "rewrite");
  auto st = Push("feature", rewritten);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("'feature'"), std::string::npos) << st.error().message();
  EXPECT_EQ(BareSha("feature"), feature_);
  ASSERT_TRUE(Push("feature", rewritten, /*force=*/true).ok());
  EXPECT_EQ(BareSha("feature"), rewritten);
  auto events = Events();
  EXPECT_EQ(events.back().kind, "push");
  EXPECT_EQ(events.back().payload["forced"], true);
  EXPECT_FALSE(alice_->PushBranch("acme/nothing", "x", work() + "/.git", rewritten, false).ok());
  EXPECT_FALSE(alice_->PushBranch(kRepo, "bad..branch", work() + "/.git", rewritten, false).ok());
}

TEST_P(PullTest, DeleteBranchRefusesAnOpenPullsHeadAndRecordsTheDeletion) {
  MustOpenPull();
  Status refused = alice_->DeleteBranch(kRepo, "feature");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Error::Code::kInvalidArgument);
  EXPECT_NE(refused.error().message().find("open pull request #1"), std::string::npos);
  EXPECT_EQ(BareSha("feature"), feature_);

  ASSERT_TRUE(alice_->Close(kRepo, 1).ok());
  const size_t before = EventCount();
  auto sha = alice_->BranchSha(kRepo, "feature");
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(*sha, std::optional<std::string>(feature_));
  ASSERT_TRUE(alice_->DeleteBranch(kRepo, "feature").ok());
  sha = alice_->BranchSha(kRepo, "feature");
  ASSERT_TRUE(sha.ok());
  EXPECT_FALSE(sha->has_value());
  EXPECT_EQ(EventKinds(before), std::vector<std::string>{"push"});
  EXPECT_EQ(Events().back().payload["deleted"], true);
  EXPECT_EQ(Events().back().payload["before"], feature_);
  Status gone = alice_->DeleteBranch(kRepo, "feature");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), Error::Code::kNotFound);
}

TEST_P(PullTest, MergeFastForwards) {
  MustOpenPull();
  auto merged = alice_->Merge(kRepo, 1);
  ASSERT_TRUE(merged.ok()) << merged.error().message();
  EXPECT_EQ(merged->issue.state, "merged");
  EXPECT_EQ(merged->merged_sha, feature_);
  EXPECT_EQ(BareSha("main"), feature_);
  auto events = Events();
  EXPECT_EQ(events.back().kind, "pull.closed");
  EXPECT_EQ(events.back().number, 1);
  EXPECT_EQ(events.back().payload["merged"], true);
  EXPECT_EQ(events.back().payload["merged_sha"], feature_);
  // Merged: neither mergeable nor closable again, and no longer found by head.
  EXPECT_FALSE(alice_->Merge(kRepo, 1).ok());
  EXPECT_FALSE(alice_->Close(kRepo, 1).ok());
  // A retitle and a close in one update: refused whole, the title as it was.
  const size_t before = Events().size();
  EXPECT_FALSE(alice_->Update(kRepo, 1, std::string("Renamed"), std::nullopt, "closed").ok());
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->title, "Return 1");
  EXPECT_EQ(Events().size(), before);
  EXPECT_FALSE(alice_->FindPull(kRepo, "feature")->has_value());
  IssueFilter merged_only;
  merged_only.state = "merged";
  EXPECT_EQ(alice_->ListIssues(kRepo, merged_only)->size(), 1u);
}

TEST_P(PullTest, MergeMakesAMergeCommitWhenTheBaseMoved) {
  MustOpenPull();
  const std::string moved = Commit("main", "main", {{"README.md", "# widget\nmore\n"}}, "docs");
  ASSERT_TRUE(Push("main", moved).ok());
  auto merged = alice_->Merge(kRepo, 1);
  ASSERT_TRUE(merged.ok()) << merged.error().message();
  const std::string sha = BareSha("main");
  EXPECT_EQ(merged->merged_sha, sha);
  EXPECT_NE(sha, feature_);
  EXPECT_EQ(Git(bare_, "rev-parse " + sha + "^1"), moved);
  EXPECT_EQ(Git(bare_, "rev-parse " + sha + "^2"), feature_);
  EXPECT_EQ(Git(bare_, "log -1 --format=%s " + sha), "Merge pull request #1 from feature");
  EXPECT_EQ(Git(bare_, "log -1 --format=%an " + sha), "alice");
  // Both sides are in the merged tree.
  EXPECT_EQ(Git(bare_, "show main:README.md"), "# widget\nmore");
  EXPECT_EQ(Git(bare_, "show main:src/main.c"), "int main(void) {\n  return 1;\n}");
  EXPECT_EQ(Git(bare_, "fsck --no-dangling"), "");
  auto diff = alice_->Diff(kRepo, 1);
  ASSERT_TRUE(diff.ok()) << diff.error().message();
  EXPECT_NE(diff->find("+  return 1;"), std::string::npos);
  EXPECT_EQ(diff->find("README"), std::string::npos);  // the merged diff is the pull's own
}

TEST_P(PullTest, MergeConflictChangesNothing) {
  MustOpenPull();
  const std::string clash =
      Commit("main", "main", {{"src/main.c", "int main(void) {\n  return 2;\n}\n"}}, "return 2");
  ASSERT_TRUE(Push("main", clash).ok());
  const size_t before = EventCount();
  const std::string objects = Git(bare_, "count-objects -v");
  auto merged = alice_->Merge(kRepo, 1);
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.error().code(), Error::Code::kInvalidArgument);
  EXPECT_NE(merged.error().message().find("conflicts in: src/main.c"), std::string::npos)
      << merged.error().message();
  EXPECT_NE(merged.error().message().find("pull request #1 in 'acme/widget'"), std::string::npos);
  EXPECT_EQ(BareSha("main"), clash);
  EXPECT_EQ(BareSha("feature"), feature_);
  EXPECT_EQ(alice_->GetPull(kRepo, 1)->issue.state, "open");
  EXPECT_EQ(EventCount(), before);
}

TEST_P(PullTest, MergeClosesTheIssuesItFixes) {
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "bug one", "").ok());    // #1
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "bug two", "").ok());    // #2
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "not fixed", "").ok());  // #3
  auto p = alice_->OpenPull(kRepo, "Return 1", "Fixes #1\nAlso closes #2 and #3.\nfixes #99",
                            "feature", "");
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->issue.number, 4);
  const size_t before = EventCount();
  ASSERT_TRUE(alice_->Merge(kRepo, 4).ok());
  EXPECT_EQ(alice_->GetIssue(kRepo, 1)->state, "closed");
  EXPECT_EQ(alice_->GetIssue(kRepo, 2)->state, "closed");
  EXPECT_EQ(alice_->GetIssue(kRepo, 3)->state, "open");
  EXPECT_EQ(EventKinds(before),
            (std::vector<std::string>{"pull.closed #4", "issue.closed #1", "issue.closed #2"}));
  EXPECT_EQ(Events().back().payload["closed_by"], 4);
}

TEST_P(PullTest, OnlyMaintainersMerge) {
  MustOpenPull();
  auto bob = MustOpen("bob");
  auto st = bob->Merge(kRepo, 1);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), Error::Code::kPermission);
  EXPECT_NE(st.error().message().find("'bob' is not a maintainer"), std::string::npos);
  EXPECT_EQ(BareSha("main"), main_);
}

TEST_P(PullTest, CloseWithoutMergingAndReopen) {
  MustOpenPull();
  ASSERT_TRUE(alice_->Close(kRepo, 1).ok());
  EXPECT_EQ(alice_->GetPull(kRepo, 1)->issue.state, "closed");
  EXPECT_EQ(Events().back().kind, "pull.closed");
  EXPECT_EQ(Events().back().payload["merged"], false);
  EXPECT_FALSE(alice_->Merge(kRepo, 1).ok());
  EXPECT_EQ(BareSha("main"), main_);
  ASSERT_TRUE(alice_->Reopen(kRepo, 1).ok());
  EXPECT_EQ(Events().back().kind, "pull.reopened");
}

TEST_P(PullTest, ReviewsWithInlineComments) {
  MustOpenPull();
  Review r;
  r.verdict = "request_changes";
  r.body = "Please explain.";
  r.comments.push_back({"src/main.c", 2, "RIGHT", "major", "Why 1?"});
  r.comments.push_back({"src/main.c", 2, "LEFT", "nit", "was 0"});
  auto bob = MustOpen("bob");
  auto out = bob->AddReview(kRepo, 1, r);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_GT(out->id, 0);
  EXPECT_EQ(out->author, "bob");
  EXPECT_EQ(out->commit_sha, feature_);  // the head, when not given

  Review approve;
  approve.verdict = "approve";
  approve.commit_sha = feature_;
  ASSERT_TRUE(alice_->AddReview(kRepo, 1, approve).ok());

  auto reviews = alice_->Reviews(kRepo, 1);
  ASSERT_TRUE(reviews.ok());
  ASSERT_EQ(reviews->size(), 2u);
  const Review& first = (*reviews)[0];
  EXPECT_EQ(first.verdict, "request_changes");
  EXPECT_EQ(first.body, "Please explain.");
  ASSERT_EQ(first.comments.size(), 2u);
  EXPECT_EQ(first.comments[0].path, "src/main.c");
  EXPECT_EQ(first.comments[0].line, 2);
  EXPECT_EQ(first.comments[0].side, "RIGHT");
  EXPECT_EQ(first.comments[0].severity, "major");
  EXPECT_EQ(first.comments[0].body, "Why 1?");
  EXPECT_EQ(first.comments[1].side, "LEFT");
  EXPECT_EQ((*reviews)[1].verdict, "approve");
  EXPECT_EQ((*reviews)[1].author, "alice");

  auto events = Events();
  EXPECT_EQ(events.back().kind, "review.submitted");
  EXPECT_EQ(events.back().payload["verdict"], "approve");
  EXPECT_EQ(events.back().payload["commit_sha"], feature_);
  EXPECT_EQ(events.back().payload["review_id"], (*reviews)[1].id);
}

TEST_P(PullTest, ReviewsRefuseBadInput) {
  MustOpenPull();
  const size_t before = EventCount();
  Review off_diff;
  off_diff.verdict = "comment";
  off_diff.comments.push_back({"README.md", 1, "RIGHT", "nit", "not in the diff"});
  auto st = alice_->AddReview(kRepo, 1, off_diff);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("inline comment 1 on README.md:1 (RIGHT) does not fit the "
                                      "diff of pull request #1"),
            std::string::npos)
      << st.error().message();
  EXPECT_NE(st.error().message().find(": the file is not in the diff"), std::string::npos);
  Review empty;
  empty.verdict = "comment";
  EXPECT_FALSE(alice_->AddReview(kRepo, 1, empty).ok());
  Review verdict;
  verdict.verdict = "lgtm";
  EXPECT_FALSE(alice_->AddReview(kRepo, 1, verdict).ok());
  Review severity;
  severity.verdict = "comment";
  severity.comments.push_back({"src/main.c", 2, "RIGHT", "critical", "x"});
  EXPECT_FALSE(alice_->AddReview(kRepo, 1, severity).ok());
  Review sha;
  sha.verdict = "approve";
  sha.commit_sha = std::string(40, 'a');
  auto unknown = alice_->AddReview(kRepo, 1, sha);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Error::Code::kNotFound);
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "an issue", "").ok());
  Review ok;
  ok.verdict = "approve";
  EXPECT_FALSE(alice_->AddReview(kRepo, 2, ok).ok());  // #2 is an issue
  EXPECT_EQ(EventCount(), before + 1);                 // the issue.opened only
  EXPECT_TRUE(alice_->Reviews(kRepo, 1)->empty());
}

// A pull request changing lines 3 and 27 of a 30-line file: two hunks, 1-6
// and 24-30 on both sides.
class RangeTest : public PullTest {
 protected:
  void SetUp() override {
    PullTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (HasFatalFailure()) return;
    std::string text;
    for (int i = 1; i <= 30; ++i) text += "l" + std::to_string(i) + "\n";
    ASSERT_TRUE(Push("main", Commit("main", "main", {{"long.txt", text}}, "long")).ok());
    text.replace(text.find("l3\n"), 3, "L3\n");
    text.replace(text.find("l27\n"), 4, "L27\n");
    ASSERT_TRUE(Push("ranges", Commit("ranges", "main", {{"long.txt", text}}, "two")).ok());
    auto p = MustOpen("dave")->OpenPull(kRepo, "Two changes", "", "ranges", "main");
    ASSERT_TRUE(p.ok()) << p.error().message();
    number_ = p->issue.number;
  }

  static ReviewComment Range(int64_t start_line, std::string start_side, int64_t line,
                             std::string side = "RIGHT") {
    ReviewComment c{"long.txt", line, std::move(side), "minor", "these lines"};
    c.start_line = start_line;
    c.start_side = std::move(start_side);
    return c;
  }

  // The error of a comment review holding c alone; "" when it posts.
  std::string Refusal(const ReviewComment& c) {
    Review r;
    r.verdict = "comment";
    r.comments = {c};
    auto out = alice_->AddReview(kRepo, number_, r);
    return out.ok() ? "" : out.error().message();
  }

  int64_t number_ = 0;
};

TEST_P(RangeTest, RangesInsideOneHunkRoundTrip) {
  Review r;
  r.verdict = "request_changes";
  r.comments = {Range(2, "RIGHT", 5),
                Range(3, "LEFT", 4),
                Range(25, "LEFT", 28, "LEFT"),
                {"long.txt", 27, "RIGHT", "nit", "one line"}};
  auto out = alice_->AddReview(kRepo, number_, r);
  ASSERT_TRUE(out.ok()) << out.error().message();
  auto reviews = alice_->Reviews(kRepo, number_);
  ASSERT_TRUE(reviews.ok()) << reviews.error().message();
  ASSERT_EQ(reviews->size(), 1u);
  const auto& got = (*reviews)[0].comments;
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].path, r.comments[i].path);
    EXPECT_EQ(got[i].line, r.comments[i].line);
    EXPECT_EQ(got[i].side, r.comments[i].side);
    EXPECT_EQ(got[i].start_line, r.comments[i].start_line);
    EXPECT_EQ(got[i].start_side, r.comments[i].start_side);
  }
  EXPECT_EQ(got[3].start_line, 0);
  EXPECT_EQ(got[3].start_side, "");
}

TEST_P(RangeTest, RangesBreakingGitHubsRulesAreRefused) {
  EXPECT_NE(Refusal(Range(5, "RIGHT", 25))
                .find("inline comment 1 on long.txt:5-25 (RIGHT) does not fit the diff of pull "
                      "request #" +
                      std::to_string(number_) + " in 'acme/widget' at "),
            std::string::npos);
  EXPECT_NE(Refusal(Range(5, "RIGHT", 25))
                .find(": the range spans more than one hunk of the diff; it must lie inside one "
                      "hunk"),
            std::string::npos);
  EXPECT_EQ(Refusal(Range(5, "RIGHT", 3)),
            "inline comment 1 on 'long.txt': start_line 5 must come before line 3 on the same "
            "side (RIGHT)");
  EXPECT_EQ(Refusal(Range(4, "RIGHT", 4)),
            "inline comment 1 on 'long.txt': start_line 4 must come before line 4 on the same "
            "side (RIGHT)");
  EXPECT_NE(Refusal(Range(12, "RIGHT", 25)).find(": the start line 12 (RIGHT) is not in the diff"),
            std::string::npos);
  EXPECT_NE(Refusal(Range(2, "RIGHT", 12)).find(": the end line 12 (RIGHT) is not in the diff"),
            std::string::npos);
  EXPECT_NE(Refusal(Range(-1, "RIGHT", 4)).find("start_line -1 must be 1 or more"),
            std::string::npos);
  EXPECT_NE(Refusal(Range(2, "", 4)).find("start_side '' is not one of RIGHT, LEFT"),
            std::string::npos);
  EXPECT_NE(Refusal(Range(0, "LEFT", 4)).find("start_side 'LEFT' is set without a start_line"),
            std::string::npos);
  EXPECT_TRUE(alice_->Reviews(kRepo, number_)->empty());
}

// Comments stored before ranges existed have no start_line or start_side:
// they read back as single-line comments. A stored range that breaks the
// rules is corruption, not a comment.
TEST_P(RangeTest, StoredCommentsWithoutRangesReadBack) {
  Review r;
  r.verdict = "comment";
  r.comments = {{"long.txt", 27, "RIGHT", "nit", "one line"}};
  ASSERT_TRUE(alice_->AddReview(kRepo, number_, r).ok());
  RawExec(
      "UPDATE forge_reviews SET comments = '[{\"path\": \"long.txt\", \"line\": 27, "
      "\"side\": \"RIGHT\", \"severity\": \"nit\", \"body\": \"old\"}]'");
  auto old = alice_->Reviews(kRepo, number_);
  ASSERT_TRUE(old.ok()) << old.error().message();
  ASSERT_EQ((*old)[0].comments.size(), 1u);
  EXPECT_EQ((*old)[0].comments[0].body, "old");
  EXPECT_EQ((*old)[0].comments[0].line, 27);
  EXPECT_EQ((*old)[0].comments[0].start_line, 0);
  EXPECT_EQ((*old)[0].comments[0].start_side, "");

  RawExec(
      "UPDATE forge_reviews SET comments = '[{\"path\": \"long.txt\", \"line\": 27, "
      "\"side\": \"RIGHT\", \"severity\": \"nit\", \"body\": \"bad\", "
      "\"start_line\": 28}]'");
  auto bad = alice_->Reviews(kRepo, number_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Error::Code::kCorruption);
  EXPECT_NE(bad.error().message().find("long.txt:28-27 (RIGHT): start_line 28 must come before"),
            std::string::npos)
      << bad.error().message();
}

TEST_P(PullTest, StatusesKeepTheLatestPerContext) {
  CommitStatus pending{"kiln/verify", "pending", "running", "", 0};
  ASSERT_TRUE(alice_->SetStatus(kRepo, feature_, pending).ok());
  CommitStatus lint{"ci/lint", "success", "clean", "http://ci.example/1", 0};
  ASSERT_TRUE(alice_->SetStatus(kRepo, feature_, lint).ok());
  CommitStatus done{"kiln/verify", "failure", "2 tests failed", "", 0};
  ASSERT_TRUE(alice_->SetStatus(kRepo, feature_, done).ok());
  auto statuses = alice_->Statuses(kRepo, feature_);
  ASSERT_TRUE(statuses.ok()) << statuses.error().message();
  ASSERT_EQ(statuses->size(), 2u);
  EXPECT_EQ((*statuses)[0].context, "ci/lint");
  EXPECT_EQ((*statuses)[0].target_url, "http://ci.example/1");
  EXPECT_EQ((*statuses)[1].context, "kiln/verify");
  EXPECT_EQ((*statuses)[1].state, "failure");
  EXPECT_EQ((*statuses)[1].description, "2 tests failed");
  // By branch name too; another commit has none.
  EXPECT_EQ(alice_->Statuses(kRepo, "feature")->size(), 2u);
  EXPECT_TRUE(alice_->Statuses(kRepo, main_)->empty());
  auto events = Events();
  EXPECT_EQ(events.back().kind, "status.created");
  EXPECT_EQ(events.back().payload["state"], "failure");
  EXPECT_EQ(events.back().payload["sha"], feature_);

  auto bad_state = alice_->SetStatus(kRepo, feature_, {"kiln/verify", "passed", "", "", 0});
  ASSERT_FALSE(bad_state.ok());
  EXPECT_EQ(bad_state.error().code(), Error::Code::kInvalidArgument);
  auto unknown = alice_->SetStatus(kRepo, std::string(40, 'b'), done);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), Error::Code::kNotFound);
  EXPECT_FALSE(alice_->SetStatus(kRepo, "feature", done).ok());  // a sha, not a branch
  EXPECT_FALSE(alice_->SetStatus(kRepo, feature_, {"", "success", "", "", 0}).ok());
}

TEST_P(PullTest, DiffIsFromTheMergeBaseToTheHead) {
  MustOpenPull();
  // A later change on main is not part of the pull request's diff.
  const std::string moved = Commit("main", "main", {{"README.md", "# widget\nv2\n"}}, "docs");
  ASSERT_TRUE(Push("main", moved).ok());
  auto diff = alice_->Diff(kRepo, 1);
  ASSERT_TRUE(diff.ok()) << diff.error().message();
  EXPECT_EQ(*diff, Git(work(), "diff " + main_ + " " + feature_) + "\n");
  auto missing = alice_->Diff(kRepo, 7);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(), "pull request #7 not found in 'acme/widget'");
}

TEST_P(PullTest, EditPull) {
  MustOpenPull();
  ASSERT_TRUE(alice_->EditPull(kRepo, 1, "Return one", "Now with a body").ok());
  auto p = alice_->GetPull(kRepo, 1);
  EXPECT_EQ(p->issue.title, "Return one");
  EXPECT_EQ(p->issue.body, "Now with a body");
  EXPECT_EQ(Events().back().kind, "pull.edited");
  ASSERT_TRUE(alice_->CreateIssue(kRepo, "issue", "").ok());
  EXPECT_FALSE(alice_->EditPull(kRepo, 2, "x", "y").ok());
}

KILN_FORGE_ON_BOTH_BACKENDS(PullTest);
KILN_FORGE_ON_BOTH_BACKENDS(RangeTest);

}  // namespace
}  // namespace kiln::forge
