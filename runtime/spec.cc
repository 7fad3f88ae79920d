#include "runtime/spec.h"

#include <algorithm>
#include <set>

#include "runtime/tools/json_schema.h"
#include "runtime/tools/toolset.h"

namespace kiln::spec {
namespace {

using nlohmann::json;

// Reads the members of one JSON object into fields. The first fault ends the
// reading: it is kept in *fault, and later calls do nothing.
class Reader {
 public:
  Reader(const json& j, std::string path, std::optional<Fault>* fault)
      : j_(j), path_(std::move(path)), fault_(*fault) {}

  template <typename T>
  void Get(const char* key, T& out) {
    const json* v = Sub(key);
    if (v == nullptr || fault_) return;
    if constexpr (std::is_same_v<T, bool>) {
      if (!v->is_boolean()) return Type(key, "a boolean");
    } else if constexpr (std::is_integral_v<T>) {
      bool non_negative =
          v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0);
      if (!non_negative) return Type(key, "a non-negative integer");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v->is_number() || v->get<double>() < 0) return Type(key, "a non-negative number");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v->is_string()) return Type(key, "a string");
    }
    try {
      out = v->get<T>();
    } catch (const std::exception& e) {
      Fail(Where(key), Quote(Where(key)) + ": " + e.what());
    }
  }

  // The member, or null when it is absent or null.
  const json* Sub(const char* key) {
    known_.insert(key);
    return j_.is_object() && j_.contains(key) && !j_[key].is_null() ? &j_[key] : nullptr;
  }

  // The end of the object: it must be one, with no member left unread.
  void End() {
    if (fault_) return;
    if (!j_.is_object()) return Fail(path_, Where("") + " must be an object");
    for (const auto& [k, v] : j_.items()) {
      if (!known_.count(k)) return Fail(Where(k), "unknown member " + Quote(Where(k)));
    }
  }

  std::string Where(const std::string& key) const {
    return path_.empty() ? key : key.empty() ? path_ : path_ + "." + key;
  }
  void Fail(std::string member, std::string message) {
    if (!fault_) fault_ = Fault{std::move(member), std::move(message)};
  }

 private:
  void Type(const char* key, const char* what) {
    Fail(Where(key), Quote(Where(key)) + " must be " + what);
  }
  const json& j_;
  std::string path_;
  std::optional<Fault>& fault_;
  std::set<std::string> known_;
};

void Read(const json& j, Model& m, std::optional<Fault>* fault) {
  Reader r(j, "model", fault);
  r.Get("provider", m.provider);
  r.Get("name", m.name);
  r.Get("base_url", m.base_url);
  r.Get("api_key_env", m.api_key_env);
  r.Get("max_tokens", m.max_tokens);
  r.Get("context_window", m.context_window);
  r.Get("stream", m.stream);
  r.Get("connect_timeout_ms", m.connect_timeout_ms);
  r.Get("idle_timeout_ms", m.idle_timeout_ms);
  r.Get("request_timeout_ms", m.request_timeout_ms);
  r.End();
}

void Read(const json& j, Budgets& b, std::optional<Fault>* fault) {
  Reader r(j, "budgets", fault);
  r.Get("max_turns", b.max_turns);
  r.Get("max_input_tokens", b.max_input_tokens);
  r.Get("max_output_tokens", b.max_output_tokens);
  r.Get("max_wall_ms", b.max_wall_ms);
  r.Get("max_cost_usd", b.max_cost_usd);
  r.Get("max_tool_output_bytes", b.max_tool_output_bytes);
  r.End();
}

void ReadPrices(const json& j, std::map<std::string, Price>& prices, std::optional<Fault>* fault) {
  if (*fault) return;
  if (!j.is_object()) {
    *fault = Fault{"prices", "'prices' must be an object keyed by model name"};
    return;
  }
  for (const auto& [name, v] : j.items()) {
    Price price;
    Reader r(v, "prices." + name, fault);
    r.Get("input_per_mtok", price.input_per_mtok);
    r.Get("output_per_mtok", price.output_per_mtok);
    price.cache_read_per_mtok = price.input_per_mtok / 10;
    price.cache_write_per_mtok = price.input_per_mtok * 1.25;
    r.Get("cache_read_per_mtok", price.cache_read_per_mtok);
    r.Get("cache_write_per_mtok", price.cache_write_per_mtok);
    r.End();
    if (*fault) return;
    prices[name] = price;
  }
}

void ReadTools(const json& j, RunSpec& s, std::optional<Fault>* fault) {
  Reader r(j, "tools", fault);
  r.Get("allowed", s.tools);
  if (const json* l = r.Sub("limits")) {
    Reader lr(*l, "tools.limits", fault);
    lr.Get("max_output_bytes", s.limits.max_output_bytes);
    lr.Get("shell_timeout_ms", s.limits.shell_timeout_ms);
    lr.Get("shell_max_timeout_ms", s.limits.shell_max_timeout_ms);
    lr.Get("read_max_lines", s.limits.read_max_lines);
    lr.Get("read_max_line_chars", s.limits.read_max_line_chars);
    lr.Get("read_max_file_bytes", s.limits.read_max_file_bytes);
    lr.Get("search_max_matches", s.limits.search_max_matches);
    lr.Get("search_max_file_bytes", s.limits.search_max_file_bytes);
    lr.End();
  }
  r.End();
}

void Read(const json& j, retry::Policy& p, std::optional<Fault>* fault) {
  Reader r(j, "retry", fault);
  r.Get("max_attempts", p.max_attempts);
  r.Get("initial_backoff_ms", p.initial_backoff_ms);
  r.Get("max_backoff_ms", p.max_backoff_ms);
  r.Get("max_total_wait_ms", p.max_total_wait_ms);
  r.Get("multiplier", p.multiplier);
  r.End();
}

void Read(const json& j, Compaction& c, std::optional<Fault>* fault) {
  Reader r(j, "compaction", fault);
  r.Get("threshold", c.threshold);
  r.Get("keep_recent_turns", c.keep_recent_turns);
  r.End();
}

std::optional<Fault> Read(const json& j, RunSpec& s) {
  std::optional<Fault> fault;
  Reader r(j, "", &fault);
  r.Get("role", s.role);
  r.Get("skill", s.skill);
  r.Get("task", s.task);
  r.Get("workspace", s.workspace);
  r.Get("loop_repeat_limit", s.loop_repeat_limit);
  if (const json* m = r.Sub("model")) Read(*m, s.model, &fault);
  if (const json* b = r.Sub("budgets")) Read(*b, s.budgets, &fault);
  if (const json* p = r.Sub("prices")) ReadPrices(*p, s.prices, &fault);
  if (const json* t = r.Sub("tools")) ReadTools(*t, s, &fault);
  if (const json* rs = r.Sub("result_schema")) s.result_schema = *rs;
  if (const json* rt = r.Sub("retry")) Read(*rt, s.retry, &fault);
  if (const json* c = r.Sub("compaction")) Read(*c, s.compaction, &fault);
  r.End();
  return fault;
}

json ToJson(const Model& m) {
  json j = {{"provider", m.provider},
            {"name", m.name},
            {"max_tokens", m.max_tokens},
            {"context_window", m.context_window},
            {"stream", m.stream},
            {"connect_timeout_ms", m.connect_timeout_ms},
            {"idle_timeout_ms", m.idle_timeout_ms},
            {"request_timeout_ms", m.request_timeout_ms}};
  // Empty: the provider's default, filled in by Parse.
  if (!m.base_url.empty()) j["base_url"] = m.base_url;
  if (!m.api_key_env.empty()) j["api_key_env"] = m.api_key_env;
  return j;
}

}  // namespace

std::optional<Fault> ReadModel(const json& j, Model* out) {
  std::optional<Fault> fault;
  Read(j, *out, &fault);
  return fault;
}

std::optional<Fault> ReadBudgets(const json& j, Budgets* out) {
  std::optional<Fault> fault;
  Read(j, *out, &fault);
  return fault;
}

std::optional<Fault> Check(const RunSpec& s) {
  auto fault = [](const char* member, std::string why) {
    return Fault{member, "'" + std::string(member) + "' " + std::move(why)};
  };
  if (s.role.empty()) return fault("role", "is required");
  if (s.task.empty()) return fault("task", "is required");
  if (s.model.name.empty()) return fault("model.name", "is required");
  if (s.model.provider != "anthropic" && s.model.provider != "openai") {
    return fault("model.provider",
                 "must be \"anthropic\" or \"openai\", not " + Quote(s.model.provider));
  }
  if (s.model.max_tokens == 0) return fault("model.max_tokens", "must be positive");
  if (s.budgets.max_turns == 0) return fault("budgets.max_turns", "must be positive");
  if (s.retry.max_attempts == 0) return fault("retry.max_attempts", "must be positive");
  if (s.loop_repeat_limit < 2) return fault("loop_repeat_limit", "must be at least 2");
  if (s.compaction.threshold <= 0 || s.compaction.threshold > 1) {
    return fault("compaction.threshold", "must be in (0, 1]");
  }
  if (s.limits.max_output_bytes < 256) {
    return fault("tools.limits.max_output_bytes", "must be at least 256");
  }
  for (const auto& t : s.tools) {
    const auto& all = tools::AllNames();
    if (std::find(all.begin(), all.end(), t) == all.end()) {
      return fault("tools.allowed", "names unknown tool " + Quote(t));
    }
  }
  if (Status st = json_schema::CheckSchema(s.result_schema); !st.ok()) {
    return Fault{"result_schema", st.error().Wrap("'result_schema'").message()};
  }
  if (s.budgets.max_cost_usd > 0 && !s.prices.count(s.model.name)) {
    return fault("budgets.max_cost_usd",
                 "is set but 'prices' has no entry for model " + Quote(s.model.name));
  }
  return std::nullopt;
}

json ToJson(const Budgets& b) {
  return {{"max_turns", b.max_turns},
          {"max_input_tokens", b.max_input_tokens},
          {"max_output_tokens", b.max_output_tokens},
          {"max_wall_ms", b.max_wall_ms},
          {"max_cost_usd", b.max_cost_usd},
          {"max_tool_output_bytes", b.max_tool_output_bytes}};
}

json ToJson(const RunSpec& s) {
  json prices = json::object();
  for (const auto& [name, p] : s.prices) {
    prices[name] = {{"input_per_mtok", p.input_per_mtok},
                    {"output_per_mtok", p.output_per_mtok},
                    {"cache_read_per_mtok", p.cache_read_per_mtok},
                    {"cache_write_per_mtok", p.cache_write_per_mtok}};
  }
  const tool::Limits& l = s.limits;
  json limits = {{"max_output_bytes", l.max_output_bytes},
                 {"shell_timeout_ms", l.shell_timeout_ms},
                 {"shell_max_timeout_ms", l.shell_max_timeout_ms},
                 {"read_max_lines", l.read_max_lines},
                 {"read_max_line_chars", l.read_max_line_chars},
                 {"read_max_file_bytes", l.read_max_file_bytes},
                 {"search_max_matches", l.search_max_matches},
                 {"search_max_file_bytes", l.search_max_file_bytes}};
  return {{"role", s.role},
          {"skill", s.skill},
          {"task", s.task},
          {"workspace", s.workspace},
          {"model", ToJson(s.model)},
          {"budgets", ToJson(s.budgets)},
          {"prices", prices},
          {"tools", {{"allowed", s.tools}, {"limits", limits}}},
          {"result_schema", s.result_schema},
          {"retry",
           {{"max_attempts", s.retry.max_attempts},
            {"initial_backoff_ms", s.retry.initial_backoff_ms},
            {"max_backoff_ms", s.retry.max_backoff_ms},
            {"max_total_wait_ms", s.retry.max_total_wait_ms},
            {"multiplier", s.retry.multiplier}}},
          {"loop_repeat_limit", s.loop_repeat_limit},
          {"compaction",
           {{"threshold", s.compaction.threshold},
            {"keep_recent_turns", s.compaction.keep_recent_turns}}}};
}

Result<RunSpec> Parse(const json& j) {
  RunSpec s;
  std::optional<Fault> fault = Read(j, s);
  if (!fault) fault = Check(s);
  if (fault) return fault->ToError();
  if (s.model.base_url.empty()) {
    s.model.base_url =
        s.model.provider == "anthropic" ? "https://api.anthropic.com" : "https://api.openai.com/v1";
  }
  if (s.model.api_key_env.empty()) {
    s.model.api_key_env = s.model.provider == "anthropic" ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY";
  }
  return s;
}

Result<RunSpec> ParseText(std::string_view text, std::string_view source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    return Error::Invalid("run spec " + Quote(source) + " is not valid JSON: " + e.what());
  }
  auto s = Parse(j);
  if (!s.ok()) return s.error().Wrap("run spec " + Quote(source));
  return s;
}

}  // namespace kiln::spec
