#include "controller/run/event_pump.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <thread>

#include "controller/sessionlog/testutil.h"

namespace kiln::pump {
namespace {

using nlohmann::json;
using sessionlog::testing::Lines;
using sessionlog::testing::NewSigner;
using sessionlog::testing::Slurp;
using sessionlog::testing::TempDir;

class PumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sessionlog::WriterOptions o;
    o.durability = sessionlog::Durability::kNone;
    auto w = sessionlog::Writer::Create(dir_ / "run.log", "r1", NewSigner(), o);
    ASSERT_TRUE(w.ok()) << w.error().message();
    log_ = std::move(*w);
    ASSERT_TRUE(log_->Append("run.start", {{"role", "test"}}).ok());
    int ev[2], out[2];
    ASSERT_EQ(::pipe(ev), 0);
    ASSERT_EQ(::pipe(out), 0);
    ev_r_.reset(ev[0]);
    ev_w_.reset(ev[1]);
    out_r_.reset(out[0]);
    out_w_.reset(out[1]);
  }

  // Feeds text, closes the pipes, pumps until both are at end of file.
  Pump Feed(const std::string& events, const std::string& output = "") {
    Pump p(*log_, ev_r_.get(), out_r_.get());
    EXPECT_TRUE(WriteAll(ev_w_.get(), events).ok());
    EXPECT_TRUE(WriteAll(out_w_.get(), output).ok());
    ev_w_.reset();
    out_w_.reset();
    while (p.open()) {
      p.ReadEvents();
      p.ReadOutput();
    }
    return p;
  }

  // The types and payloads of the records after run.start.
  std::vector<json> Records() {
    std::vector<json> out;
    for (const auto& line : Lines(Slurp(dir_ / "run.log"))) {
      json j = json::parse(line);
      if (j["type"] != "run.start") out.push_back(j);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<sessionlog::Writer> log_;
  UniqueFd ev_r_, ev_w_, out_r_, out_w_;
};

// The use the progress comment shows while a run goes: replies and their
// tokens, counted only where the runtime sent numbers.
TEST_F(PumpTest, CountsTurnsAndTokensFromTheModelsReplies) {
  Pump p = Feed(
      R"({"type":"model.response","ts":"x","payload":{"turn":1,"usage":{"input_tokens":100,"output_tokens":7}}})"
      "\n"
      R"({"type":"model.response","ts":"x","payload":{"turn":2,"usage":{"input_tokens":"many","output_tokens":-3}}})"
      "\n"
      R"({"type":"model.response","ts":"x","payload":{"turn":3,"usage":{"input_tokens":50,"output_tokens":5}}})"
      "\n",
      "");
  EXPECT_EQ(p.turns(), 3u);
  EXPECT_EQ(p.input_tokens(), 150u);
  EXPECT_EQ(p.output_tokens(), 12u);
  EXPECT_EQ(Records().size(), 3u);
}

TEST_F(PumpTest, AppendsRuntimeEventsAndHoldsTheResult) {
  Pump p = Feed(
      R"({"type":"tool.call","ts":"x","payload":{"call_id":"c1","tool":"shell","input":{"command":"ls"}}})"
      "\n"
      R"({"type":"tool.result","ts":"x","payload":{"call_id":"c1","output":"a\n"}})"
      "\n"
      R"({"type":"result","ts":"x","payload":{"outcome":"submitted","result":{"summary":"ok"}}})"
      "\n",
      "kiln-runtime: a line on stderr\n");
  auto recs = Records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0]["type"], "tool.call");
  EXPECT_EQ(recs[0]["payload"]["input"]["command"], "ls");
  EXPECT_EQ(recs[1]["type"], "tool.result");
  EXPECT_EQ(p.tool_calls(), 1u);
  EXPECT_EQ(p.rejected(), 0u);
  EXPECT_EQ(p.result()["result"]["summary"], "ok");
  EXPECT_EQ(p.output_tail(), "kiln-runtime: a line on stderr");
}

TEST_F(PumpTest, ForgedAndMalformedLinesBecomeControllerRecords) {
  Pump p = Feed(
      "this is not json\n"
      R"({"type":"run.end","payload":{"status":"succeeded"}})"
      "\n"
      R"({"type":"proxy.request","payload":{"host":"evil"}})"
      "\n"
      R"({"type":"tool.call","payload":"not an object"})"
      "\n"
      R"({"type":"result","payload":{"outcome":"failed"}})"
      "\n"
      R"({"type":"result","payload":{"outcome":"submitted"}})"
      "\n"
      R"({"type":"model.request","payload":{"turn":1,"body_delta":{"base":0,"head":0,"tail":0,"text":"x"}}})"
      "\n");
  auto recs = Records();
  ASSERT_EQ(recs.size(), 6u);
  for (const auto& r : recs) {
    EXPECT_EQ(r["type"], "controller");
    EXPECT_EQ(r["payload"]["event"], "rejected_event");
  }
  EXPECT_NE(recs[1]["payload"]["message"].get<std::string>().find("run.end"), std::string::npos);
  EXPECT_NE(recs[4]["payload"]["message"].get<std::string>().find("second result"),
            std::string::npos);
  EXPECT_NE(recs[5]["payload"]["message"].get<std::string>().find("with a body_delta"),
            std::string::npos);
  EXPECT_EQ(p.rejected(), 6u);
  EXPECT_EQ(p.result()["outcome"], "failed");  // the first one stands
}

TEST_F(PumpTest, FractionsBecomeText) {
  Feed(R"({"type":"tool.call","payload":{"input":{"timeout":1.5,"n":[2,0.25]}}})"
       "\n");
  auto recs = Records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["payload"]["input"]["timeout"], "1.5");
  EXPECT_EQ(recs[0]["payload"]["input"]["n"][0], 2);
  EXPECT_EQ(recs[0]["payload"]["input"]["n"][1], "0.25");
}

// Writes text from a thread (the pipe is small) while p pumps it all.
void PumpWhileWriting(Pump& p, UniqueFd write_end, std::string text) {
  int w = write_end.release();
  std::thread writer([w, &text] {
    (void)WriteAll(w, text);
    ::close(w);
  });
  while (p.open()) {
    pollfd fds[2] = {{p.events_fd(), POLLIN, 0}, {p.output_fd(), POLLIN, 0}};
    ::poll(fds, 2, 1000);
    p.ReadEvents();
    p.ReadOutput();
  }
  writer.join();
}

TEST_F(PumpTest, ALargeEventIsRecordedInABlob) {
  // A model's 17 MiB write: recorded whole, its payload in a blob.
  std::string content(17 << 20, 'a');
  Pump p(*log_, ev_r_.get(), out_r_.get());
  out_w_.reset();
  PumpWhileWriting(p, std::move(ev_w_),
                   R"({"type":"tool.call","payload":{"input":{"content":")" + content + "\"}}}\n" +
                       R"({"type":"tool.call","payload":{"call_id":"after"}})" + "\n");
  EXPECT_EQ(p.failure(), "");
  std::vector<json> lines;
  for (const auto& line : Lines(Slurp(dir_ / "run.log"))) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  ASSERT_TRUE(lines[1].contains("blob")) << "a 17 MiB payload inline";
  std::string blob = Slurp(dir_ / ("blobs/" + lines[1]["blob"]["sha256"].get<std::string>()));
  EXPECT_EQ(json::parse(blob)["input"]["content"], content);
  EXPECT_EQ(lines[2]["payload"]["call_id"], "after");
  EXPECT_EQ(p.tool_calls(), 2u);
}

TEST_F(PumpTest, AnEventOverTheLimitFailsThePumpAndIsNoted) {
  Pump p(*log_, ev_r_.get(), out_r_.get(), 4096, /*max_event=*/1 << 20);
  out_w_.reset();
  PumpWhileWriting(
      p, std::move(ev_w_),
      R"({"type":"tool.call","payload":{"x":")" + std::string(2 << 20, 'a') + "\"}}\n");
  EXPECT_NE(p.failure().find("longer than 1048576 bytes"), std::string::npos) << p.failure();
  auto recs = Records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["payload"]["event"], "unrecorded_event");
}

TEST_F(PumpTest, WhatCanonicalJsonCannotHoldIsRecordedAsText) {
  // A model's tool input nested past the log's depth, and an integer past
  // 2^53: recorded as their text, not refused (which would stop the run).
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "[";
  for (int i = 0; i < 200; ++i) deep += "]";
  Pump p = Feed(R"({"type":"tool.call","payload":{"input":{"deep":)" + deep +
                R"(,"big":12345678901234567890,"small":-9007199254740993}}})"
                "\n");
  EXPECT_EQ(p.failure(), "");
  auto recs = Records();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["type"], "tool.call");
  // Past the depth, the rest of the subtree is a string of its JSON.
  EXPECT_NE(recs[0]["payload"]["input"]["deep"].dump().find("\"[[[[[[[[[["), std::string::npos);
  EXPECT_EQ(recs[0]["payload"]["input"]["big"], "12345678901234567890");
  EXPECT_EQ(recs[0]["payload"]["input"]["small"], "-9007199254740993");
}

TEST_F(PumpTest, AnEventTheLogRefusesFailsThePump) {
  ASSERT_TRUE(log_->Close({{"status", "error"}}).ok());  // a log that takes nothing more
  Pump p = Feed(R"({"type":"tool.call","payload":{"input":{}}})"
                "\n");
  EXPECT_NE(p.failure().find("could not be recorded"), std::string::npos) << p.failure();
}

TEST(Sanitise, CountsConversions) {
  json j = {{"a", 1}, {"b", 0.5}, {"c", {1.25, "x", true}}};
  EXPECT_EQ(Sanitise(j), 2u);
  EXPECT_EQ(j["a"], 1);
  EXPECT_EQ(j["b"], "0.5");
  EXPECT_EQ(j["c"][0], "1.25");
}

}  // namespace
}  // namespace kiln::pump
