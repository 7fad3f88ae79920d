#include "tests/modelserver/script.h"

#include <yaml-cpp/yaml.h>
#include <cctype>

#include "base/fd.h"
#include "controller/config/yaml_fields.h"

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

Result<Rule> RuleFrom(const json& rj, const std::string& where) {
  if (!rj.is_object() || !rj.contains("reply")) return Error::Invalid(where + " needs a reply");
  Rule rule;
  try {
    const json& when = rj.value("when", json::object());
    rule.contains = when.value("contains", "");
    rule.tool = when.value("tool", "");
    if (when.contains("is_error")) rule.is_error = when["is_error"].get<bool>();
    rule.times = rj.value("times", int64_t{-1});
  } catch (const std::exception& e) {
    return Error::Invalid(where + ": " + e.what());
  }
  KILN_ASSIGN_OR_RETURN(rule.reply, ReplyFrom(rj["reply"], where + ".reply"));
  return rule;
}

// Reads member k of a Sequence (replies, rules, default) into seq; false when
// k is none of them. prefix ("" or "conversations[1].") starts every path.
Result<bool> SequenceMember(const std::string& k, const json& v, const std::string& prefix,
                            Sequence& seq) {
  if (k == "replies" || k == "rules") {
    if (!v.is_array()) return Error::Invalid(prefix + k + ": must be a list");
    for (size_t i = 0; i < v.size(); ++i) {
      std::string where = prefix + k + "[" + std::to_string(i) + "]";
      if (k == "replies") {
        KILN_ASSIGN_OR_RETURN(Reply r, ReplyFrom(v[i], where));
        seq.replies.push_back(std::move(r));
      } else {
        KILN_ASSIGN_OR_RETURN(Rule r, RuleFrom(v[i], where));
        seq.rules.push_back(std::move(r));
      }
    }
    return true;
  }
  if (k == "default") {
    KILN_ASSIGN_OR_RETURN(Reply r, ReplyFrom(v, prefix + "default"));
    seq.fallback = std::move(r);
    return true;
  }
  return false;
}

bool IsPlaceholderName(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

Result<Conversation> ConversationFrom(const json& j, const std::string& where) {
  if (!j.is_object()) return Error::Invalid(where + ": must be a map");
  Conversation c;
  bool has_match = false;
  for (const auto& [k, v] : j.items()) {
    if (k == "match") {
      if (!v.is_string()) return Error::Invalid(where + ".match: must be a string");
      c.match = v.get<std::string>();
      if (c.match.empty()) return Error::Invalid(where + ".match: must not be empty");
      has_match = true;
    } else if (k == "capture") {
      if (!v.is_object()) {
        return Error::Invalid(where + ".capture: must be a map of placeholder names to markers");
      }
      for (const auto& [name, marker] : v.items()) {
        std::string at = where + ".capture." + name;
        if (!IsPlaceholderName(name)) {
          return Error::Invalid(at + ": a placeholder name is letters, digits and _");
        }
        if (!marker.is_string() || marker.get<std::string>().empty()) {
          return Error::Invalid(at + ": must be a non-empty string");
        }
        c.capture[name] = marker.get<std::string>();
      }
    } else {
      KILN_ASSIGN_OR_RETURN(bool known, SequenceMember(k, v, where + ".", c));
      if (!known) return Error::Invalid(where + ": unknown member " + Quote(k));
    }
  }
  if (!has_match) return Error::Invalid(where + ".match: required");
  return c;
}

}  // namespace

Result<Script> ScriptFromJson(const json& j) {
  Script s;
  if (j.is_array()) return ScriptFromJson(json{{"replies", j}});
  if (!j.is_object()) return Error::Invalid("script must be an object or a list of replies");
  for (const auto& [k, v] : j.items()) {
    if (k == "conversations") {
      if (!v.is_array()) return Error::Invalid("conversations: must be a list");
      for (size_t i = 0; i < v.size(); ++i) {
        KILN_ASSIGN_OR_RETURN(Conversation c,
                              ConversationFrom(v[i], "conversations[" + std::to_string(i) + "]"));
        s.conversations.push_back(std::move(c));
      }
      continue;
    }
    KILN_ASSIGN_OR_RETURN(bool known, SequenceMember(k, v, "", s));
    if (!known) return Error::Invalid("script: unknown member " + Quote(k));
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

}  // namespace kiln::modelserver
