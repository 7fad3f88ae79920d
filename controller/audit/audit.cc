#include "controller/audit/audit.h"

#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "base/digest.h"
#include "controller/sessionlog/entries.h"
#include "controller/sessionlog/record.h"
#include "controller/sessionlog/verify.h"
#include "runtime/spec.h"

namespace kiln::audit {
namespace {

using nlohmann::json;
using sessionlog::Entry;

// j[key] when j is an object that has it, else def.
json Get(const json& j, const char* key, json def = nullptr) {
  return j.is_object() && j.contains(key) ? j.at(key) : def;
}

// What the model wrote in a response body: a message or a stream (SSE), in
// the Anthropic or the OpenAI format.
std::string ReplyText(const std::string& body) {
  std::string text;
  auto take = [&text](const json& j) {
    if (!j.is_object()) return;
    for (const json& c : Get(j, "content", json::array())) {
      if (Get(c, "type") == "text" && Get(c, "text").is_string()) text += c.at("text");
    }
    const json delta = Get(j, "delta");
    if (Get(delta, "type") == "text_delta" && Get(delta, "text").is_string()) {
      text += delta.at("text");
    }
    for (const json& ch : Get(j, "choices", json::array())) {
      for (const char* part : {"message", "delta"}) {
        const json content = Get(Get(ch, part), "content");
        if (content.is_string()) text += content.get<std::string>();
      }
    }
  };
  json whole = json::parse(body, nullptr, false);
  if (!whole.is_discarded()) {
    take(whole);
    return text;
  }
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("data:")) continue;
    json j = json::parse(line.substr(5), nullptr, false);
    if (!j.is_discarded()) take(j);
  }
  return text;
}

// The cost of one model call in micro-dollars at the run spec's prices, or
// null when the spec names no price for the model.
json CostOf(const std::map<std::string, spec::Price>& prices, const std::string& model,
            const json& usage) {
  auto it = prices.find(model);
  if (it == prices.end() || !usage.is_object()) return nullptr;
  const spec::Price& p = it->second;
  auto n = [&](const char* key) { return static_cast<double>(usage.value(key, uint64_t{0})); };
  double usd = (n("input_tokens") * p.input_per_mtok + n("output_tokens") * p.output_per_mtok +
                n("cache_read_tokens") * p.cache_read_per_mtok +
                n("cache_write_tokens") * p.cache_write_per_mtok) /
               1e6;
  return static_cast<uint64_t>(std::llround(usd * 1e6));
}

json Verification(const sessionlog::VerifyReport& v, const sessionlog::Entries& entries) {
  std::set<std::string> keys;
  json checkpoints = json::array();
  json signed_through;
  for (const Entry& e : entries.records) {
    if (e.key_id.empty()) continue;
    keys.insert(e.key_id);
    signed_through = e.seq;
    if (e.type == "checkpoint") checkpoints.push_back({{"seq", e.seq}, {"ts", e.ts}});
  }
  json findings = json::array();
  for (const auto& f : v.findings) findings.push_back(sessionlog::FormatFinding(f));
  return {{"verified", v.ok()},
          {"complete", v.complete},
          {"records", v.records},
          {"lines", v.lines},
          {"bytes", v.bytes},
          {"blobs", v.blobs},
          {"signatures", v.signatures},
          {"key_ids", keys},
          {"checkpoints", checkpoints},
          {"signed_through_seq", signed_through},
          {"last_seq", v.last_seq ? json(*v.last_seq) : json()},
          {"head", v.last_seq ? Hex(v.head) : ""},
          {"findings", findings},
          {"findings_total", v.findings_total},
          {"notes", v.notes}};
}

json Inputs(const json& start) {
  json in = json::object();
  for (const char* key : {"run_id", "attempt", "role", "task", "requested_by", "context",
                          "repository", "image", "skill", "model", "budgets", "limits", "secrets",
                          "network_allow", "command", "replay_of"}) {
    if (start.is_object() && start.contains(key)) in[key] = start.at(key);
  }
  const json spec = Get(start, "runtime_spec");
  if (spec.is_object()) in["runtime_spec"] = spec;
  return in;
}

}  // namespace

json Folder::inputs() const { return Inputs(start_); }

Folder::Change Folder::Add(const Entry& e) {
  const json& p = e.payload;
  json at = {{"seq", e.seq}, {"ts", e.ts}};
  auto item = [&](size_t i) { return Change{Change::kTimeline, i}; };
  if (e.type == "run.start") {
    start_ = p;
    auto rs = spec::ParseText(Get(Get(p, "runtime_spec"), "text", "").get<std::string>(), "spec");
    if (rs.ok()) prices_ = rs->prices;
    return {Change::kOther};
  }
  if (e.type == "model.request") {
    at.update({{"kind", "model"},
               {"turn", Get(p, "turn")},
               {"attempt", Get(p, "attempt")},
               {"model", Get(p, "model")}});
    turns_[{Get(p, "turn"), Get(p, "attempt")}] = timeline_.size();
    timeline_.push_back(at);
    return item(timeline_.size() - 1);
  }
  if (e.type == "model.response") {
    auto it = turns_.find({Get(p, "turn"), Get(p, "attempt")});
    if (it == turns_.end()) return {};
    json& t = timeline_[it->second];
    t["status"] = Get(p, "status");
    t["stop_reason"] = Get(p, "stop_reason");
    t["usage"] = Get(p, "usage");
    t["duration_ms"] = Get(p, "latency_ms");
    if (Get(p, "error").is_string()) t["error"] = p.at("error");
    t["text"] = ReplyText(Get(p, "body", "").get<std::string>());
    t["cost_microusd"] =
        CostOf(prices_, t["model"].is_string() ? t["model"].get<std::string>() : "", t["usage"]);
    return item(it->second);
  }
  if (e.type == "tool.call") {
    at.update({{"kind", "tool"},
               {"turn", Get(p, "turn")},
               {"call_id", Get(p, "call_id")},
               {"tool", Get(p, "tool")},
               {"input", Get(p, "input")}});
    if (Get(p, "call_id").is_string()) calls_[p.at("call_id")] = timeline_.size();
    timeline_.push_back(at);
    return item(timeline_.size() - 1);
  }
  if (e.type == "tool.result") {
    auto it = Get(p, "call_id").is_string() ? calls_.find(p.at("call_id")) : calls_.end();
    if (it == calls_.end()) return {};
    json& t = timeline_[it->second];
    for (const char* key :
         {"exit_status", "is_error", "duration_ms", "output", "output_bytes", "truncated"}) {
      t[key] = Get(p, key);
    }
    return item(it->second);
  }
  if (e.type == "steer") {
    json s = at;
    s.update({{"from", Get(p, "from")}, {"message", Get(p, "message")}});
    steering_.push_back(s);
    s["kind"] = "steer";
    timeline_.push_back(s);
    return item(timeline_.size() - 1);
  }
  if (e.type == "controller" || e.type == "recovery") {
    at.update({{"kind", e.type == "recovery" ? "recovery" : "note"},
               {"event", Get(p, "event", e.type)},
               {"message", Get(p, "message", Get(p, "reason", ""))}});
    if (Get(p, "event") == "decision") gate_ = {{"decision", Get(p, "actions")}};
    if (Get(p, "event") == "command_output") {
      gate_ = {{"command", Get(p, "command")},
               {"exit_code", Get(p, "exit_code")},
               {"output", Get(p, "output")}};
    }
    timeline_.push_back(at);
    return item(timeline_.size() - 1);
  }
  if (e.type == "proxy.request") {
    json r = at;
    for (const char* key : {"method", "host", "port", "path", "gateway", "status", "decision",
                            "reason", "bytes_sent", "bytes_received", "duration_ms"}) {
      r[key] = Get(p, key);
    }
    proxy_.push_back(r);
    return {Change::kProxy, proxy_.size() - 1};
  }
  if (e.type == "result") {
    result_ = at;
    for (const char* key : {"outcome", "reason", "summary", "result", "totals"}) {
      result_[key] = Get(p, key);
    }
    diff_ = Get(p, "diff");
    return {Change::kOther};
  }
  if (e.type == "run.end") {
    end_ = at;
    for (const char* key : {"status", "error", "totals", "timings"}) end_[key] = Get(p, key);
    end_["key_id"] = e.key_id;
    return {Change::kOther};
  }
  return {};
}

json Folder::Usage() const {
  uint64_t turns = 0, in = 0, out = 0, calls = 0, cost = 0;
  bool priced = true;
  for (const json& t : timeline_) {
    if (t["kind"] == "tool") ++calls;
    if (t["kind"] != "model") continue;
    ++turns;
    const json usage = Get(t, "usage");
    if (usage.is_object()) {
      in += usage.value("input_tokens", uint64_t{0});
      out += usage.value("output_tokens", uint64_t{0});
    }
    const json c = Get(t, "cost_microusd");
    if (c.is_number_unsigned()) {
      cost += c.get<uint64_t>();
    } else if (t.contains("usage")) {
      priced = false;
    }
  }
  json u = {{"turns", turns}, {"input_tokens", in}, {"output_tokens", out}, {"tool_calls", calls}};
  u["cost_microusd"] = priced ? json(cost) : json();
  return u;
}

json Folder::verify_gate() const {
  json gate = gate_;
  if (gate.is_object() && result_.is_object()) gate["outcome"] = result_["outcome"];
  return gate;
}

json Folder::Sections() const {
  const json gate = verify_gate();
  return {{"inputs", inputs()}, {"timeline", timeline_}, {"proxy", proxy_}, {"steering", steering_},
          {"result", result_},  {"verify_gate", gate},   {"end", end_},     {"diff", diff_}};
}

Result<json> Build(const std::string& log_path,
                   const std::vector<sessionlog::PublicKey>& trusted_keys) {
  sessionlog::VerifyOptions vo;
  vo.trusted_keys = trusted_keys;
  KILN_ASSIGN_OR_RETURN(sessionlog::VerifyReport verdict, sessionlog::Verify(log_path, vo));
  KILN_ASSIGN_OR_RETURN(sessionlog::Entries entries,
                        sessionlog::ReadEntries(log_path, "", /*lenient=*/true));
  Folder folder;
  for (const Entry& e : entries.records) folder.Add(e);
  json report = {{"format", "kiln-audit/1"},
                 {"log", log_path},
                 {"verification", Verification(verdict, entries)}};
  report.update(folder.Sections());
  if (entries.unreadable_blobs > 0) report["unreadable_blobs"] = entries.unreadable_blobs;
  if (entries.unresolved_bodies > 0) report["unresolved_bodies"] = entries.unresolved_bodies;
  return report;
}

}  // namespace kiln::audit
