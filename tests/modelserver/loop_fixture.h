// Runs the real agent loop (kiln_runtime, libcurl clients) against an
// in-process scripted model server, for the whole-loop tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "runtime/events.h"
#include "runtime/loop.h"
#include "runtime/model_factory.h"
#include "runtime/tools/testutil.h"
#include "runtime/tools/toolset.h"
#include "tests/modelserver/server.h"

namespace kiln::modelserver {

struct Run {
  loop::Outcome outcome;
  std::vector<nlohmann::json> events;
  std::vector<RecordedRequest> requests;

  std::vector<nlohmann::json> Of(const std::string& type) const {
    std::vector<nlohmann::json> out;
    for (const auto& e : events) {
      if (e["type"] == type) out.push_back(e["payload"]);
    }
    return out;
  }
};

struct Flavour {
  std::string provider;
  bool stream;
};

inline void PrintTo(const Flavour& f, std::ostream* os) {
  *os << f.provider << (f.stream ? " streaming" : " plain");
}

inline std::string Name(const ::testing::TestParamInfo<Flavour>& p) {
  return p.param.provider + (p.param.stream ? "_stream" : "_plain");
}

inline const std::vector<Flavour>& AllFlavours() {
  static const std::vector<Flavour> k = {
      {"anthropic", true}, {"anthropic", false}, {"openai", true}, {"openai", false}};
  return k;
}

// A spec for tests: short backoffs and timeouts so faults cost milliseconds.
inline spec::RunSpec TestSpec(const std::string& workspace, const Flavour& f) {
  nlohmann::json j = {{"role", "implement"},
                      {"skill", "You are a careful engineer."},
                      {"task", "Do the task."},
                      {"workspace", workspace},
                      {"model",
                       {{"provider", f.provider},
                        {"name", "scripted-model"},
                        {"stream", f.stream},
                        {"idle_timeout_ms", 300},
                        {"request_timeout_ms", 5000},
                        {"api_key_env", "KILN_TEST_NO_SUCH_KEY"}}},
                      {"retry", {{"initial_backoff_ms", 2}, {"max_backoff_ms", 20}}},
                      {"result_schema",
                       {{"type", "object"},
                        {"properties", {{"summary", {{"type", "string"}}}}},
                        {"required", {"summary"}}}}};
  auto s = spec::Parse(j);
  EXPECT_TRUE(s.ok()) << s.error().message();
  return *s;
}

inline Run RunLoop(const std::string& script_text, const Flavour& f, const testutil::TempDir& ws,
                   const std::function<void(spec::RunSpec&)>& tweak = {},
                   steer::Inbox* inbox = nullptr, size_t max_event = events::kMaxLineBytes) {
  Run r;
  auto script = ParseScript(script_text);
  EXPECT_TRUE(script.ok()) << script.error().message();
  if (!script.ok()) return r;
  auto server = Server::Start(std::move(*script));
  EXPECT_TRUE(server.ok()) << server.error().message();
  if (!server.ok()) return r;
  spec::RunSpec s = TestSpec(ws.path(), f);
  s.model.base_url =
      f.provider == "anthropic" ? (*server)->anthropic_url() : (*server)->openai_url();
  if (tweak) tweak(s);
  auto w = workspace_path::Workspace::Open(s.workspace);
  EXPECT_TRUE(w.ok());
  auto tools = tools::ToolSet::Make(*w, s.limits, s.tools, s.result_schema);
  EXPECT_TRUE(tools.ok());
  auto client = model_factory::Make(s.model);
  events::Sink sink(-1, max_event);
  sink.set_observer([&](const nlohmann::json& e) { r.events.push_back(e); });
  r.outcome = loop::Run(s, *client, **tools, sink, inbox);
  r.requests = (*server)->requests();
  return r;
}

}  // namespace kiln::modelserver
