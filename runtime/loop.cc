#include "runtime/loop.h"

#include <chrono>
#include <random>
#include <thread>

#include "runtime/budget.h"
#include "runtime/loop_detect.h"
#include "runtime/model/compaction.h"

namespace kiln::loop {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Consecutive replies without a tool call before the run fails: the model
// is told each time that only submit ends the run.
constexpr int kMaxIdleReplies = 3;

struct Ended {
  Outcome outcome;
};

class Runner {
 public:
  Runner(const spec::RunSpec& spec, model::Client& client, const tools::ToolSet& tools,
         events::Sink& events, steer::Inbox* inbox)
      : spec_(spec),
        client_(client),
        tools_(tools),
        events_(events),
        inbox_(inbox),
        budget_(spec.budgets, PriceFor(spec)),
        loops_(spec.loop_repeat_limit),
        rng_(std::random_device{}()) {}

  Outcome Run() {
    model::Message task;
    model::Block b;
    b.text = spec_.task;
    task.blocks.push_back(b);
    messages_.push_back(std::move(task));
    Outcome o = Loop();
    o.totals = budget_.Totals();
    json payload = o.ToJson();
    payload["summary"] = o.status == "submitted" && o.result.is_object() &&
                                 o.result.contains("summary") && o.result["summary"].is_string()
                             ? o.result["summary"]
                             : json(o.reason);
    (void)events_.Emit("result", payload);
    return o;
  }

 private:
  static std::optional<spec::Price> PriceFor(const spec::RunSpec& s) {
    auto it = s.prices.find(s.model.name);
    if (it == s.prices.end()) return std::nullopt;
    return it->second;
  }

  Outcome End(std::string status, std::string reason) {
    Outcome o;
    o.status = std::move(status);
    o.reason = std::move(reason);
    return o;
  }

  bool Emit(std::string_view type, json payload) {
    Status s = events_.Emit(type, std::move(payload));
    if (!s.ok() && !emit_error_) emit_error_ = s.error().message();
    return s.ok();
  }

  Outcome Loop() {
    int idle_replies = 0;
    for (;;) {
      if (emit_error_) return End("failed", *emit_error_);
      if (auto b = budget_.Exhausted()) return End("budget_exhausted", *b);
      TakeSteering();
      std::optional<Outcome> failed;
      auto reply = CallModel(failed);
      if (!reply) return *failed;
      budget_.AddTurn();
      model::Message assistant;
      assistant.role = model::Message::Role::kAssistant;
      assistant.blocks = reply->blocks;
      bool has_calls = false;
      for (auto& blk : assistant.blocks) {
        if (blk.kind != model::Block::Kind::kToolUse) continue;
        has_calls = true;
        if (blk.call.id.empty()) {
          blk.call.id = "call_" + std::to_string(budget_.turns()) + "_" + std::to_string(++anon_);
        }
      }
      messages_.push_back(assistant);
      const std::string& stop = reply->stop_reason;
      if (stop == "refusal") {
        std::string text;
        for (const auto& blk : reply->blocks) text += blk.text;
        return End("refused", "the model refused: " + text.substr(0, 500));
      }
      if (!has_calls) {
        if (stop == "pause_turn") continue;  // the API resumes from our copy of its turn
        if (++idle_replies > kMaxIdleReplies) {
          return End("failed",
                     "the model stopped " + std::to_string(idle_replies) +
                         " times without calling a tool or submitting (last stop_reason " +
                         Quote(stop) + ")");
        }
        model::Message nudge;
        model::Block nb;
        nb.text = stop == "max_tokens"
                      ? "[kiln] Your reply was cut off at max_tokens. Continue, in shorter steps."
                      : "[kiln] The run only ends when you call the submit tool with your result. "
                        "Continue the task, or call submit.";
        nudge.blocks.push_back(nb);
        messages_.push_back(std::move(nudge));
        continue;
      }
      idle_replies = 0;
      if (auto done = RunTools(assistant)) return *done;
    }
  }

  // Steering arrives between turns; it joins the last user message (the tool
  // results), or becomes one, so that roles keep alternating.
  void TakeSteering() {
    if (!inbox_) return;
    for (std::string& text : inbox_->Take()) {
      if (messages_.back().role != model::Message::Role::kUser) messages_.emplace_back();
      model::Block b;
      b.text = std::move(text);
      messages_.back().blocks.push_back(std::move(b));
    }
  }

  // Sends the conversation, retrying what is retryable. Returns the reply, or
  // sets `failed` to how the run ends.
  std::optional<model::Reply> CallModel(std::optional<Outcome>& failed) {
    json compacted = MaybeCompact();
    model::Request req;
    req.model = spec_.model.name;
    req.system = spec_.skill;
    req.messages = &messages_;
    req.tools = &tools_.defs();
    req.stream = spec_.model.stream;
    req.connect_timeout_ms = spec_.model.connect_timeout_ms;
    req.idle_timeout_ms = spec_.model.idle_timeout_ms;
    uint64_t turn = budget_.turns() + 1;
    uint64_t waited = 0;
    for (uint32_t attempt = 1;; ++attempt) {
      if (auto b = budget_.Exhausted()) {
        failed = End("budget_exhausted", *b);
        return std::nullopt;
      }
      req.max_tokens = spec_.model.max_tokens;
      if (auto left = budget_.RemainingOutputTokens())
        req.max_tokens = std::min(req.max_tokens, *left);
      req.total_timeout_ms = spec_.model.request_timeout_ms;
      if (auto left = budget_.RemainingWallMs())
        req.total_timeout_ms = std::min(req.total_timeout_ms, *left);
      std::string body = client_.Body(req);
      json rq = {{"turn", turn},       {"attempt", attempt},   {"provider", client_.provider()},
                 {"model", req.model}, {"url", client_.url()}, {"body", body}};
      if (!compacted.is_null() && attempt == 1) rq["compaction"] = compacted;
      Emit("model.request", rq);
      model::Attempt a = client_.Send(req, body);
      budget_.AddUsage(a.usage);
      if (a.reply)
        last_input_tokens_ =
            a.usage.input_tokens + a.usage.cache_read_tokens + a.usage.cache_write_tokens;
      json rs = {{"turn", turn},
                 {"attempt", attempt},
                 {"status", a.status},
                 {"request_id", a.request_id},
                 {"body", a.response_body},
                 {"usage", a.usage.ToJson()},
                 {"latency_ms", a.latency_ms},
                 {"retries", attempt - 1}};
      if (a.reply) {
        rs["stop_reason"] = a.reply->stop_reason;
        // A reply whose record could not be handed on is not acted on.
        if (!Emit("model.response", rs)) {
          failed = End("failed", *emit_error_);
          return std::nullopt;
        }
        return a.reply;
      }
      rs["error"] = a.error ? a.error->message() : "unknown failure";
      if (!a.error_type.empty()) rs["error_type"] = a.error_type;
      rs["retryable"] = a.retryable;
      std::string why = a.error ? a.error->message() : "model call failed";
      if (!a.retryable) {
        Emit("model.response", rs);
        failed = End("failed", why);
        return std::nullopt;
      }
      if (attempt >= spec_.retry.max_attempts) {
        Emit("model.response", rs);
        failed = End("failed", why + " (gave up after " + std::to_string(attempt) + " attempts)");
        return std::nullopt;
      }
      uint64_t wait = retry::Backoff(spec_.retry, attempt + 1, a.retry_after_ms, rng_);
      rs["retry_in_ms"] = wait;
      Emit("model.response", rs);
      if (waited + wait > spec_.retry.max_total_wait_ms) {
        failed = End("failed", why + " (gave up: the next wait of " + std::to_string(wait) +
                                   " ms would exceed retry.max_total_wait_ms)");
        return std::nullopt;
      }
      if (auto left = budget_.RemainingWallMs(); left && *left <= wait) {
        failed = End("budget_exhausted", "wall_time");
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(wait));
      waited += wait;
    }
  }

  json MaybeCompact() {
    uint64_t window = spec_.model.context_window;
    auto limit = static_cast<uint64_t>(static_cast<double>(window) * spec_.compaction.threshold);
    uint64_t raw = compaction::EstimateTokens(spec_.skill, messages_, tools_.defs());
    // Calibrate the byte estimate with the provider's own count of the last request.
    if (last_input_tokens_ && last_estimate_) {
      scale_ = std::max(
          1.0, static_cast<double>(last_input_tokens_) / static_cast<double>(last_estimate_));
    }
    last_estimate_ = raw;
    if (static_cast<double>(raw) * scale_ <= static_cast<double>(limit)) return json();
    auto out = compaction::Compact(spec_.skill, messages_, tools_.defs(), limit * 3 / 4,
                                   spec_.compaction.keep_recent_turns, scale_);
    last_estimate_ = compaction::EstimateTokens(spec_.skill, messages_, tools_.defs());
    last_input_tokens_ = 0;
    return out.ToJson();
  }

  std::optional<Outcome> RunTools(const model::Message& assistant) {
    model::Message results;
    uint64_t turn = budget_.turns();
    for (const auto& blk : assistant.blocks) {
      if (blk.kind != model::Block::Kind::kToolUse) continue;
      const model::ToolCall& call = blk.call;
      // Nothing runs that the controller was not told of first.
      if (!Emit("tool.call", {{"turn", turn},
                              {"call_id", call.id},
                              {"tool", call.name},
                              {"input", call.bad_input ? json(*call.bad_input) : call.input}})) {
        return End("failed", *emit_error_);
      }
      auto start = Clock::now();
      tool::Output out;
      if (call.bad_input) {
        out = tool::Output::Err("the arguments of " + call.name +
                                " are not a JSON object: " + call.bad_input->substr(0, 1000));
      } else {
        json input = call.input;
        if (call.name == "shell") {
          // A shell command may not outlive the run's wall-time budget.
          if (auto left = budget_.RemainingWallMs()) {
            uint64_t t = input.value("timeout_ms", spec_.limits.shell_timeout_ms);
            input["timeout_ms"] = std::max<uint64_t>(1, std::min(t, *left));
          }
        }
        out = tools_.Call(call.name, input);
      }
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
      json tr = {{"turn", turn},
                 {"call_id", call.id},
                 {"tool", call.name},
                 {"output", out.content},
                 {"is_error", out.is_error},
                 {"exit_status", out.exit_status ? json(*out.exit_status) : json(nullptr)},
                 {"duration_ms", ms},
                 {"truncated", out.truncated},
                 {"output_bytes", out.full_bytes}};
      Emit("tool.result", tr);
      budget_.AddToolOutput(out.content.size());
      if (out.submitted) {
        Outcome o = End("submitted", "the result was submitted");
        o.result = *out.submitted;
        return o;
      }
      model::ToolResult r{call.id, out.content, out.is_error};
      results.results.push_back(r);
      if (call.name != "submit") {
        if (auto ev =
                loops_.Record(turn, call.id, call.name, call.input, out.content, out.is_error)) {
          Outcome o =
              End("stuck", "the same " + call.name + " call with the same result was made " +
                               std::to_string(ev->call_ids.size()) + " times");
          o.evidence = ev->ToJson();
          return o;
        }
      }
    }
    messages_.push_back(std::move(results));
    return std::nullopt;
  }

  const spec::RunSpec& spec_;
  model::Client& client_;
  const tools::ToolSet& tools_;
  events::Sink& events_;
  steer::Inbox* inbox_;
  budget::Budget budget_;
  loop_detect::Detector loops_;
  std::mt19937_64 rng_;
  std::vector<model::Message> messages_;
  std::optional<std::string> emit_error_;
  uint64_t anon_ = 0;
  uint64_t last_input_tokens_ = 0;
  uint64_t last_estimate_ = 0;
  double scale_ = 1.0;
};

}  // namespace

json Outcome::ToJson() const {
  json j = {{"outcome", status}, {"reason", reason}};
  if (!result.is_null()) j["result"] = result;
  if (!evidence.is_null()) j["evidence"] = evidence;
  if (!totals.is_null()) j["totals"] = totals;
  return j;
}

int ExitStatus(const Outcome& o) {
  if (o.status == "submitted") return 0;
  if (o.status == "budget_exhausted") return 3;
  if (o.status == "stuck") return 4;
  if (o.status == "refused") return 5;
  return 1;
}

Outcome Run(const spec::RunSpec& spec, model::Client& client, const tools::ToolSet& tools,
            events::Sink& events, steer::Inbox* inbox) {
  return Runner(spec, client, tools, events, inbox).Run();
}

}  // namespace kiln::loop
