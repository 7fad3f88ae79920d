// GitHub webhooks in: the signature, the translation of real delivery shapes
// (tests/github/fixtures), and the receiver over a real inbox.
#include "controller/github/webhook.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

#include "tests/support/temp_dir.h"

namespace kiln::github {
namespace {

using ::kiln::testing::Slurp;
using ::kiln::testing::TempDir;
using nlohmann::json;

std::string FixtureText(const std::string& name) {
  return Slurp(std::string(KILN_GITHUB_FIXTURES) + "/" + name + ".json");
}

json Fixture(const std::string& name) {
  std::string text = FixtureText(name);
  EXPECT_FALSE(text.empty()) << "fixture " << name;
  return json::parse(text);
}

// kiln's label names: GitHub's "ready to spec" is kiln's "ready-to-spec".
std::string KilnLabel(const std::string& repo, const std::string& label) {
  if (repo == "acme/widget" && label == "ready to spec") return "ready-to-spec";
  return label;
}

forge::Event Event(const std::string& type, const std::string& fixture) {
  Result<Translated> t = Translate(type, "d-" + fixture, Fixture(fixture), KilnLabel);
  EXPECT_TRUE(t.ok()) << t.error().message();
  if (!t.ok() || !t->event) {
    ADD_FAILURE() << fixture << ": no event (" << (t.ok() ? t->ignored : "") << ")";
    return {};
  }
  EXPECT_EQ(t->repo, "acme/widget");
  EXPECT_EQ(t->installation_id, 48213377);
  EXPECT_EQ(t->event->source, "github");
  EXPECT_EQ(t->event->delivery, "d-" + fixture);
  EXPECT_EQ(t->event->repo, "acme/widget");
  return *t->event;
}

std::string InvalidMessage(const std::string& type, const json& body) {
  Result<Translated> t = Translate(type, "d-1", body, nullptr);
  if (t.ok()) return "(accepted)";
  EXPECT_EQ(t.error().code(), Error::Code::kInvalidArgument);
  return t.error().message();
}

// --- Sign and SignatureValid ------------------------------------------------

TEST(SignTest, MatchesRfc4231Case2) {
  // RFC 4231, test case 2: HMAC-SHA-256 with key "Jefe".
  EXPECT_EQ(Sign("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(SignTest, MatchesGithubDocumentedExample) {
  // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
  EXPECT_EQ(Sign("It's a Secret to Everybody", "Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

TEST(SignatureValidTest, AcceptsOwnSignature) {
  std::string body = R"({"zen":"Keep it logically awesome."})";
  EXPECT_TRUE(SignatureValid("s3cret", body, Sign("s3cret", body)));
}

TEST(SignatureValidTest, RejectsEmptySecret) {
  EXPECT_FALSE(SignatureValid("", "body", Sign("", "body")));
}

TEST(SignatureValidTest, RejectsMissingOrOtherPrefix) {
  std::string sig = Sign("k", "body");
  std::string hex = sig.substr(7);
  EXPECT_FALSE(SignatureValid("k", "body", hex));
  EXPECT_FALSE(SignatureValid("k", "body", "sha1=" + hex));
  EXPECT_FALSE(SignatureValid("k", "body", "SHA256=" + hex));
  EXPECT_FALSE(SignatureValid("k", "body", ""));
}

TEST(SignatureValidTest, RejectsWrongLength) {
  std::string sig = Sign("k", "body");
  EXPECT_FALSE(SignatureValid("k", "body", sig.substr(0, sig.size() - 1)));
  EXPECT_FALSE(SignatureValid("k", "body", sig + "0"));
  EXPECT_FALSE(SignatureValid("k", "body", "sha256="));
}

TEST(SignatureValidTest, RejectsUppercaseAndNonHex) {
  std::string sig = Sign("k", "body");
  std::string upper = sig;
  for (size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  ASSERT_NE(upper, sig);  // the digest has a letter somewhere
  EXPECT_FALSE(SignatureValid("k", "body", upper));
  std::string junk = sig;
  junk.back() = 'g';
  EXPECT_FALSE(SignatureValid("k", "body", junk));
}

TEST(SignatureValidTest, RejectsEveryOneCharFlip) {
  std::string body = "payload";
  std::string sig = Sign("k", body);
  for (size_t i = 7; i < sig.size(); ++i) {
    std::string flipped = sig;
    flipped[i] = flipped[i] == '0' ? '1' : '0';
    EXPECT_FALSE(SignatureValid("k", body, flipped)) << "position " << i;
  }
  EXPECT_FALSE(SignatureValid("k", body + " ", sig));
  EXPECT_FALSE(SignatureValid("K", body, sig));
}

// --- Translate: the fixtures ----------------------------------------------

TEST(TranslateTest, IssueOpened) {
  forge::Event e = Event("issues", "issues.opened");
  EXPECT_EQ(e.kind, "issue.opened");
  EXPECT_EQ(e.number, 7);
  EXPECT_EQ(e.actor, "alice");
  EXPECT_EQ(e.payload, json::object());
}

TEST(TranslateTest, IssueLabeledGoesThroughLabelIn) {
  forge::Event e = Event("issues", "issues.labeled");
  EXPECT_EQ(e.kind, "issue.labeled");
  EXPECT_EQ(e.number, 7);
  EXPECT_EQ(e.actor, "alice");
  EXPECT_EQ(e.payload["label"], "ready-to-spec");
}

TEST(TranslateTest, LabelInEmptyIsIdentity) {
  Result<Translated> t = Translate("issues", "d", Fixture("issues.labeled"), nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message();
  ASSERT_TRUE(t->event);
  EXPECT_EQ(t->event->payload["label"], "ready to spec");
}

TEST(TranslateTest, IssueClosed) {
  forge::Event e = Event("issues", "issues.closed");
  EXPECT_EQ(e.kind, "issue.closed");
  EXPECT_EQ(e.number, 7);
  EXPECT_EQ(e.actor, "bob");
}

TEST(TranslateTest, IssueEventOnPullRequestIsPullKind) {
  forge::Event e = Event("issues", "issues.labeled.pull");
  EXPECT_EQ(e.kind, "pull.labeled");
  EXPECT_EQ(e.number, 12);
  EXPECT_EQ(e.payload["label"], "bug");
}

TEST(TranslateTest, CommentOnIssue) {
  forge::Event e = Event("issue_comment", "issue_comment.created");
  EXPECT_EQ(e.kind, "comment.created");
  EXPECT_EQ(e.number, 7);
  EXPECT_EQ(e.actor, "bob");
  EXPECT_EQ(e.payload["comment_id"], 1500001);
  EXPECT_EQ(e.payload["body"], "/kiln spec");
  EXPECT_EQ(e.payload["is_pull"], false);
}

TEST(TranslateTest, CommentOnPullRequest) {
  forge::Event e = Event("issue_comment", "issue_comment.created.pull");
  EXPECT_EQ(e.kind, "comment.created");
  EXPECT_EQ(e.number, 12);
  EXPECT_EQ(e.payload["comment_id"], 1500002);
  EXPECT_EQ(e.payload["body"], "/kiln review");
  EXPECT_EQ(e.payload["is_pull"], true);
}

TEST(TranslateTest, PullOpened) {
  forge::Event e = Event("pull_request", "pull_request.opened");
  EXPECT_EQ(e.kind, "pull.opened");
  EXPECT_EQ(e.number, 12);
  EXPECT_EQ(e.actor, "alice");
  EXPECT_EQ(e.payload["head_branch"], "kiln/implement-7");
  EXPECT_EQ(e.payload["base_branch"], "main");
  EXPECT_EQ(e.payload["head_sha"], "6dcb09b5b57875f334f61aebed695e2e4193db5e");
  EXPECT_EQ(e.payload["fork"], false);
  EXPECT_EQ(e.payload["head_repo"], "acme/widget");
  EXPECT_EQ(e.payload["draft"], false);
}

TEST(TranslateTest, PullFromForkIsMarked) {
  forge::Event e = Event("pull_request", "pull_request.opened.fork");
  EXPECT_EQ(e.kind, "pull.opened");
  EXPECT_EQ(e.number, 13);
  EXPECT_EQ(e.actor, "mallory");
  EXPECT_EQ(e.payload["fork"], true);
  EXPECT_EQ(e.payload["head_repo"], "mallory/widget");
  EXPECT_EQ(e.payload["head_branch"], "patch-1");
}

TEST(TranslateTest, PullFromDeletedForkIsAFork) {
  json body = Fixture("pull_request.opened.fork");
  body["pull_request"]["head"]["repo"] = nullptr;
  Result<Translated> t = Translate("pull_request", "d", body, nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message();
  ASSERT_TRUE(t->event);
  EXPECT_EQ(t->event->payload["fork"], true);
  EXPECT_EQ(t->event->payload["head_repo"], "");
}

TEST(TranslateTest, PullSynchronize) {
  forge::Event e = Event("pull_request", "pull_request.synchronize");
  EXPECT_EQ(e.kind, "pull.synchronized");
  EXPECT_EQ(e.number, 12);
  EXPECT_EQ(e.payload["head_branch"], "kiln/implement-7");
  EXPECT_EQ(e.payload["head_sha"], "34c5c7793cb3b279e22454cb6750c80560547b3a");
  EXPECT_EQ(e.payload["before"], "a10867b14bb761a232cd80139fbd4c0d33264240");
  EXPECT_EQ(e.payload["after"], "34c5c7793cb3b279e22454cb6750c80560547b3a");
}

TEST(TranslateTest, PullClosedMerged) {
  forge::Event e = Event("pull_request", "pull_request.closed.merged");
  EXPECT_EQ(e.kind, "pull.closed");
  EXPECT_EQ(e.actor, "bob");
  EXPECT_EQ(e.payload["merged"], true);
  EXPECT_EQ(e.payload["merged_sha"], "e5bd3914e2e596debea16f433f57875b5b90bcd6");
}

TEST(TranslateTest, PullClosedUnmergedHasNoMergedSha) {
  json body = Fixture("pull_request.closed.merged");
  body["pull_request"]["merged"] = false;
  body["pull_request"]["merge_commit_sha"] = nullptr;
  Result<Translated> t = Translate("pull_request", "d", body, nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message();
  ASSERT_TRUE(t->event);
  EXPECT_EQ(t->event->payload["merged"], false);
  EXPECT_FALSE(t->event->payload.contains("merged_sha"));
}

TEST(TranslateTest, PullLabeled) {
  forge::Event e = Event("pull_request", "pull_request.labeled");
  EXPECT_EQ(e.kind, "pull.labeled");
  EXPECT_EQ(e.number, 12);
  EXPECT_EQ(e.payload["label"], "bug");
}

TEST(TranslateTest, ReviewApproved) {
  forge::Event e = Event("pull_request_review", "pull_request_review.submitted.approved");
  EXPECT_EQ(e.kind, "review.submitted");
  EXPECT_EQ(e.number, 12);
  EXPECT_EQ(e.actor, "bob");
  EXPECT_EQ(e.payload["review_id"], 80001);
  EXPECT_EQ(e.payload["verdict"], "approve");
  EXPECT_EQ(e.payload["commit_sha"], "6dcb09b5b57875f334f61aebed695e2e4193db5e");
  EXPECT_EQ(e.payload["body"], "");  // sent as null
}

TEST(TranslateTest, ReviewChangesRequested) {
  forge::Event e = Event("pull_request_review", "pull_request_review.submitted.changes_requested");
  EXPECT_EQ(e.kind, "review.submitted");
  EXPECT_EQ(e.payload["review_id"], 80002);
  EXPECT_EQ(e.payload["verdict"], "request_changes");
  EXPECT_EQ(e.payload["body"], "Please handle the nil case too.");
}

TEST(TranslateTest, ReviewCommentedAndDismissed) {
  json body = Fixture("pull_request_review.submitted.approved");
  body["review"]["state"] = "commented";
  Result<Translated> t = Translate("pull_request_review", "d", body, nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message();
  ASSERT_TRUE(t->event);
  EXPECT_EQ(t->event->payload["verdict"], "comment");

  body["review"]["state"] = "dismissed";
  t = Translate("pull_request_review", "d", body, nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_FALSE(t->event);
  EXPECT_EQ(t->ignored, "review state 'dismissed'");
  EXPECT_EQ(t->repo, "acme/widget");
}

TEST(TranslateTest, InlineReviewComment) {
  forge::Event e = Event("pull_request_review_comment", "pull_request_review_comment.created");
  EXPECT_EQ(e.kind, "comment.created");
  EXPECT_EQ(e.number, 12);
  EXPECT_EQ(e.actor, "bob");
  EXPECT_EQ(e.payload["comment_id"], 90001);
  EXPECT_EQ(e.payload["body"], "This leaks `buf` on the early return.");
  EXPECT_EQ(e.payload["inline"], true);
  EXPECT_EQ(e.payload["path"], "src/parse.cc");
  EXPECT_EQ(e.payload["line"], 14);
}

// What the improver reads of review threads (docs/improver.md): a reply to
// an inline comment, a thread resolved, a review dismissed.
TEST(TranslateTest, AReplyInAReviewThreadNamesTheCommentItAnswers) {
  json body = Fixture("pull_request_review_comment.created");
  body["comment"]["in_reply_to_id"] = 90000;
  Result<Translated> t = Translate("pull_request_review_comment", "d", body, nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message();
  ASSERT_TRUE(t->event);
  EXPECT_EQ(t->event->kind, "comment.created");
  EXPECT_EQ(t->event->payload["in_reply_to"], 90000);
  EXPECT_FALSE(Event("pull_request_review_comment", "pull_request_review_comment.created")
                   .payload.contains("in_reply_to"));
}

TEST(TranslateTest, AResolvedThreadListsItsComments) {
  forge::Event e = Event("pull_request_review_thread", "pull_request_review_thread.resolved");
  EXPECT_EQ(e.kind, "review_thread.resolved");
  EXPECT_EQ(e.number, 12);
  EXPECT_EQ(e.actor, "bob");
  EXPECT_EQ(e.payload["comment_ids"], json::array({90001, 90003}));

  json body = Fixture("pull_request_review_thread.resolved");
  body["action"] = "unresolved";
  Result<Translated> t = Translate("pull_request_review_thread", "d", body, nullptr);
  ASSERT_TRUE(t.ok() && t->event);
  EXPECT_EQ(t->event->kind, "review_thread.unresolved");

  body["thread"]["comments"] = "none";
  t = Translate("pull_request_review_thread", "d", body, nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message(),
            "pull_request_review_thread.unresolved: 'thread.comments' is missing or not an array "
            "of comments");
  body["thread"]["comments"] = json::array({{{"body", "no id"}}});
  t = Translate("pull_request_review_thread", "d", body, nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message(),
            "pull_request_review_thread.unresolved: 'thread.comments' holds a comment without a "
            "numeric id");
}

TEST(TranslateTest, ADismissedReviewNamesTheReviewAndItsAuthor) {
  json body = Fixture("pull_request_review.submitted.approved");
  body["action"] = "dismissed";
  body["review"]["state"] = "dismissed";
  Result<Translated> t = Translate("pull_request_review", "d", body, nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message();
  ASSERT_TRUE(t->event);
  EXPECT_EQ(t->event->kind, "review.dismissed");
  EXPECT_EQ(t->event->payload["review_id"], body["review"]["id"]);
  EXPECT_EQ(t->event->payload["author"], body["review"]["user"]["login"]);
}

TEST(TranslateTest, PingIsIgnoredWithItsRepository) {
  Result<Translated> t = Translate("ping", "d", Fixture("ping"), nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_FALSE(t->event);
  EXPECT_EQ(t->ignored, "ping");
  EXPECT_EQ(t->repo, "acme/widget");
}

TEST(TranslateTest, UnknownEventIsIgnored) {
  Result<Translated> t = Translate("star", "d", Fixture("star.created"), nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_FALSE(t->event);
  EXPECT_EQ(t->ignored, "unknown event 'star'");
  EXPECT_EQ(t->repo, "acme/widget");
}

TEST(TranslateTest, UnknownActionIsIgnored) {
  json body = Fixture("issues.opened");
  body["action"] = "assigned";
  Result<Translated> t = Translate("issues", "d", body, nullptr);
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_FALSE(t->event);
  EXPECT_EQ(t->ignored, "issues action 'assigned'");
}

// --- Translate: malformed bodies --------------------------------------------

TEST(TranslateInvalidTest, MissingIssueNumber) {
  json body = Fixture("issues.opened");
  body["issue"].erase("number");
  EXPECT_EQ(InvalidMessage("issues", body),
            "issues.opened: 'issue.number' is missing or not a number");
}

TEST(TranslateInvalidTest, NumberAsString) {
  json body = Fixture("issues.opened");
  body["issue"]["number"] = "7";
  EXPECT_EQ(InvalidMessage("issues", body),
            "issues.opened: 'issue.number' is missing or not a number");
}

TEST(TranslateInvalidTest, SenderMissing) {
  json body = Fixture("issue_comment.created");
  body.erase("sender");
  EXPECT_EQ(InvalidMessage("issue_comment", body),
            "issue_comment.created: 'sender.login' is missing or not a string");
}

TEST(TranslateInvalidTest, HeadShaMissing) {
  json body = Fixture("pull_request.opened");
  body["pull_request"]["head"].erase("sha");
  EXPECT_EQ(InvalidMessage("pull_request", body),
            "pull_request.opened: 'pull_request.head.sha' is missing or not a string");
}

TEST(TranslateInvalidTest, WrongTypesDeeper) {
  json body = Fixture("pull_request.closed.merged");
  body["pull_request"]["merged"] = "yes";
  EXPECT_EQ(InvalidMessage("pull_request", body),
            "pull_request.closed: 'pull_request.merged' is missing or not a boolean");
  body = Fixture("pull_request.labeled");
  body["label"] = "bug";  // a string where an object belongs
  EXPECT_EQ(InvalidMessage("pull_request", body),
            "pull_request.labeled: 'label.name' is missing or not a string");
  body = Fixture("issues.opened");
  body["repository"] = json::array();
  EXPECT_EQ(InvalidMessage("issues", body),
            "issues.opened: 'repository.full_name' is missing or not a string");
  body = Fixture("pull_request_review.submitted.approved");
  body["review"]["body"] = 5;
  EXPECT_EQ(InvalidMessage("pull_request_review", body),
            "pull_request_review.submitted: 'review.body' is missing or not a string");
}

TEST(TranslateInvalidTest, ActionMissing) {
  json body = Fixture("issues.opened");
  body.erase("action");
  EXPECT_EQ(InvalidMessage("issues", body), "issues: 'action' is missing or not a string");
}

TEST(TranslateInvalidTest, NotAnObject) {
  EXPECT_EQ(InvalidMessage("issues", json::array({1, 2})), "issues: the body is not a JSON object");
  EXPECT_EQ(InvalidMessage("issues", json("text")), "issues: the body is not a JSON object");
}

TEST(TranslateInvalidTest, ThrowingLabelInIsAnErrorNotACrash) {
  auto throwing = [](const std::string&, const std::string&) -> std::string {
    throw std::runtime_error("label table broken");
  };
  Result<Translated> t = Translate("issues", "d", Fixture("issues.labeled"), throwing);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message().find("label table broken"), std::string::npos);
}

// --- Receiver -------------------------------------------------------------

constexpr char kSecret[] = "It's a Secret to Everybody";

class ReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto inbox = forge::Inbox::Open(dir_ / "kiln.db");
    ASSERT_TRUE(inbox.ok()) << inbox.error().message();
    inbox_ = std::move(*inbox);
    ReceiverOptions options;
    options.secret = kSecret;
    options.configured = [](const std::string& repo) { return repo == "acme/widget"; };
    options.label_in = KilnLabel;
    options.on_event = [this] { ++woken_; };
    receiver_ = std::make_unique<Receiver>(std::move(options), *inbox_);
  }

  static forge::ApiRequest Request(const std::string& event, const std::string& delivery,
                                   const std::string& body) {
    forge::ApiRequest r;
    r.method = "POST";
    r.target = "/webhooks/github";
    r.body = body;
    r.headers["content-type"] = "application/json";
    r.headers["x-github-event"] = event;
    r.headers["x-github-delivery"] = delivery;
    r.headers["x-hub-signature-256"] = Sign(kSecret, body);
    return r;
  }

  static std::string Message(const forge::ApiResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("message") || !j["message"].is_string()) {
      ADD_FAILURE() << "not a message: " << r.body;
      return "";
    }
    return j["message"].get<std::string>();
  }

  size_t PendingCount() {
    auto pending = inbox_->Pending(0);
    EXPECT_TRUE(pending.ok());
    return pending.ok() ? pending->size() : 0;
  }

  TempDir dir_;
  std::unique_ptr<forge::Inbox> inbox_;
  std::unique_ptr<Receiver> receiver_;
  int woken_ = 0;
};

// GitHub signs the body, not X-GitHub-Delivery: a captured delivery resent
// under a fresh id verifies. It is recognised by what it is (the signed
// body; for a created comment, the comment) and stored, so acted on, once.
TEST_F(ReceiverTest, AReplayUnderANewDeliveryIdIsTheSameEvent) {
  for (const char* fixture : {"issues.labeled", "issue_comment.created"}) {
    const std::string event = std::string(fixture).substr(0, std::string(fixture).find('.'));
    const std::string body = FixtureText(fixture);
    ASSERT_EQ(receiver_->Handle(Request(event, std::string("orig-") + fixture, body)).status, 201);
    forge::ApiResponse replay = receiver_->Handle(Request(event, "replayed-delivery-id", body));
    EXPECT_EQ(replay.status, 200) << fixture << ": " << replay.body;
    EXPECT_NE(Message(replay).find("this event was already received"), std::string::npos)
        << Message(replay);
  }
  EXPECT_EQ(PendingCount(), 2u) << "a replay was queued again";
  // The same comment in a body that differs (GitHub re-sending it with other
  // fields filled in) is still the same comment.
  json comment = json::parse(FixtureText("issue_comment.created"));
  comment["comment"]["updated_at"] = "2030-01-01T00:00:00Z";
  forge::ApiResponse again =
      receiver_->Handle(Request("issue_comment", "other-id", comment.dump()));
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(PendingCount(), 2u);
  // A new comment is a new event.
  comment["comment"]["id"] = comment["comment"]["id"].get<int64_t>() + 1;
  EXPECT_EQ(receiver_->Handle(Request("issue_comment", "new-id", comment.dump())).status, 201);
  EXPECT_EQ(PendingCount(), 3u);
}

TEST_F(ReceiverTest, QueuesThenRecognisesRedelivery) {
  forge::ApiRequest r = Request("issues", "72d3162e-cc78", FixtureText("issues.labeled"));
  forge::ApiResponse first = receiver_->Handle(r);
  EXPECT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(Message(first), "queued");
  EXPECT_EQ(first.content_type, "application/json");
  forge::ApiResponse again = receiver_->Handle(r);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Message(again).rfind("duplicate delivery 72d3162e-cc78: this event was already "
                                 "received",
                                 0),
            0u)
      << Message(again);

  auto pending = inbox_->Pending(0);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  const forge::Event& e = pending->front();
  EXPECT_EQ(e.delivery, "72d3162e-cc78");
  EXPECT_EQ(e.source, "github");
  EXPECT_EQ(e.kind, "issue.labeled");
  EXPECT_EQ(e.repo, "acme/widget");
  EXPECT_EQ(e.number, 7);
  EXPECT_EQ(e.actor, "alice");
  EXPECT_EQ(e.payload["label"], "ready-to-spec");  // label_in applied
  EXPECT_GT(e.received_ms, 0);
  EXPECT_EQ(woken_, 1);
}

TEST_F(ReceiverTest, OnEventOncePerAppendedEvent) {
  EXPECT_EQ(receiver_->Handle(Request("issues", "a", FixtureText("issues.opened"))).status, 201);
  EXPECT_EQ(
      receiver_->Handle(Request("pull_request", "b", FixtureText("pull_request.opened"))).status,
      201);
  EXPECT_EQ(receiver_->Handle(Request("star", "c", FixtureText("star.created"))).status, 202);
  EXPECT_EQ(receiver_->Handle(Request("issues", "a", FixtureText("issues.opened"))).status, 200);
  EXPECT_EQ(woken_, 2);
  EXPECT_EQ(PendingCount(), 2u);
}

TEST_F(ReceiverTest, MissingSignatureIs401) {
  forge::ApiRequest r = Request("issues", "d1", FixtureText("issues.opened"));
  r.headers.erase("x-hub-signature-256");
  forge::ApiResponse resp = receiver_->Handle(r);
  EXPECT_EQ(resp.status, 401);
  EXPECT_EQ(Message(resp), "X-Hub-Signature-256 is missing");
  EXPECT_EQ(PendingCount(), 0u);
  EXPECT_EQ(woken_, 0);
}

TEST_F(ReceiverTest, WrongSignatureIs401) {
  forge::ApiRequest r = Request("issues", "d1", FixtureText("issues.opened"));
  r.headers["x-hub-signature-256"] = Sign("another secret", r.body);
  forge::ApiResponse resp = receiver_->Handle(r);
  EXPECT_EQ(resp.status, 401);
  EXPECT_NE(Message(resp).find("does not match"), std::string::npos);

  r = Request("issues", "d1", FixtureText("issues.opened"));
  r.body += " ";  // signed bytes differ from the body
  EXPECT_EQ(receiver_->Handle(r).status, 401);
  EXPECT_EQ(PendingCount(), 0u);
}

TEST_F(ReceiverTest, EmptySecretRefusesEverything) {
  ReceiverOptions options;
  Receiver open(std::move(options), *inbox_);
  forge::ApiRequest r = Request("issues", "d1", FixtureText("issues.opened"));
  r.headers["x-hub-signature-256"] = Sign("", r.body);
  EXPECT_EQ(open.Handle(r).status, 401);
  EXPECT_EQ(PendingCount(), 0u);
}

TEST_F(ReceiverTest, SignatureCheckedBeforeParsing) {
  forge::ApiRequest r = Request("issues", "d1", "{not json");
  r.headers["x-hub-signature-256"] = Sign("wrong", r.body);
  EXPECT_EQ(receiver_->Handle(r).status, 401);
}

TEST_F(ReceiverTest, GetIs405) {
  forge::ApiRequest r = Request("issues", "d1", FixtureText("issues.opened"));
  r.method = "GET";
  forge::ApiResponse resp = receiver_->Handle(r);
  EXPECT_EQ(resp.status, 405);
  ASSERT_EQ(resp.headers.size(), 1u);
  EXPECT_EQ(resp.headers[0].first, "Allow");
  EXPECT_EQ(resp.headers[0].second, "POST");
}

TEST_F(ReceiverTest, FormEncodedIs415) {
  std::string body = "payload=" + FixtureText("issues.opened");
  forge::ApiRequest r = Request("issues", "d1", body);
  r.headers["content-type"] = "application/x-www-form-urlencoded";
  forge::ApiResponse resp = receiver_->Handle(r);
  EXPECT_EQ(resp.status, 415);
  EXPECT_NE(Message(resp).find("application/json"), std::string::npos);
  EXPECT_EQ(PendingCount(), 0u);

  r.headers["content-type"] = "application/json; charset=utf-8";
  r.body = FixtureText("issues.opened");
  r.headers["x-hub-signature-256"] = Sign(kSecret, r.body);
  EXPECT_EQ(receiver_->Handle(r).status, 201);
}

TEST_F(ReceiverTest, BadJsonIs400) {
  forge::ApiResponse resp = receiver_->Handle(Request("issues", "d1", "{\"action\": "));
  EXPECT_EQ(resp.status, 400);
  EXPECT_EQ(Message(resp), "the body is not valid JSON");
  EXPECT_EQ(receiver_->Handle(Request("issues", "d1", "[1, 2]")).status, 400);
}

TEST_F(ReceiverTest, MissingEventOrDeliveryHeaderIs400) {
  forge::ApiRequest r = Request("issues", "d1", FixtureText("issues.opened"));
  r.headers.erase("x-github-event");
  forge::ApiResponse resp = receiver_->Handle(r);
  EXPECT_EQ(resp.status, 400);
  EXPECT_EQ(Message(resp), "X-GitHub-Event is missing");

  r = Request("issues", "d1", FixtureText("issues.opened"));
  r.headers.erase("x-github-delivery");
  resp = receiver_->Handle(r);
  EXPECT_EQ(resp.status, 400);
  EXPECT_EQ(Message(resp), "X-GitHub-Delivery is missing");
  EXPECT_EQ(PendingCount(), 0u);
}

TEST_F(ReceiverTest, MalformedBodyIs400WithThePath) {
  json body = Fixture("issues.opened");
  body["issue"]["number"] = "7";
  forge::ApiResponse resp = receiver_->Handle(Request("issues", "d1", body.dump()));
  EXPECT_EQ(resp.status, 400);
  EXPECT_EQ(Message(resp), "issues.opened: 'issue.number' is missing or not a number");
}

TEST_F(ReceiverTest, UnknownEventIs202) {
  forge::ApiResponse resp = receiver_->Handle(Request("star", "d1", FixtureText("star.created")));
  EXPECT_EQ(resp.status, 202);
  EXPECT_EQ(Message(resp), "ignored: unknown event 'star'");
  EXPECT_EQ(PendingCount(), 0u);
}

TEST_F(ReceiverTest, UnconfiguredRepositoryIs202) {
  json body = Fixture("issues.opened");
  body["repository"]["full_name"] = "other/repo";
  forge::ApiResponse resp = receiver_->Handle(Request("issues", "d1", body.dump()));
  EXPECT_EQ(resp.status, 202);
  EXPECT_EQ(Message(resp), "ignored: repository 'other/repo' is not configured for kiln");
  EXPECT_EQ(PendingCount(), 0u);
  EXPECT_EQ(woken_, 0);
}

TEST_F(ReceiverTest, PingIsPong) {
  forge::ApiResponse resp = receiver_->Handle(Request("ping", "d1", FixtureText("ping")));
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(Message(resp), "pong");
  // An App's or organisation's ping has no repository: nothing to configure.
  json body = Fixture("ping");
  body.erase("repository");
  resp = receiver_->Handle(Request("ping", "d2", body.dump()));
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(PendingCount(), 0u);
}

TEST_F(ReceiverTest, InboxWriteFailureIs503) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "kiln.db").c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "DROP TABLE events", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  forge::ApiResponse resp =
      receiver_->Handle(Request("issues", "d1", FixtureText("issues.opened")));
  EXPECT_EQ(resp.status, 503) << resp.body;
  EXPECT_EQ(Message(resp).rfind("storing delivery d1: ", 0), 0u) << resp.body;
  EXPECT_EQ(woken_, 0);
}

}  // namespace
}  // namespace kiln::github
