// The audit report rendered: one walk over the report's sections (Render)
// into either of two outputs, Markdown or HTML. Every value in the report
// came from a log the agent's tools wrote into: escaped for the output, never
// interpreted.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "base/html.h"
#include "controller/audit/audit.h"

namespace kiln::audit {
namespace {

using nlohmann::json;
using Fields = std::vector<std::pair<std::string, std::string>>;
using Rows = std::vector<std::vector<std::string>>;

// A block longer than this is collapsed (<details>), never cut.
constexpr size_t kCollapseBytes = 2000;
constexpr size_t kCollapseLines = 30;

bool Long(const std::string& text) {
  return text.size() > kCollapseBytes ||
         static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) > kCollapseLines;
}

// A value as text: strings as themselves, a list of strings joined by ", ".
std::string Val(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array() &&
      std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); })) {
    std::string out;
    for (const auto& e : v) out += (out.empty() ? "" : ", ") + e.get<std::string>();
    return out;
  }
  return v.dump();
}

// True only for a member that is true (a forced log may hold anything).
bool Flag(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j.at(key).is_boolean() && j.at(key).get<bool>();
}

std::string Pretty(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(2); }

std::string Bytes(const json& n) {
  if (!n.is_number()) return "";
  return std::to_string(n.get<uint64_t>()) + " bytes";
}

std::string Usd(const json& micro) {
  if (!micro.is_number()) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.6f", static_cast<double>(micro.get<uint64_t>()) / 1e6);
  return buf;
}

class Out {
 public:
  virtual ~Out() = default;
  virtual void Title(const std::string& text) = 0;
  virtual void Section(const std::string& id, const std::string& title) = 0;
  virtual void Sub(const std::string& title) = 0;
  // A paragraph; status "ok" or "bad" marks a verdict.
  virtual void Para(const std::string& text, const std::string& status = "") = 0;
  virtual void KeyValues(const Fields& fields) = 0;
  virtual void Table(const std::vector<std::string>& head, const Rows& rows) = 0;
  // Preformatted text under a label, collapsed when long.
  virtual void Block(const std::string& label, const std::string& text) = 0;
  // A paragraph that is a link (an http or https URL; Render checks).
  virtual void Link(const std::string& text, const std::string& url) = 0;
  virtual std::string Finish() = 0;
};

class MarkdownOut : public Out {
 public:
  void Title(const std::string& text) override { o_ += "# " + Inline(text) + "\n\n"; }
  void Section(const std::string&, const std::string& title) override {
    o_ += "## " + Inline(title) + "\n\n";
  }
  void Sub(const std::string& title) override { o_ += "### " + Inline(title) + "\n\n"; }
  void Para(const std::string& text, const std::string& status) override {
    o_ += (status == "ok"    ? "**✔ "
           : status == "bad" ? "**✘ "
                             : "") +
          Inline(text) + (status.empty() ? "" : "**") + "\n\n";
  }
  void KeyValues(const Fields& fields) override {
    std::vector<std::string> head = {"field", "value"};
    Rows rows;
    for (const auto& [k, v] : fields) rows.push_back({k, v});
    Table(head, rows);
  }
  void Table(const std::vector<std::string>& head, const Rows& rows) override {
    if (rows.empty()) return;
    o_ += "|";
    for (const auto& h : head) o_ += " " + Inline(h) + " |";
    o_ += "\n|";
    for (size_t i = 0; i < head.size(); ++i) o_ += "---|";
    o_ += "\n";
    for (const auto& row : rows) {
      o_ += "|";
      for (const auto& c : row) o_ += " " + Inline(c) + " |";
      o_ += "\n";
    }
    o_ += "\n";
  }
  void Block(const std::string& label, const std::string& text) override {
    // A fence longer than any run of backticks in the text.
    size_t run = 0, longest = 0;
    for (char c : text) {
      run = c == '`' ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    std::string fence(std::max<size_t>(3, longest + 1), '`');
    std::string body = fence + "text\n" + text + (text.ends_with('\n') ? "" : "\n") + fence + "\n";
    if (Long(text)) {
      o_ += "<details><summary>" + HtmlEscape(label, false) + " (" + std::to_string(text.size()) +
            " bytes)</summary>\n\n" + body + "\n</details>\n\n";
    } else {
      o_ += Inline(label) + ":\n\n" + body + "\n";
    }
  }
  void Link(const std::string& text, const std::string& url) override {
    o_ += "[" + Inline(text) + "](<" + HtmlEscape(url, false) + ">)\n\n";
  }
  std::string Finish() override { return o_; }

 private:
  // Text on one line, with Markdown's own characters escaped.
  static std::string Inline(const std::string& s) {
    std::string out;
    for (char c : HtmlEscape(s, false)) {
      if (std::string_view("\\`*_[]#|!").find(c) != std::string_view::npos) out += '\\';
      out += c == '\n' ? ' ' : c;
    }
    return out;
  }
  std::string o_;
};

class HtmlOut : public Out {
 public:
  void Title(const std::string& text) override {
    o_ += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" + Esc(text) +
          "</title>\n<style>" + kStyle + "</style></head>\n<body>\n<h1>" + Esc(text) + "</h1>\n";
  }
  void Section(const std::string& id, const std::string& title) override {
    Close();
    o_ += "<section id=\"" + Esc(id) + "\"><h2>" + Esc(title) + "</h2>\n";
    open_ = true;
  }
  void Sub(const std::string& title) override { o_ += "<h3>" + Esc(title) + "</h3>\n"; }
  void Para(const std::string& text, const std::string& status) override {
    o_ += status.empty() ? "<p>" : "<p class=\"verdict " + status + "\">";
    o_ += Esc(text) + "</p>\n";
  }
  void KeyValues(const Fields& fields) override {
    if (fields.empty()) return;
    o_ += "<table class=\"kv\">\n";
    for (const auto& [k, v] : fields)
      o_ += "<tr><th>" + Esc(k) + "</th><td>" + Esc(v) + "</td></tr>\n";
    o_ += "</table>\n";
  }
  void Table(const std::vector<std::string>& head, const Rows& rows) override {
    if (rows.empty()) return;
    o_ += "<table>\n<tr>";
    for (const auto& h : head) o_ += "<th>" + Esc(h) + "</th>";
    o_ += "</tr>\n";
    for (const auto& row : rows) {
      o_ += "<tr>";
      for (const auto& c : row) o_ += "<td>" + Esc(c) + "</td>";
      o_ += "</tr>\n";
    }
    o_ += "</table>\n";
  }
  void Block(const std::string& label, const std::string& text) override {
    std::string pre = "<pre>" + Esc(text) + "</pre>";
    if (Long(text)) {
      o_ += "<details><summary>" + Esc(label) + " (" + std::to_string(text.size()) +
            " bytes)</summary>" + pre + "</details>\n";
    } else {
      o_ += "<div class=\"label\">" + Esc(label) + "</div>" + pre + "\n";
    }
  }
  void Link(const std::string& text, const std::string& url) override {
    o_ += "<p><a href=\"" + Esc(url) + "\">" + Esc(text) + "</a></p>\n";
  }
  std::string Finish() override {
    Close();
    return o_ + "</body></html>\n";
  }

 private:
  static constexpr const char* kStyle =
      "body{font:14px/1.45 system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;"
      "color:#1b1b1b}h1{font-size:1.5rem}h2{border-bottom:1px solid #ccc;margin-top:2rem}"
      "h3{font-size:1rem;margin:1.2rem 0 .3rem}table{border-collapse:collapse;margin:.5rem 0}"
      "th,td{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}"
      "table.kv th{background:#f6f6f6;white-space:nowrap}pre{background:#f6f6f6;padding:.5rem;"
      "overflow:auto;white-space:pre-wrap;word-break:break-all;margin:.2rem 0}"
      ".label{color:#555;font-size:.9em;margin-top:.4rem}.verdict{padding:.5rem;font-weight:bold}"
      ".verdict.ok{background:#e3f5e1;color:#1d5e17}.verdict.bad{background:#fbe3e3;color:#8a1111}"
      "details{margin:.3rem 0}summary{cursor:pointer;color:#333}";
  static std::string Esc(const std::string& s) { return HtmlEscape(s); }
  void Close() {
    if (open_) o_ += "</section>\n";
    open_ = false;
  }
  std::string o_;
  bool open_ = false;
};

void Render(const json& r, Out& out) {
  const json& in = r["inputs"];
  const json& v = r["verification"];
  out.Title("Audit of run " + Val(in.value("run_id", json("?"))));
  out.Para("From the session log " + Val(r["log"]) + ".");
  // The run's page in the web view, where `kiln audit` knows one: a link
  // to follow, nothing the report loads.
  if (const std::string page = r.value("run_page", "");
      page.starts_with("http://") || page.starts_with("https://")) {
    out.Link("The run in the web view: " + page, page);
  }

  out.Section("verification", "Verification");
  if (v["verified"].get<bool>()) {
    out.Para("Verified: the log is complete and unmodified; " + Val(v["records"]) +
                 " records, signed by " + Val(v["key_ids"]) + " through seq " +
                 Val(v["signed_through_seq"]) + ".",
             "ok");
  } else {
    out.Para("NOT verified: " + Val(v["findings_total"]) +
                 " finding(s). What follows is what the log says, not what is proven.",
             "bad");
  }
  std::string checkpoints;
  for (const auto& c : v["checkpoints"])
    checkpoints += (checkpoints.empty() ? "" : ", ") + Val(c["seq"]);
  out.KeyValues({{"records", Val(v["records"])},
                 {"bytes", Val(v["bytes"])},
                 {"blobs", Val(v["blobs"])},
                 {"valid signatures", Val(v["signatures"])},
                 {"key ids", Val(v["key_ids"])},
                 {"checkpoints at seq", checkpoints.empty() ? "none" : checkpoints},
                 {"signed through seq", Val(v["signed_through_seq"])},
                 {"last seq", Val(v["last_seq"])},
                 {"head", Val(v["head"])}});
  std::string findings;
  for (const auto& f : v["findings"]) findings += Val(f) + "\n";
  if (!findings.empty()) out.Block("findings", findings);

  out.Section("inputs", "Inputs");
  const json repo = in.value("repository", json::object());
  const json image = in.value("image", json::object());
  const json skill = in.value("skill", json::object());
  const json model = in.value("model", json::object());
  out.KeyValues(
      {{"run",
        Val(in.value("run_id", json())) + " (attempt " + Val(in.value("attempt", json())) + ")"},
       {"role", Val(in.value("role", json()))},
       {"trigger", Val(in.value("requested_by", json()))},
       {"context", Val(in.value("context", json()))},
       {"repository", Val(repo.value("url", json()))},
       {"commit",
        Val(repo.value("commit", json())) + " (asked: " + Val(repo.value("rev", json())) + ")"},
       {"image", Val(image.value("name", json())) + " " + Val(image.value("digest", json()))},
       {"skill", Val(skill.value("path", json()))},
       {"skill sha256", Val(skill.value("sha256", json()))},
       {"model", Val(model.value("provider", json())) + " " + Val(model.value("name", json()))},
       {"budgets", Val(in.value("budgets", json()))},
       {"limits", Val(in.value("limits", json()))},
       {"scoped secrets (names)", Val(in.value("secrets", json()))},
       {"network allow", Val(in.value("network_allow", json()))},
       {"replay of", Val(in.value("replay_of", json()))}});
  out.Block("task", Val(in.value("task", json())));
  if (in.contains("command")) out.Block("command", Val(in["command"]));
  if (in.contains("runtime_spec")) {
    out.Block("run spec (sha256 " + Val(in["runtime_spec"].value("sha256", json())) + ")",
              Val(in["runtime_spec"].value("text", json())));
  }

  out.Section("timeline", "Timeline");
  Rows rows;
  for (const auto& t : r["timeline"]) {
    std::string kind = Val(t["kind"]), what, tokens;
    const json usage = t.value("usage", json());
    if (kind == "model") {
      what = "model turn " + Val(t["turn"]) + ": " + Val(t.value("status", json())) + " " +
             Val(t.value("stop_reason", json()));
      if (usage.is_object()) {
        tokens = Val(usage.value("input_tokens", json())) + " in, " +
                 Val(usage.value("output_tokens", json())) + " out";
      }
    } else if (kind == "tool") {
      what = "tool " + Val(t["tool"]) + " (exit " + Val(t.value("exit_status", json())) + ")";
    } else if (kind == "steer") {
      what = "steering from " + Val(t["from"]);
    } else {
      what = kind + " " + Val(t.value("event", json())) + ": " + Val(t.value("message", json()));
    }
    rows.push_back({Val(t["seq"]), Val(t["ts"]), what, Val(t.value("duration_ms", json())), tokens,
                    Usd(t.value("cost_microusd", json()))});
  }
  out.Table({"seq", "time", "what", "ms", "tokens", "cost"}, rows);
  for (const auto& t : r["timeline"]) {
    std::string kind = Val(t["kind"]);
    if (kind == "model") {
      out.Sub("seq " + Val(t["seq"]) + ": model turn " + Val(t["turn"]) + ", attempt " +
              Val(t["attempt"]));
      if (t.contains("error")) out.Para("error: " + Val(t["error"]));
      if (!Val(t.value("text", json())).empty()) out.Block("the model wrote", Val(t["text"]));
    } else if (kind == "tool") {
      out.Sub("seq " + Val(t["seq"]) + ": " + Val(t["tool"]) + " (" + Val(t["call_id"]) + ")");
      out.Block("arguments", Pretty(t["input"]));
      out.Block("output" + std::string(Flag(t, "truncated") ? " (truncated by the tool)" : "") +
                    ", exit status " + Val(t.value("exit_status", json())),
                Val(t.value("output", json())));
    }
  }

  out.Section("proxy", "Proxy requests");
  rows.clear();
  for (const auto& p : r["proxy"]) {
    std::string target = Val(p["gateway"]).empty()
                             ? Val(p["host"]) + ":" + Val(p["port"]) + Val(p["path"])
                             : "gateway " + Val(p["gateway"]) + Val(p["path"]);
    rows.push_back({Val(p["seq"]), Val(p["ts"]), Val(p["method"]), target, Val(p["decision"]),
                    Val(p["status"]), Val(p["reason"]), Val(p["duration_ms"])});
  }
  if (rows.empty()) out.Para("No request left the sandbox.");
  out.Table({"seq", "time", "method", "target", "decision", "status", "rule or reason", "ms"},
            rows);

  out.Section("steering", "Steering");
  rows.clear();
  for (const auto& s : r["steering"]) {
    rows.push_back({Val(s["seq"]), Val(s["ts"]), Val(s["from"]), Val(s["message"])});
  }
  if (rows.empty()) out.Para("Nobody steered this run.");
  out.Table({"seq", "time", "from", "message"}, rows);

  out.Section("diff", "Diff");
  const json& diff = r["diff"];
  if (!diff.is_object()) {
    out.Para("No diff was collected.");
  } else {
    rows.clear();
    for (const auto& f : diff.value("files", json::array())) {
      rows.push_back({Val(f.value("status", json())), Val(f.value("path", json()))});
    }
    out.Para(std::to_string(rows.size()) + " file(s), " + Bytes(diff.value("bytes", json())) +
             ", sha256 " + Val(diff.value("sha256", json())) +
             (Flag(diff, "truncated") ? " (truncated)" : ""));
    out.Table({"status", "path"}, rows);
    out.Block("patch", Val(diff.value("patch", json())));
  }

  out.Section("result", "Result");
  const json& res = r["result"];
  if (!res.is_object()) {
    out.Para("The log holds no result.");
  } else {
    out.KeyValues({{"outcome", Val(res["outcome"])},
                   {"reason", Val(res["reason"])},
                   {"summary", Val(res["summary"])},
                   {"totals", Val(res["totals"])}});
    if (!res["result"].is_null()) out.Block("submitted result", Pretty(res["result"]));
  }

  out.Section("verify-gate", "Verify gate");
  const json& gate = r["verify_gate"];
  if (!gate.is_object()) {
    out.Para(
        "This run had no verify gate: it is neither a verify run nor one the pipeline decided on.");
  } else if (gate.contains("command")) {
    out.KeyValues({{"command", Val(gate["command"])},
                   {"exit status", Val(gate["exit_code"])},
                   {"outcome", Val(gate.value("outcome", json()))}});
    out.Block("the command's output (its end)", Val(gate["output"]));
  } else {
    out.Block("the pipeline's decision", Pretty(gate["decision"]));
  }

  out.Section("end", "End");
  const json& end = r["end"];
  if (!end.is_object()) {
    out.Para("The log has no run.end: the run did not end, or its end was cut off.", "bad");
  } else {
    out.KeyValues({{"status", Val(end["status"])},
                   {"why", Val(end["error"])},
                   {"at", Val(end["ts"]) + " (seq " + Val(end["seq"]) + ")"},
                   {"signed by", Val(end["key_id"])},
                   {"totals", Val(end["totals"])},
                   {"timings", Val(end["timings"])}});
  }
}

}  // namespace

std::string Markdown(const json& report) {
  MarkdownOut out;
  Render(report, out);
  return out.Finish();
}

std::string Html(const json& report) {
  HtmlOut out;
  Render(report, out);
  return out.Finish();
}

}  // namespace kiln::audit
