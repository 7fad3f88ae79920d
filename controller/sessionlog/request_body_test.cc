// model.request bodies recorded as deltas on the previous request's
// (request_body.h): written smaller, read back exactly, and a delta that
// does not resolve named.
#include "controller/sessionlog/request_body.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "controller/sessionlog/canonical.h"
#include "controller/sessionlog/entries.h"
#include "controller/sessionlog/show.h"
#include "controller/sessionlog/testutil.h"
#include "controller/sessionlog/verify.h"
#include "controller/sessionlog/writer.h"

namespace kiln::sessionlog {
namespace {

using nlohmann::json;
using testing::NewSigner;
using testing::TempDir;

// Random text of n characters, some of them multibyte (2, 3 and 4 bytes).
std::string Text(std::mt19937& rng, size_t n) {
  static const char* const kPieces[] = {"a", "b", " ", "\n", "\"", "é", "€", "𝄞", "{", "}"};
  std::string out;
  for (size_t i = 0; i < n; ++i) out += kPieces[rng() % std::size(kPieces)];
  return out;
}

TEST(RequestBody, EveryEditOfAConversationResolvesToItsBody) {
  std::mt19937 rng(7);
  std::string body =
      "{\"messages\":[" + Text(rng, 3000) + "],\"system\":\"" + Text(rng, 800) + "\"}";
  RequestBody base{5, body};
  for (int i = 0; i < 500; ++i) {
    // A turn appends in the middle; compaction cuts; steering edits near
    // the end; some edits split a multibyte character's bytes.
    std::string next = base.body;
    size_t at = rng() % (next.size() + 1);
    switch (i % 3) {
      case 0:
        next.insert(at, Text(rng, 1 + rng() % 200));
        break;
      case 1:
        next.erase(at, rng() % 100);
        break;
      default:
        next.replace(at, rng() % 10, Text(rng, rng() % 10));
    }
    if (!ValidUtf8(next)) continue;  // the writer never makes a delta of such a body
    json delta = BodyDelta(base, next);
    if (delta.is_null()) {
      EXPECT_LT(std::min(base.body.size(), next.size()), 1024u + 400u) << "a base kept whole";
    } else {
      EXPECT_TRUE(ValidUtf8(delta["text"].get<std::string>())) << "edit " << i;
      EXPECT_LT(delta["text"].get<std::string>().size(), next.size());
      auto back = ResolveBody(base, 6, delta);
      ASSERT_TRUE(back.ok()) << back.error().message();
      ASSERT_EQ(*back, next) << "edit " << i;
    }
    base = {base.seq + 1, next};
  }
}

TEST(RequestBody, ADeltaThatDoesNotResolveIsNamed) {
  RequestBody base{4, std::string(2000, 'x')};
  json good = {{"base", 4}, {"head", 1500}, {"tail", 500}, {"text", "y"}};
  ASSERT_TRUE(ResolveBody(base, 6, good).ok());
  struct Case {
    json delta;
    RequestBody base;
    std::string message;
  } cases[] = {
      {{{"base", 3}, {"head", 1}, {"tail", 1}, {"text", ""}},
       base,
       "seq 6 (model.request): its body_delta names seq 3 as its base, and the model.request "
       "before it is seq 4"},
      {good, RequestBody{}, "names seq 4 as its base, and the model.request before it has no body"},
      {{{"base", 4}, {"head", 1500}, {"tail", 501}, {"text", ""}},
       base,
       "keeps 1500 + 501 bytes of a base body of 2000"},
      {{{"base", 4}, {"head", -1}, {"tail", 1}, {"text", ""}}, base, "is not {"},
      {{{"base", 4}, {"head", 1}, {"tail", 1}}, base, "is not {"},
      {"text", base, "is not {"},
  };
  for (const auto& c : cases) {
    auto r = ResolveBody(c.base, 6, c.delta);
    ASSERT_FALSE(r.ok()) << c.delta.dump();
    EXPECT_NE(r.error().message().find(c.message), std::string::npos) << r.error().message();
  }
}

class RequestLog : public ::testing::Test {
 protected:
  void SetUp() override {
    WriterOptions o;
    o.durability = Durability::kNone;
    o.checkpoint_interval_ms = 0;
    auto w = Writer::Create(tmp_ / "log", "run-1", signer_, o);
    ASSERT_TRUE(w.ok()) << w.error().message();
    w_ = std::move(*w);
    ASSERT_TRUE(w_->Append("run.start", {{"role", "edit"}}).ok());
  }

  // A request of the conversation so far.
  void Request(const std::string& body) {
    auto a = w_->Append("model.request", {{"turn", ++turn_}, {"body", body}});
    ASSERT_TRUE(a.ok()) << a.error().message();
  }

  std::vector<json> Lines() {
    std::vector<json> out;
    for (const auto& l : testing::Lines(testing::Slurp(tmp_ / "log")))
      out.push_back(json::parse(l));
    return out;
  }

  TempDir tmp_;
  std::shared_ptr<const Signer> signer_ = NewSigner();
  std::unique_ptr<Writer> w_;
  int turn_ = 0;
};

// A 200-turn conversation: each request holds the ones before, and the log
// grows with what each adds, not with the square of it; every body reads
// back exactly and the log verifies.
TEST_F(RequestLog, AConversationsLogGrowsWithWhatEachTurnAddsAndReadsBackWhole) {
  std::mt19937 rng(3);
  const std::string tools = ",\"tools\":[" + std::string(3000, 't') + "]}";
  std::string messages = "{\"messages\":[\"" + Text(rng, 500) + "\"";
  std::vector<std::string> bodies, live;
  size_t added = 0;
  Cursor cursor;  // read as it is written (the web view's live page)
  for (int i = 0; i < 200; ++i) {
    std::string turn = ",\"" + Text(rng, 100) + "\"";
    messages += turn;
    added += turn.size();
    bodies.push_back(messages + "]" + tools);
    Request(bodies.back());
    auto fresh = ReadNewEntries(tmp_ / "log", &cursor);
    ASSERT_TRUE(fresh.ok()) << fresh.error().message();
    for (const auto& e : fresh->records) {
      if (e.type == "model.request") live.push_back(e.payload.value("body", "(none)"));
    }
  }
  EXPECT_EQ(live, bodies);
  ASSERT_TRUE(w_->Close({{"status", "succeeded"}}).ok());
  size_t whole = 0;
  for (const auto& b : bodies) whole += b.size();
  const auto size = std::filesystem::file_size(tmp_ / "log");
  EXPECT_LT(size, whole / 20) << "the bodies whole are " << whole << " bytes";
  EXPECT_LT(size, 4 * (added + bodies.front().size()) + 200 * 300) << "linear in what was added";
  std::vector<json> lines = Lines();
  EXPECT_TRUE(lines[1]["payload"].contains("body")) << "the first request is whole";
  EXPECT_EQ(lines[2]["payload"]["body_delta"]["base"], 1);

  auto entries = ReadEntries(tmp_ / "log");
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  std::vector<std::string> read;
  for (const auto& e : entries->records) {
    if (e.type == "model.request") {
      EXPECT_FALSE(e.payload.contains("body_delta"));
      read.push_back(e.payload["body"]);
    }
  }
  EXPECT_EQ(read, bodies);
  VerifyOptions vo;
  vo.trusted_keys = {signer_->public_key()};
  auto v = Verify(tmp_ / "log", vo);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok());

  // `kiln log show` gives a request's whole size and what it added.
  std::ostringstream out, err;
  ASSERT_TRUE(Show(tmp_ / "log", {}, out, err).ok());
  EXPECT_NE(out.str().find(std::to_string(bodies.back().size()) + " B request ("),
            std::string::npos)
      << out.str().substr(out.str().size() - 300);
  EXPECT_NE(out.str().find("new on seq 199's)"), std::string::npos);
}

// Payloads over the blob threshold go to blobs, deltas among them, and read
// back the same.
TEST(RequestBlobs, DeltasKeptInBlobsReadBackWhole) {
  TempDir tmp;
  WriterOptions o;
  o.durability = Durability::kNone;
  o.checkpoint_interval_ms = 0;
  o.blob_threshold = 1500;
  auto w = Writer::Create(tmp / "log", "run-1", NewSigner(), o);
  ASSERT_TRUE(w.ok()) << w.error().message();
  ASSERT_TRUE((*w)->Append("run.start", {{"role", "edit"}}).ok());
  std::vector<std::string> bodies;
  std::string body = std::string(1200, 'a');
  for (int i = 0; i < 6; ++i) {
    body += std::string(i % 2 ? 2000 : 10, 'b' + i);  // deltas under and over the threshold
    bodies.push_back(body);
    ASSERT_TRUE((*w)->Append("model.request", {{"turn", i + 1}, {"body", body}}).ok());
  }
  ASSERT_TRUE((*w)->Close({{"status", "succeeded"}}).ok());
  EXPECT_FALSE(std::filesystem::is_empty(tmp / "blobs"));
  auto entries = ReadEntries(tmp / "log");
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  std::vector<std::string> read;
  for (const auto& e : entries->records) {
    if (e.type == "model.request") read.push_back(e.payload["body"]);
  }
  EXPECT_EQ(read, bodies);
}

// The delta is taken on the body as recorded: a secret in the conversation
// stays redacted in every request, and the bodies read back are the
// redacted ones, whole.
TEST_F(RequestLog, ASecretInTheConversationStaysRedactedInEveryDelta) {
  const std::string secret = "sk-live-0123456789abcdef";
  ASSERT_TRUE(w_->AddSecret("MODEL_KEY", secret).ok());
  std::string body = "{\"messages\":[\"" + std::string(2000, 'm') + "\",\"key " + secret + "\"";
  for (int i = 0; i < 5; ++i) {
    body += ",\"turn " + std::to_string(i) + " " + secret.substr(0, 8) + "\"";
    Request(body + "]}");
  }
  ASSERT_TRUE(w_->Close({{"status", "succeeded"}}).ok());
  std::string raw = testing::Slurp(tmp_ / "log");
  EXPECT_EQ(raw.find(secret), std::string::npos);
  auto entries = ReadEntries(tmp_ / "log");
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  int n = 0;
  for (const auto& e : entries->records) {
    if (e.type != "model.request") continue;
    std::string b = e.payload["body"];
    EXPECT_NE(b.find("key [secret:MODEL_KEY]"), std::string::npos) << b.substr(2000);
    EXPECT_NE(b.find("turn " + std::to_string(n) + " sk-live-"), std::string::npos);
    ++n;
  }
  EXPECT_EQ(n, 5);
  EXPECT_GE(std::count(raw.begin(), raw.end(), '\n'), 6);
  EXPECT_NE(raw.find("body_delta"), std::string::npos);
}

// A secret registered after a request was written: that request holds it
// (it was not known), the next ones are deltas on it and come back redacted.
TEST_F(RequestLog, ASecretKnownOnlyLaterIsRedactedInTheDeltasAfter) {
  const std::string secret = "tok-0123456789abcdef";
  const std::string start = "{\"messages\":[\"" + std::string(2000, 'm') + " " + secret + "\"";
  Request(start + "]}");
  ASSERT_TRUE(w_->AddSecret("TOKEN", secret).ok());
  Request(start + ",\"more\"]}");
  Request(start + ",\"more\",\"again\"]}");
  ASSERT_TRUE(w_->Close({{"status", "succeeded"}}).ok());
  std::vector<json> lines = Lines();
  EXPECT_TRUE(lines[3]["payload"].contains("body_delta")) << lines[3].dump().substr(0, 300);
  auto entries = ReadEntries(tmp_ / "log");
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  const std::string redacted = std::string(2000, 'm') + " [secret:TOKEN]";
  EXPECT_NE(entries->records[2].payload["body"].get<std::string>().find(redacted),
            std::string::npos);
  EXPECT_EQ(entries->records[3].payload["body"],
            "{\"messages\":[\"" + redacted + "\",\"more\",\"again\"]}");
  for (size_t i = 2; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].dump().find(secret), std::string::npos) << "line " << i;
  }
}

// Only the writer writes a body_delta: one from outside (the runtime's
// event) is refused, and nothing is written.
TEST_F(RequestLog, ABodyDeltaFromOutsideIsRefused) {
  Request(std::string(3000, 'a'));
  auto before = std::filesystem::file_size(tmp_ / "log");
  auto r = w_->Append(
      "model.request",
      {{"turn", 2}, {"body_delta", {{"base", 1}, {"head", 3000}, {"tail", 0}, {"text", "evil"}}}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("body_delta is written by the session log's writer"),
            std::string::npos);
  EXPECT_EQ(std::filesystem::file_size(tmp_ / "log"), before);
  Request(std::string(3000, 'a') + "b");  // still a delta on the first
  ASSERT_TRUE(w_->Close({{"status", "succeeded"}}).ok());
  EXPECT_EQ(Lines()[2]["payload"]["body_delta"]["base"], 1);
}

// A log whose delta does not resolve (a writer's bug, or lines removed and
// the chain re-signed by the key's holder): ReadEntries names the seq; a
// lenient read keeps the record with its delta.
TEST_F(RequestLog, AReaderNamesADeltaThatDoesNotResolve) {
  Request(std::string(3000, 'a'));
  Request(std::string(3000, 'a') + "b");
  ASSERT_TRUE(w_->Close({{"status", "succeeded"}}).ok());
  // Rewrite seq 2's base, as a forged log would (the chain is not checked
  // by a reader; Verify would refuse this log).
  std::vector<std::string> lines = testing::Lines(testing::Slurp(tmp_ / "log"));
  json forged = json::parse(lines[2]);
  forged["payload"]["body_delta"]["base"] = 7;
  lines[2] = forged.dump();
  {
    std::ofstream out(tmp_ / "log", std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
  }
  auto strict = ReadEntries(tmp_ / "log");
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.error().message().find(
                "seq 2 (model.request): its body_delta names seq 7 as its base, and the "
                "model.request before it is seq 1"),
            std::string::npos)
      << strict.error().message();
  auto lenient = ReadEntries(tmp_ / "log", "", /*lenient=*/true);
  ASSERT_TRUE(lenient.ok());
  EXPECT_TRUE(lenient->records[2].payload.contains("body_delta"));
  EXPECT_FALSE(lenient->records[2].payload.contains("body"));
  EXPECT_EQ(lenient->unresolved_bodies, 1u);
}

// Bodies that cannot be a base are written whole: one that is not valid
// UTF-8 (the canonical form repairs it), and the request after it.
TEST_F(RequestLog, ABodyThatIsNotUtf8IsWrittenWhole) {
  Request(std::string(3000, 'a'));
  Request(std::string(3000, 'a') + "\xff");
  Request(std::string(3000, 'a') + "\xff" + "c");
  Request(std::string(3000, 'a') + "\xff" + "cd");
  ASSERT_TRUE(w_->Close({{"status", "succeeded"}}).ok());
  std::vector<json> lines = Lines();
  EXPECT_TRUE(lines[2]["payload"].contains("body"));
  EXPECT_TRUE(lines[3]["payload"].contains("body"));
  auto entries = ReadEntries(tmp_ / "log");
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  EXPECT_EQ(entries->records[3].payload["body"], std::string(3000, 'a') +
                                                     "\xef\xbf\xbd"
                                                     "c");
}

}  // namespace
}  // namespace kiln::sessionlog
