#include "runtime/spec.h"

#include <set>

#include "runtime/json_schema.h"
#include "runtime/tools.h"

namespace kiln::spec {
namespace {

using nlohmann::json;

// Reads members of one JSON object into fields, rejecting unknown ones.
class Reader {
 public:
  Reader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  Status Check() const {
    if (!j_.is_object()) return Error::Invalid(Where("") + " must be an object");
    for (const auto& [k, v] : j_.items()) {
      if (!known_.count(k)) return Error::Invalid("unknown member " + Quote(Where(k)));
    }
    return Ok();
  }

  template <typename T>
  Status Get(const char* key, T& out) {
    known_.insert(key);
    if (!j_.is_object() || !j_.contains(key) || j_[key].is_null()) return Ok();
    const json& v = j_[key];
    try {
      if constexpr (std::is_same_v<T, bool>) {
        if (!v.is_boolean()) return Type(key, "a boolean");
      } else if constexpr (std::is_integral_v<T>) {
        bool non_negative =
            v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
        if (!non_negative) return Type(key, "a non-negative integer");
      } else if constexpr (std::is_floating_point_v<T>) {
        if (!v.is_number() || v.get<double>() < 0) return Type(key, "a non-negative number");
      } else if constexpr (std::is_same_v<T, std::string>) {
        if (!v.is_string()) return Type(key, "a string");
      }
      out = v.get<T>();
    } catch (const std::exception& e) {
      return Error::Invalid(Quote(Where(key)) + ": " + e.what());
    }
    return Ok();
  }

  const json* Sub(const char* key) {
    known_.insert(key);
    return j_.is_object() && j_.contains(key) && !j_[key].is_null() ? &j_[key] : nullptr;
  }
  std::string Where(const std::string& key) const {
    return path_.empty() ? key : key.empty() ? path_ : path_ + "." + key;
  }

 private:
  Status Type(const char* key, const char* what) const {
    return Error::Invalid(Quote(Where(key)) + " must be " + what);
  }
  const json& j_;
  std::string path_;
  std::set<std::string> known_;
};

}  // namespace

Result<RunSpec> Parse(const json& j) {
  RunSpec s;
  Reader r(j, "");
  KILN_TRY(r.Get("role", s.role));
  KILN_TRY(r.Get("skill", s.skill));
  KILN_TRY(r.Get("task", s.task));
  KILN_TRY(r.Get("workspace", s.workspace));
  KILN_TRY(r.Get("loop_repeat_limit", s.loop_repeat_limit));
  if (const json* m = r.Sub("model")) {
    Reader mr(*m, "model");
    KILN_TRY(mr.Get("provider", s.model.provider));
    KILN_TRY(mr.Get("name", s.model.name));
    KILN_TRY(mr.Get("base_url", s.model.base_url));
    KILN_TRY(mr.Get("api_key_env", s.model.api_key_env));
    KILN_TRY(mr.Get("max_tokens", s.model.max_tokens));
    KILN_TRY(mr.Get("context_window", s.model.context_window));
    KILN_TRY(mr.Get("stream", s.model.stream));
    KILN_TRY(mr.Get("connect_timeout_ms", s.model.connect_timeout_ms));
    KILN_TRY(mr.Get("idle_timeout_ms", s.model.idle_timeout_ms));
    KILN_TRY(mr.Get("request_timeout_ms", s.model.request_timeout_ms));
    KILN_TRY(mr.Check());
  }
  if (const json* b = r.Sub("budgets")) {
    Reader br(*b, "budgets");
    KILN_TRY(br.Get("max_turns", s.budgets.max_turns));
    KILN_TRY(br.Get("max_input_tokens", s.budgets.max_input_tokens));
    KILN_TRY(br.Get("max_output_tokens", s.budgets.max_output_tokens));
    KILN_TRY(br.Get("max_wall_ms", s.budgets.max_wall_ms));
    KILN_TRY(br.Get("max_cost_usd", s.budgets.max_cost_usd));
    KILN_TRY(br.Get("max_tool_output_bytes", s.budgets.max_tool_output_bytes));
    KILN_TRY(br.Check());
  }
  if (const json* p = r.Sub("prices")) {
    if (!p->is_object()) return Error::Invalid("'prices' must be an object keyed by model name");
    for (const auto& [name, v] : p->items()) {
      Price price;
      Reader pr(v, "prices." + name);
      KILN_TRY(pr.Get("input_per_mtok", price.input_per_mtok));
      KILN_TRY(pr.Get("output_per_mtok", price.output_per_mtok));
      price.cache_read_per_mtok = price.input_per_mtok / 10;
      price.cache_write_per_mtok = price.input_per_mtok * 1.25;
      KILN_TRY(pr.Get("cache_read_per_mtok", price.cache_read_per_mtok));
      KILN_TRY(pr.Get("cache_write_per_mtok", price.cache_write_per_mtok));
      KILN_TRY(pr.Check());
      s.prices[name] = price;
    }
  }
  if (const json* t = r.Sub("tools")) {
    Reader tr(*t, "tools");
    KILN_TRY(tr.Get("allowed", s.tools));
    if (const json* l = tr.Sub("limits")) {
      Reader lr(*l, "tools.limits");
      KILN_TRY(lr.Get("max_output_bytes", s.limits.max_output_bytes));
      KILN_TRY(lr.Get("shell_timeout_ms", s.limits.shell_timeout_ms));
      KILN_TRY(lr.Get("shell_max_timeout_ms", s.limits.shell_max_timeout_ms));
      KILN_TRY(lr.Get("read_max_lines", s.limits.read_max_lines));
      KILN_TRY(lr.Get("read_max_line_chars", s.limits.read_max_line_chars));
      KILN_TRY(lr.Get("read_max_file_bytes", s.limits.read_max_file_bytes));
      KILN_TRY(lr.Get("search_max_matches", s.limits.search_max_matches));
      KILN_TRY(lr.Get("search_max_file_bytes", s.limits.search_max_file_bytes));
      KILN_TRY(lr.Check());
    }
    KILN_TRY(tr.Check());
  }
  if (const json* rs = r.Sub("result_schema")) s.result_schema = *rs;
  if (const json* rt = r.Sub("retry")) {
    Reader rr(*rt, "retry");
    KILN_TRY(rr.Get("max_attempts", s.retry.max_attempts));
    KILN_TRY(rr.Get("initial_backoff_ms", s.retry.initial_backoff_ms));
    KILN_TRY(rr.Get("max_backoff_ms", s.retry.max_backoff_ms));
    KILN_TRY(rr.Get("max_total_wait_ms", s.retry.max_total_wait_ms));
    KILN_TRY(rr.Get("multiplier", s.retry.multiplier));
    KILN_TRY(rr.Check());
  }
  if (const json* c = r.Sub("compaction")) {
    Reader cr(*c, "compaction");
    KILN_TRY(cr.Get("threshold", s.compaction.threshold));
    KILN_TRY(cr.Get("keep_recent_turns", s.compaction.keep_recent_turns));
    KILN_TRY(cr.Check());
  }
  KILN_TRY(r.Check());

  if (s.role.empty()) return Error::Invalid("'role' is required");
  if (s.task.empty()) return Error::Invalid("'task' is required");
  if (s.model.name.empty()) return Error::Invalid("'model.name' is required");
  if (s.model.provider != "anthropic" && s.model.provider != "openai") {
    return Error::Invalid("'model.provider' must be \"anthropic\" or \"openai\", not " +
                          Quote(s.model.provider));
  }
  if (s.model.base_url.empty()) {
    s.model.base_url =
        s.model.provider == "anthropic" ? "https://api.anthropic.com" : "https://api.openai.com/v1";
  }
  if (s.model.api_key_env.empty()) {
    s.model.api_key_env = s.model.provider == "anthropic" ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY";
  }
  if (s.model.max_tokens == 0) return Error::Invalid("'model.max_tokens' must be positive");
  if (s.budgets.max_turns == 0) return Error::Invalid("'budgets.max_turns' must be positive");
  if (s.retry.max_attempts == 0) return Error::Invalid("'retry.max_attempts' must be positive");
  if (s.loop_repeat_limit < 2) return Error::Invalid("'loop_repeat_limit' must be at least 2");
  if (s.compaction.threshold <= 0 || s.compaction.threshold > 1) {
    return Error::Invalid("'compaction.threshold' must be in (0, 1]");
  }
  if (s.limits.max_output_bytes < 256) {
    return Error::Invalid("'tools.limits.max_output_bytes' must be at least 256");
  }
  for (const auto& t : s.tools) {
    const auto& all = tools::AllNames();
    if (std::find(all.begin(), all.end(), t) == all.end()) {
      return Error::Invalid("'tools.allowed' names unknown tool " + Quote(t));
    }
  }
  if (Status st = json_schema::CheckSchema(s.result_schema); !st.ok()) {
    return st.error().Wrap("'result_schema'");
  }
  if (s.budgets.max_cost_usd > 0 && !s.prices.count(s.model.name)) {
    return Error::Invalid("'budgets.max_cost_usd' is set but 'prices' has no entry for model " +
                          Quote(s.model.name));
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
