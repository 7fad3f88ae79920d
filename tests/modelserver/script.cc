#include "tests/modelserver/script.h"

#include <yaml-cpp/yaml.h>

#include "base/fd.h"
#include "controller/yaml_fields.h"

namespace kiln::modelserver {
namespace {

using nlohmann::json;

Result<Reply> ReplyFrom(const json& j, const std::string& where) {
  if (!j.is_object()) return Error::Invalid(where + " must be an object");
  Reply r;
  try {
    for (const auto& [k, v] : j.items()) {
      if (k == "text") {
        r.text = v.get<std::string>();
      } else if (k == "stop_reason") {
        r.stop_reason = v.get<std::string>();
      } else if (k == "delay_ms") {
        r.delay_ms = v.get<uint64_t>();
      } else if (k == "repeat") {
        r.repeat = v.get<int64_t>();
      } else if (k == "usage") {
        if (v.contains("input_tokens")) r.input_tokens = v["input_tokens"].get<uint64_t>();
        if (v.contains("output_tokens")) r.output_tokens = v["output_tokens"].get<uint64_t>();
      } else if (k == "tool_calls") {
        for (const auto& c : v) {
          ToolCall tc;
          tc.id = c.value("id", "");
          tc.name = c.at("name").get<std::string>();
          if (c.contains("input")) tc.input = c["input"];
          if (c.contains("raw_arguments")) tc.raw_arguments = c["raw_arguments"].get<std::string>();
          r.tool_calls.push_back(std::move(tc));
        }
      } else if (k == "fault") {
        Fault f;
        f.kind = v.at("kind").get<std::string>();
        if (f.kind != "http" && f.kind != "cut" && f.kind != "malformed" &&
            f.kind != "stream_error" && f.kind != "stall") {
          return Error::Invalid(where + ".fault.kind: unknown fault " + Quote(f.kind));
        }
        f.status = v.value("status", f.kind == "http" ? 500 : 200);
        if (v.contains("retry_after")) {
          f.retry_after = v["retry_after"].is_string() ? v["retry_after"].get<std::string>()
                                                       : v["retry_after"].dump();
        }
        f.error_type = v.value("error_type", "");
        f.message = v.value("message", f.message);
        f.after_events = v.value("after_events", f.after_events);
        f.stall_ms = v.value("stall_ms", uint64_t{0});
        r.fault = f;
      } else {
        return Error::Invalid(where + ": unknown member " + Quote(k));
      }
    }
  } catch (const std::exception& e) {
    return Error::Invalid(where + ": " + e.what());
  }
  return r;
}

}  // namespace

Result<Script> ScriptFromJson(const json& j) {
  Script s;
  if (j.is_array()) return ScriptFromJson(json{{"replies", j}});
  if (!j.is_object()) return Error::Invalid("script must be an object or a list of replies");
  for (const auto& [k, v] : j.items()) {
    if (k == "replies") {
      for (size_t i = 0; i < v.size(); ++i) {
        KILN_ASSIGN_OR_RETURN(Reply r, ReplyFrom(v[i], "replies[" + std::to_string(i) + "]"));
        s.replies.push_back(std::move(r));
      }
    } else if (k == "rules") {
      for (size_t i = 0; i < v.size(); ++i) {
        std::string where = "rules[" + std::to_string(i) + "]";
        const json& rj = v[i];
        Rule rule;
        if (!rj.is_object() || !rj.contains("reply"))
          return Error::Invalid(where + " needs a reply");
        const json& when = rj.value("when", json::object());
        rule.contains = when.value("contains", "");
        rule.tool = when.value("tool", "");
        if (when.contains("is_error")) rule.is_error = when["is_error"].get<bool>();
        rule.times = rj.value("times", int64_t{-1});
        KILN_ASSIGN_OR_RETURN(rule.reply, ReplyFrom(rj["reply"], where + ".reply"));
        s.rules.push_back(std::move(rule));
      }
    } else if (k == "default") {
      KILN_ASSIGN_OR_RETURN(Reply r, ReplyFrom(v, "default"));
      s.fallback = std::move(r);
    } else {
      return Error::Invalid("script: unknown member " + Quote(k));
    }
  }
  return s;
}

Result<Script> ParseScript(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    try {
      j = yaml::ToJson(YAML::Load(std::string(text)));
    } catch (const std::exception& e) {
      return Error::Invalid(std::string("script is neither JSON nor YAML: ") + e.what());
    }
  }
  return ScriptFromJson(j);
}

Result<Script> LoadScript(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto s = ParseScript(text);
  if (!s.ok()) return s.error().Wrap("script " + Quote(path));
  return s;
}

std::optional<Reply> Player::Next(const std::vector<ToolResultSeen>& last, std::string* step) {
  std::lock_guard<std::mutex> lock(mu_);
  rule_hits_.resize(script_.rules.size());
  for (size_t i = 0; i < script_.rules.size(); ++i) {
    const Rule& r = script_.rules[i];
    if (r.times >= 0 && rule_hits_[i] >= r.times) continue;
    for (const auto& tr : last) {
      if (!r.tool.empty() && tr.tool != r.tool) continue;
      if (r.is_error && *r.is_error != tr.is_error) continue;
      if (tr.content.find(r.contains) == std::string::npos) continue;
      ++rule_hits_[i];
      *step = "rules[" + std::to_string(i) + "]";
      return r.reply;
    }
  }
  while (index_ < script_.replies.size()) {
    const Reply& r = script_.replies[index_];
    if (r.repeat < 0 || used_ < r.repeat) {
      ++used_;
      *step = "replies[" + std::to_string(index_) + "]";
      return r;
    }
    ++index_;
    used_ = 0;
  }
  if (script_.fallback) {
    *step = "default";
    return script_.fallback;
  }
  return std::nullopt;
}

}  // namespace kiln::modelserver
