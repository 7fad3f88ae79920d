// Conversations over loopback HTTP: the runtime's real Anthropic and OpenAI
// clients, then whole agent loops of several roles at once, against one
// scripted server.
#include <algorithm>
#include <fstream>
#include <map>
#include <thread>

#include "runtime/model/anthropic_client.h"
#include "runtime/model/client_common.h"
#include "runtime/model/http_client.h"
#include "runtime/model/openai_client.h"
#include "tests/modelserver/loop_fixture.h"

namespace kiln::modelserver {
namespace {

constexpr const char* kTriage = "You are kiln's triage agent. Sort the issue.";
constexpr const char* kReview = "You are kiln's review agent. Be strict.";
constexpr const char* kImplement = "You are kiln's implement agent. Fix the issue.";

std::unique_ptr<Server> StartServer(const std::string& yaml, Options opts = {}) {
  auto script = ParseScript(yaml);
  EXPECT_TRUE(script.ok()) << script.error().message();
  if (!script.ok()) return nullptr;
  auto server = Server::Start(std::move(*script), opts);
  EXPECT_TRUE(server.ok()) << server.error().message();
  return server.ok() ? std::move(*server) : nullptr;
}

// One agent run as the model sees it: a system prompt, a task and the turns
// so far. Turn() sends the conversation with the runtime's client and answers
// every tool call of the reply with "ok".
class Agent {
 public:
  Agent(const Flavour& f, const Server& server, std::string system, std::string task)
      : system_(std::move(system)), stream_(f.stream) {
    if (f.provider == "anthropic") {
      anthropic_client::Options o;
      o.base_url = server.anthropic_url();
      client_ = anthropic_client::Make(o);
    } else {
      openai_client::Options o;
      o.base_url = server.openai_url();
      client_ = openai_client::Make(o);
    }
    model::Message m;
    model::Block b;
    b.text = std::move(task);
    m.blocks.push_back(std::move(b));
    messages_.push_back(std::move(m));
  }

  model::Attempt Turn() {
    model::Request req;
    req.model = "scripted-model";
    req.system = system_;
    req.messages = &messages_;
    req.tools = &tools_;
    req.stream = stream_;
    req.idle_timeout_ms = 5000;
    req.total_timeout_ms = 10000;
    model::Attempt a = client_->Send(req, client_->Body(req));
    if (!a.reply) return a;
    model::Message said;
    said.role = model::Message::Role::kAssistant;
    said.blocks = a.reply->blocks;
    model::Message answers;
    for (const auto& b : said.blocks) {
      if (b.kind == model::Block::Kind::kToolUse) answers.results.push_back({b.call.id, "ok"});
    }
    messages_.push_back(std::move(said));
    if (!answers.results.empty()) messages_.push_back(std::move(answers));
    return a;
  }

  // The text of the next reply, or "error: <message>".
  std::string Say() {
    model::Attempt a = Turn();
    if (!a.reply) return "error: " + (a.error ? a.error->message() : std::string("?"));
    std::string text;
    for (const auto& b : a.reply->blocks) text += b.text;
    return text;
  }

 private:
  std::string system_;
  bool stream_;
  std::unique_ptr<model::Client> client_;
  std::vector<model::Message> messages_;
  std::vector<tool::Def> tools_;
};

class ConversationOverHttp : public ::testing::TestWithParam<Flavour> {};

TEST_P(ConversationOverHttp, RolesArePickedBySystemPrompt) {
  auto server = StartServer(R"(
conversations:
  - match: "You are kiln's triage agent"
    replies: [{text: triage-1}, {text: triage-2}]
  - match: "You are kiln's review agent"
    replies: [{text: review-1}, {text: review-2}]
replies: [{text: top-1}]
)");
  ASSERT_TRUE(server);
  Agent triage(GetParam(), *server, kTriage, "Triage run 1");
  Agent review(GetParam(), *server, kReview, "Review run 2");
  Agent other(GetParam(), *server, "You are a poet.", "Write run 3");
  EXPECT_EQ(review.Say(), "review-1");
  EXPECT_EQ(triage.Say(), "triage-1");
  EXPECT_EQ(other.Say(), "top-1");  // no conversation matches: the top-level replies
  EXPECT_EQ(triage.Say(), "triage-2");
  EXPECT_EQ(review.Say(), "review-2");
  auto reqs = server->requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[0].conversation, 1u);
  EXPECT_EQ(reqs[1].conversation, 0u);
  EXPECT_FALSE(reqs[2].conversation);
  EXPECT_EQ(reqs[2].step, "replies[0]");
  EXPECT_EQ(reqs[2].cursor, "");
  EXPECT_EQ(reqs[3].step, "conversations[0].replies[1]");
  EXPECT_EQ(reqs[3].cursor, reqs[1].cursor);
  EXPECT_EQ(reqs[4].step, "conversations[1].replies[1]");
}

TEST_P(ConversationOverHttp, InterleavedRunsOfOneRoleEachGetTheirOwnReplies) {
  auto server = StartServer(R"(
conversations:
  - match: "You are kiln's implement agent"
    capture: {issue: "Issue #"}
    replies:
      - text: "on {{issue}}"
        tool_calls: [{name: shell, input: {command: "gh issue view {{issue}}", args: ["#{{issue}}"]}}]
      - text: "done {{issue}}"
)");
  ASSERT_TRUE(server);
  Agent a(GetParam(), *server, kImplement, "Run 8c1f: fix Issue #12.");
  Agent b(GetParam(), *server, kImplement, "Run 03aa: fix Issue #34.");
  model::Attempt a1 = a.Turn(), b1 = b.Turn();
  ASSERT_TRUE(a1.reply && b1.reply);
  ASSERT_EQ(a1.reply->blocks.size(), 2u);
  EXPECT_EQ(a1.reply->blocks[0].text, "on 12");
  EXPECT_EQ(a1.reply->blocks[1].call.input,
            nlohmann::json({{"command", "gh issue view 12"}, {"args", {"#12"}}}));
  ASSERT_EQ(b1.reply->blocks.size(), 2u);
  EXPECT_EQ(b1.reply->blocks[0].text, "on 34");
  EXPECT_EQ(b1.reply->blocks[1].call.input["command"], "gh issue view 34");
  EXPECT_EQ(b.Say(), "done 34");
  EXPECT_EQ(a.Say(), "done 12");
  // Each run's script is used up; the error says whose.
  std::string exhausted = a.Say();
  EXPECT_NE(exhausted.find("no reply left for request 5 in conversations[0] (run "),
            std::string::npos)
      << exhausted;
  auto reqs = server->requests();
  ASSERT_EQ(reqs.size(), 5u);
  std::vector<std::string> steps;
  for (const auto& r : reqs) steps.push_back(r.step);
  EXPECT_EQ(steps,
            (std::vector<std::string>{"conversations[0].replies[0]", "conversations[0].replies[0]",
                                      "conversations[0].replies[1]", "conversations[0].replies[1]",
                                      "conversations[0].exhausted"}));
  EXPECT_NE(reqs[0].cursor, reqs[1].cursor);
  EXPECT_EQ(reqs[0].cursor, reqs[3].cursor);
  EXPECT_EQ(reqs[1].cursor, reqs[2].cursor);
  EXPECT_EQ(reqs[4].cursor, reqs[0].cursor);
}

TEST_P(ConversationOverHttp, NoMatchAndNoTopLevelRepliesIsTheExhaustedError) {
  auto server = StartServer(R"(
conversations:
  - match: "You are kiln's triage agent"
    replies: [{text: triage-1}]
)");
  ASSERT_TRUE(server);
  Agent other(GetParam(), *server, "You are a poet.", "Write run 3");
  model::Attempt a = other.Turn();
  EXPECT_EQ(a.status, 500);
  ASSERT_TRUE(a.error);
  EXPECT_NE(a.error->message().find("the script has no reply left for request 1 (no "
                                    "conversation matched its system prompt or first user "
                                    "message)"),
            std::string::npos)
      << a.error->message();
  EXPECT_EQ(server->requests()[0].step, "exhausted");
}

INSTANTIATE_TEST_SUITE_P(Flavours, ConversationOverHttp, ::testing::ValuesIn(AllFlavours()), Name);

// What the runtime acts on must fit in an event the controller can record:
// a reply over the limit ends the transfer, says so, and is no transport
// hiccup to retry (the same request would get the same reply).
TEST(HttpClientLimit, AReplyOverTheLimitIsRefusedNotRetried) {
  auto server = StartServer("replies:\n  - text: \"" + std::string(5000, 'x') + "\"\n");
  ASSERT_TRUE(server);
  http_client::Client client;
  http_client::Request req;
  req.url = server->anthropic_url() + "/v1/messages";
  req.headers = {"Content-Type: application/json", "anthropic-version: 2023-06-01"};
  req.body = R"({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]})";
  req.max_body_bytes = 1000;
  http_client::Response resp = client.Send(req);
  ASSERT_TRUE(resp.error.has_value()) << resp.body.size() << " bytes accepted";
  EXPECT_EQ(resp.error->code(), Error::Code::kInvalidArgument);
  EXPECT_NE(resp.error->message().find("longer than 1000 bytes; refused"), std::string::npos)
      << resp.error->message();
  model::Endpoint ep{"anthropic", req.url, {}};
  model::Attempt attempt;
  EXPECT_FALSE(model::ClassifyHttp(ep, resp, "request-id", attempt));
  EXPECT_FALSE(attempt.retryable);
}

TEST(ConversationRecord, SaysWhichConversationAndCursorServedEachRequest) {
  testutil::TempDir dir;
  Options opts;
  opts.record_path = dir / "requests.jsonl";
  auto server = StartServer(R"(
conversations:
  - match: "You are kiln's review agent"
    capture: {issue: "Issue #"}
    replies: [{text: "review {{issue}} {{typo}}"}]
replies: [{text: top}]
)",
                            opts);
  ASSERT_TRUE(server);
  Agent review({"anthropic", false}, *server, kReview, "Review Issue #5");
  Agent other({"openai", true}, *server, "You are a poet.", "Write");
  EXPECT_EQ(review.Say(), "review 5 {{typo}}");
  EXPECT_EQ(other.Say(), "top");
  std::ifstream in(opts.record_path);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["conversation"], 0);
  EXPECT_EQ(lines[0]["step"], "conversations[0].replies[0]");
  // The cursor is the hex SHA-256 of the first user message (`sha256sum`).
  EXPECT_EQ(lines[0]["cursor"], "1d237a28b1eb24c954f12af21d7e21fa39852db1f8071bdcca9552f4a64b4a50");
  EXPECT_EQ(lines[0]["notes"], nlohmann::json({"unknown placeholder {{typo}} left verbatim"}));
  EXPECT_TRUE(lines[1]["conversation"].is_null());
  EXPECT_TRUE(lines[1]["cursor"].is_null());
  EXPECT_EQ(lines[1]["step"], "replies[0]");
  EXPECT_FALSE(lines[1].contains("notes"));
}

// A whole agent loop (tools, workspace, the runtime's client) for one run.
loop::Outcome RunAgent(const Server& server, const Flavour& f, const std::string& skill,
                       const std::string& task, const testutil::TempDir& ws) {
  spec::RunSpec s = TestSpec(ws.path(), f);
  s.skill = skill;
  s.task = task;
  s.model.base_url = f.provider == "anthropic" ? server.anthropic_url() : server.openai_url();
  auto w = workspace_path::Workspace::Open(s.workspace);
  EXPECT_TRUE(w.ok());
  auto tools = tools::ToolSet::Make(*w, s.limits, s.tools, s.result_schema);
  EXPECT_TRUE(tools.ok());
  auto client = model_factory::Make(s.model);
  events::Sink sink(-1);
  return loop::Run(s, *client, **tools, sink, nullptr);
}

class ConcurrentLoops : public ::testing::TestWithParam<Flavour> {};

TEST_P(ConcurrentLoops, RunsOfSeveralRolesShareOneServer) {
  auto server = StartServer(R"(
conversations:
  - match: "You are kiln's triage agent"
    capture: {issue: "Issue #"}
    replies:
      - {delay_ms: 20, tool_calls: [{name: shell, input: {command: "echo triage {{issue}} > triage.txt"}}]}
      - {tool_calls: [{name: submit, input: {summary: "triaged {{issue}}"}}]}
  - match: "You are kiln's implement agent"
    capture: {issue: "Issue #"}
    replies:
      - {delay_ms: 20, tool_calls: [{name: write, input: {path: "fix-{{issue}}.txt", content: "fixed {{issue}}\n"}}]}
      - {delay_ms: 20, tool_calls: [{name: shell, input: {command: "cat fix-{{issue}}.txt"}}]}
      - {tool_calls: [{name: submit, input: {summary: "implemented {{issue}}"}}]}
)");
  ASSERT_TRUE(server);
  struct Job {
    const char* skill;
    std::string task;
    testutil::TempDir ws;
    loop::Outcome outcome;
  };
  Job jobs[] = {{kImplement, "Run a1: fix Issue #12.", {}, {}},
                {kImplement, "Run b2: fix Issue #34.", {}, {}},
                {kTriage, "Run c3: triage Issue #7.", {}, {}}};
  std::vector<std::thread> threads;
  for (auto& j : jobs) {
    threads.emplace_back(
        [&j, &server, f = GetParam()] { j.outcome = RunAgent(*server, f, j.skill, j.task, j.ws); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(jobs[0].outcome.status, "submitted") << jobs[0].outcome.reason;
  EXPECT_EQ(jobs[0].outcome.result["summary"], "implemented 12");
  EXPECT_EQ(jobs[0].ws.Read("fix-12.txt"), "fixed 12\n");
  EXPECT_EQ(jobs[1].outcome.status, "submitted") << jobs[1].outcome.reason;
  EXPECT_EQ(jobs[1].outcome.result["summary"], "implemented 34");
  EXPECT_EQ(jobs[1].ws.Read("fix-34.txt"), "fixed 34\n");
  EXPECT_EQ(jobs[2].outcome.status, "submitted") << jobs[2].outcome.reason;
  EXPECT_EQ(jobs[2].outcome.result["summary"], "triaged 7");
  EXPECT_EQ(jobs[2].ws.Read("triage.txt"), "triage 7\n");
  // Every run walked its own cursor from the first reply on.
  std::map<std::string, std::vector<std::string>> steps;
  for (const auto& r : server->requests()) steps[r.cursor].push_back(r.step);
  ASSERT_EQ(steps.size(), 3u);
  for (const auto& [cursor, s] : steps) {
    std::string c = s[0].substr(0, s[0].find('.'));
    std::vector<std::string> want = {c + ".replies[0]", c + ".replies[1]"};
    if (c == "conversations[1]") want.push_back(c + ".replies[2]");
    EXPECT_EQ(s, want) << cursor;
  }
}

INSTANTIATE_TEST_SUITE_P(Flavours, ConcurrentLoops, ::testing::ValuesIn(AllFlavours()), Name);

}  // namespace
}  // namespace kiln::modelserver
