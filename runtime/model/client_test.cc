// Unit tests of the two clients' request bodies and reply parsers; the wire
// exchanges themselves are exercised against the scripted server in
// tests/modelserver/.
#include <gtest/gtest.h>

#include "runtime/model/anthropic_client.h"
#include "runtime/model/openai_client.h"

namespace kiln {
namespace {

using model::Block;
using model::Message;
using nlohmann::json;

std::vector<Message> History() {
  std::vector<Message> m(3);
  m[0].blocks.push_back(Block{Block::Kind::kText, "task", {}, {}});
  m[1].role = Message::Role::kAssistant;
  Block call;
  call.kind = Block::Kind::kToolUse;
  call.call = {"id1", "shell", {{"command", "ls"}}, std::nullopt};
  m[1].blocks.push_back(Block{Block::Kind::kText, "looking", {}, {}});
  m[1].blocks.push_back(call);
  m[2].results.push_back({"id1", "boom", true});
  return m;
}

std::vector<tool::Def> Tools() {
  tool::Def d;
  d.name = "shell";
  d.description = "run";
  d.input_schema = {{"type", "object"}};
  return {d};
}

// A request of model "m" with system prompt "sys" over msgs and tools.
model::Request RequestOf(const std::vector<Message>& msgs, const std::vector<tool::Def>& tools) {
  model::Request r;
  r.model = "m";
  r.system = "sys";
  r.messages = &msgs;
  r.tools = &tools;
  return r;
}

TEST(AnthropicClient, BuildsMessagesWithToolBlocks) {
  auto msgs = History();
  auto tools = Tools();
  model::Request r = RequestOf(msgs, tools);
  json b = anthropic_client::BuildBody(r);
  EXPECT_EQ(b["system"], "sys");
  EXPECT_EQ(b["stream"], true);
  EXPECT_EQ(b["messages"][1]["content"][1], json({{"type", "tool_use"},
                                                  {"id", "id1"},
                                                  {"name", "shell"},
                                                  {"input", {{"command", "ls"}}}}));
  EXPECT_EQ(b["messages"][2]["content"][0], json({{"type", "tool_result"},
                                                  {"tool_use_id", "id1"},
                                                  {"content", "boom"},
                                                  {"is_error", true}}));
  EXPECT_EQ(b["tools"][0]["input_schema"], json({{"type", "object"}}));
}

// Body() keeps each message's text between requests; what it sends must be
// exactly the whole body's dump, however the conversation changes: a turn
// added, steering appended to the last message, earlier messages dropped
// (compaction) or changed, text that is not UTF-8.
TEST(ClientBody, IsTheWholeBodysDumpAsTheConversationChanges) {
  auto tools = Tools();
  for (bool openai : {false, true}) {
    SCOPED_TRACE(openai ? "openai" : "anthropic");
    std::unique_ptr<model::Client> client =
        openai ? openai_client::Make({}) : anthropic_client::Make({});
    auto whole = [&](const model::Request& r) {
      json b = openai ? openai_client::BuildBody(r) : anthropic_client::BuildBody(r);
      return b.dump(-1, ' ', false, json::error_handler_t::replace);
    };
    std::vector<Message> msgs = History();
    model::Request r = RequestOf(msgs, tools);
    EXPECT_EQ(client->Body(r), whole(r));
    for (int turn = 0; turn < 4; ++turn) {
      Message reply;
      reply.role = Message::Role::kAssistant;
      Block call;
      call.kind = Block::Kind::kToolUse;
      call.call = {"c" + std::to_string(turn), "shell", {{"n", turn}}, std::nullopt};
      reply.blocks.push_back(call);
      msgs.push_back(reply);
      Message result;
      result.results.push_back({"c" + std::to_string(turn), "out \xff" + std::to_string(turn)});
      msgs.push_back(result);
      EXPECT_EQ(client->Body(r), whole(r)) << "turn " << turn;
    }
    msgs.back().blocks.push_back(Block{Block::Kind::kText, "steering", {}, {}});
    EXPECT_EQ(client->Body(r), whole(r)) << "steering on the last message";
    msgs[1].blocks[0].text = "changed";
    EXPECT_EQ(client->Body(r), whole(r)) << "an earlier message changed";
    msgs.erase(msgs.begin() + 1, msgs.begin() + 5);
    EXPECT_EQ(client->Body(r), whole(r)) << "compacted";
    r.max_tokens = 7;
    r.stream = false;
    r.system.clear();
    EXPECT_EQ(client->Body(r), whole(r)) << "another envelope";
    msgs.clear();
    EXPECT_EQ(client->Body(r), whole(r)) << "no messages";
  }
}

// The exact bytes of a body: a recorded run is replayed by comparing the
// requests byte for byte, so a change here makes every older log diverge.
TEST(ClientBody, IsTheSameBytesAsTheRecordedRunsHave) {
  auto msgs = History();
  auto tools = Tools();
  model::Request r = RequestOf(msgs, tools);
  EXPECT_EQ(anthropic_client::Make({})->Body(r),
            R"({"max_tokens":4096,"messages":[{"content":[{"text":"task","type":"text"}],)"
            R"("role":"user"},{"content":[{"text":"looking","type":"text"},{"id":"id1",)"
            R"("input":{"command":"ls"},"name":"shell","type":"tool_use"}],"role":"assistant"},)"
            R"({"content":[{"content":"boom","is_error":true,"tool_use_id":"id1",)"
            R"("type":"tool_result"}],"role":"user"}],"model":"m","stream":true,"system":"sys",)"
            R"("tools":[{"description":"run","input_schema":{"type":"object"},"name":"shell"}]})");
  EXPECT_EQ(openai_client::Make({})->Body(r),
            R"({"max_tokens":4096,"messages":[{"content":"sys","role":"system"},)"
            R"({"content":"task","role":"user"},{"content":"looking","role":"assistant",)"
            R"("tool_calls":[{"function":{"arguments":"{\"command\":\"ls\"}","name":"shell"},)"
            R"("id":"id1","type":"function"}]},{"content":"Error: boom","role":"tool",)"
            R"("tool_call_id":"id1"}],"model":"m","stream":true,"stream_options":)"
            R"({"include_usage":true},"tools":[{"function":{"description":"run","name":"shell",)"
            R"("parameters":{"type":"object"}},"type":"function"}]})");
}

TEST(AnthropicClient, ParsesEveryStopReasonAndKeepsUnknownBlocks) {
  for (std::string stop :
       {"end_turn", "tool_use", "max_tokens", "pause_turn", "refusal", "stop_sequence"}) {
    model::Attempt a;
    json body = {
        {"id", "msg_1"},
        {"model", "m"},
        {"stop_reason", stop},
        {"content",
         {{{"type", "thinking"}, {"thinking", "hmm"}, {"signature", "s"}},
          {{"type", "text"}, {"text", "hi"}},
          {{"type", "tool_use"}, {"id", "t"}, {"name", "read"}, {"input", {{"path", "x"}}}}}},
        {"usage", {{"input_tokens", 10}, {"output_tokens", 3}, {"cache_read_input_tokens", 5}}}};
    anthropic_client::ParseBody(body.dump(), a);
    ASSERT_TRUE(a.reply) << a.error->message();
    EXPECT_EQ(a.reply->stop_reason, stop);
    ASSERT_EQ(a.reply->blocks.size(), 3u);
    EXPECT_EQ(a.reply->blocks[0].kind, Block::Kind::kOther);
    EXPECT_EQ(a.reply->blocks[2].call.input["path"], "x");
    EXPECT_EQ(a.usage.cache_read_tokens, 5u);
  }
  model::Attempt bad;
  anthropic_client::ParseBody("{\"content\": [", bad);
  EXPECT_FALSE(bad.reply);
  EXPECT_NE(bad.error->message().find("malformed reply body"), std::string::npos);
}

TEST(OpenAIClient, BuildsToolMessagesAndMapsFinishReasons) {
  auto msgs = History();
  auto tools = Tools();
  model::Request r = RequestOf(msgs, tools);
  json b = openai_client::BuildBody(r);
  EXPECT_EQ(b["messages"][0], json({{"role", "system"}, {"content", "sys"}}));
  EXPECT_EQ(b["messages"][2]["tool_calls"][0]["function"]["arguments"], "{\"command\":\"ls\"}");
  EXPECT_EQ(b["messages"][3],
            json({{"role", "tool"}, {"tool_call_id", "id1"}, {"content", "Error: boom"}}));
  EXPECT_EQ(b["stream_options"]["include_usage"], true);
  EXPECT_EQ(b["tools"][0]["function"]["parameters"], json({{"type", "object"}}));
  EXPECT_EQ(openai_client::MapFinishReason("stop"), "end_turn");
  EXPECT_EQ(openai_client::MapFinishReason("length"), "max_tokens");
  EXPECT_EQ(openai_client::MapFinishReason("tool_calls"), "tool_use");
  EXPECT_EQ(openai_client::MapFinishReason("content_filter"), "refusal");
}

TEST(OpenAIClient, ParsesToolCallsAndBadArguments) {
  model::Attempt a;
  json body = {{"id", "c"},
               {"choices",
                {{{"index", 0},
                  {"finish_reason", "tool_calls"},
                  {"message",
                   {{"role", "assistant"},
                    {"content", nullptr},
                    {"tool_calls",
                     {{{"id", "a"},
                       {"type", "function"},
                       {"function", {{"name", "read"}, {"arguments", "{\"path\":\"x\"}"}}}},
                      {{"id", "b"},
                       {"type", "function"},
                       {"function", {{"name", "read"}, {"arguments", "{oops"}}}}}}}}}}},
               {"usage",
                {{"prompt_tokens", 100},
                 {"completion_tokens", 7},
                 {"prompt_tokens_details", {{"cached_tokens", 40}}}}}};
  openai_client::ParseBody(body.dump(), a);
  ASSERT_TRUE(a.reply);
  EXPECT_EQ(a.reply->stop_reason, "tool_use");
  ASSERT_EQ(a.reply->blocks.size(), 2u);
  EXPECT_EQ(a.reply->blocks[0].call.input["path"], "x");
  EXPECT_EQ(a.reply->blocks[1].call.bad_input, "{oops");
  EXPECT_EQ(a.usage.input_tokens, 60u);
  EXPECT_EQ(a.usage.cache_read_tokens, 40u);
  EXPECT_EQ(a.usage.output_tokens, 7u);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

TEST(AnthropicClient, ReassemblesAStreamedToolCall) {
  std::string sse =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":"
      "{\"input_tokens\":12,\"output_tokens\":1}}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
      "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"shell\",\"input\":{}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
      "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"comm\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
      "{\"type\":\"input_json_delta\",\"partial_json\":\"and\\\": \\\"ls\\\"}\"}}\n\n"
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
      "\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n"
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  model::Attempt a;
  anthropic_client::ParseStream(sse, a);
  ASSERT_TRUE(a.reply) << a.error->message();
  ASSERT_EQ(a.reply->blocks.size(), 1u);
  EXPECT_EQ(a.reply->blocks[0].call.input, json({{"command", "ls"}}));
  EXPECT_EQ(a.reply->stop_reason, "tool_use");
  EXPECT_EQ(a.usage.input_tokens, 12u);
  EXPECT_EQ(a.usage.output_tokens, 9u);
  model::Attempt cut;
  anthropic_client::ParseStream(sse.substr(0, sse.size() / 2), cut);
  EXPECT_FALSE(cut.reply);
  EXPECT_EQ(cut.usage.input_tokens, 12u);  // spent even though the stream broke
}

// Found by model_reply_fuzz: events whose data is valid JSON of the wrong
// shape (a number, a string, an array, a type that is not a string) must fail
// the attempt with a message, never throw out of the parser.
TEST(AnthropicClient, WrongShapedEventsFailTheAttempt) {
  for (const char* data : {"5", "\"text\"", "[1,2]", "{\"type\":7}", "null"}) {
    model::Attempt a;
    anthropic_client::ParseStream(std::string("event: message_start\ndata: ") + data + "\n\n", a);
    EXPECT_FALSE(a.reply) << data;
    ASSERT_TRUE(a.error) << data;
    EXPECT_FALSE(a.error->message().empty()) << data;
    model::Attempt o;
    openai_client::ParseStream(std::string("data: ") + data + "\n\n", o);
    EXPECT_FALSE(o.reply) << data;
    EXPECT_TRUE(o.error) << data;
  }
}

TEST(OpenAIClient, ReassemblesToolCallFragmentsByIndex) {
  std::string sse =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"b\","
      "\"function\":{\"name\":\"read\",\"arguments\":\"\"}},{\"index\":0,\"id\":\"a\",\"function\":"
      "{\"name\":\"shell\",\"arguments\":\"{\\\"command\\\":\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":"
      "{\"arguments\":\"{\\\"path\\\":\\\"x\\\"}\"}},{\"index\":0,\"function\":{\"arguments\":"
      "\"\\\"ls\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":5}}\n\n"
      "data: [DONE]\n\n";
  model::Attempt a;
  openai_client::ParseStream(sse, a);
  ASSERT_TRUE(a.reply) << a.error->message();
  ASSERT_EQ(a.reply->blocks.size(), 2u);
  EXPECT_EQ(a.reply->blocks[0].call.id, "a");
  EXPECT_EQ(a.reply->blocks[0].call.input, json({{"command", "ls"}}));
  EXPECT_EQ(a.reply->blocks[1].call.input, json({{"path", "x"}}));
  EXPECT_EQ(a.reply->stop_reason, "tool_use");
  EXPECT_EQ(a.usage.input_tokens, 30u);
  model::Attempt no_done;
  openai_client::ParseStream(sse.substr(0, sse.find("data: [DONE]")), no_done);
  EXPECT_FALSE(no_done.reply);
}

}  // namespace
}  // namespace kiln
