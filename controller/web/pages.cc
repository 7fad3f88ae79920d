#include "controller/web/pages.h"

#include <map>

#include "base/html.h"
#include "controller/web/html.h"

namespace kiln::web {
namespace {

using nlohmann::json;

// A value as text: an object as "key value, ...", a list joined by ", ".
std::string Str(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  std::string out;
  if (v.is_object()) {
    for (const auto& [k, e] : v.items()) {
      if (e.is_null() || (e.is_array() && e.empty())) continue;
      out += (out.empty() ? "" : ", ") + k + " " + Str(e);
    }
    return out;
  }
  if (v.is_array()) {
    for (const auto& e : v) out += (out.empty() ? "" : ", ") + Str(e);
    return out;
  }
  return v.dump();
}

// What the run is for: "acme/widget#3" when the pipeline started it.
std::string ForWhat(const store::Run& run) {
  const json& c = run.request.context;
  if (c.is_object() && c.value("repo", json()).is_string() &&
      c.value("number", json()).is_number()) {
    return Str(c["repo"]) + "#" + Str(c["number"]);
  }
  return run.request.repo;
}

std::string Duration(int64_t ms) {
  if (ms <= 0) return "";
  if (ms < 1000) return std::to_string(ms) + " ms";
  if (ms < 120'000) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms / 60'000) + " min";
}

std::string Field(const std::string& name, const std::string& value) {
  return "<tr><th>" + HtmlEscape(name) + "</th><td>" + HtmlEscape(value) + "</td></tr>";
}

std::string Select(const std::string& name, const std::string& value,
                   const std::vector<std::string>& options) {
  std::string out = "<select name=\"" + name + "\"><option value=\"\">any " + name + "</option>";
  for (const auto& o : options) {
    out +=
        "<option" + std::string(o == value ? " selected" : "") + ">" + HtmlEscape(o) + "</option>";
  }
  return out + "</select>";
}

}  // namespace

bool RunFilter::Matches(const store::Run& run) const {
  return (repo.empty() || run.request.repo == repo || ForWhat(run).starts_with(repo + "#")) &&
         (role.empty() || run.request.role == role) &&
         (status.empty() || store::ToString(run.status) == status);
}

std::string Stats(store::Store& store, int64_t now_ms) {
  std::string out = "<div id=\"stats\" class=\"stats\">";
  auto counts = store.CountByStatus();
  if (counts) {
    out += "<p><b>" + std::to_string((*counts)[store::Status::kQueued]) + "</b> queued · <b>" +
           std::to_string((*counts)[store::Status::kRunning]) + "</b> running</p>";
  }
  store::ListFilter f;
  f.limit = 1000;
  std::map<std::string, std::map<std::string, int>> by_role;
  if (auto runs = store.List(f)) {
    for (const auto& r : *runs) {
      if (r.finished_ms == 0 || r.finished_ms < now_ms - 86'400'000) continue;
      ++by_role[r.request.role][std::string(store::ToString(r.status))];
    }
  }
  if (!by_role.empty()) {
    out +=
        "<table class=\"roles\"><caption>Last day, by role</caption><tr><th>role</th>"
        "<th>outcomes</th></tr>";
    for (const auto& [role, outcomes] : by_role) {
      std::string cells;
      for (const auto& [status, n] : outcomes)
        cells += Badge(status) + " " + std::to_string(n) + " ";
      out += "<tr><td>" + HtmlEscape(role) + "</td><td>" + cells + "</td></tr>";
    }
    out += "</table>";
  }
  return out + "</div>";
}

std::string RunRow(const store::Run& run) {
  const std::string status(store::ToString(run.status));
  int64_t took = run.started_ms > 0 && run.finished_ms > 0 ? run.finished_ms - run.started_ms : 0;
  return "<tr id=\"run-" + HtmlEscape(run.id) + "\" data-status=\"" + status +
         "\"><td><a href=\"/runs/" + HtmlEscape(run.id) + "\">" + HtmlEscape(run.id) +
         "</a></td><td>" + HtmlEscape(run.request.role) + "</td><td>" + HtmlEscape(ForWhat(run)) +
         "</td><td>" + Badge(status) + "</td><td>" + std::to_string(run.attempt) + "</td><td>" +
         When(run.created_ms) + "</td><td>" + Duration(took) + "</td><td>" +
         HtmlEscape(run.outcome) + "</td></tr>";
}

std::string Dashboard(const Viewer& viewer, const RunFilter& filter,
                      const std::vector<store::Run>& runs, const std::string& stats) {
  std::string query = "?repo=" + HtmlEscape(filter.repo) + "&amp;role=" + HtmlEscape(filter.role) +
                      "&amp;status=" + HtmlEscape(filter.status);
  std::string body =
      "<h1>Runs</h1>" + stats +
      "<form class=\"filter\" method=\"get\" action=\"/\"><input name=\"repo\" "
      "placeholder=\"repository\" value=\"" +
      HtmlEscape(filter.repo) + "\"><input name=\"role\" placeholder=\"role\" value=\"" +
      HtmlEscape(filter.role) + "\">" +
      Select(
          "status", filter.status,
          {"queued", "running", "succeeded", "failed", "budget_exhausted", "cancelled", "error"}) +
      "<button type=\"submit\">Filter</button></form>";
  body +=
      "<div class=\"scroll\"><table class=\"runs\" id=\"runs\" data-events=\"/api/v1/runs/events" +
      query +
      "\"><thead><tr><th>run</th><th>role</th><th>for</th><th>status</th><th>attempt</th>"
      "<th>queued</th><th>took</th><th>outcome</th></tr></thead><tbody>";
  for (const auto& r : runs) body += RunRow(r);
  body += "</tbody></table></div>";
  return Page("Runs", viewer, body);
}

std::string RunStatus(const store::Run& run) {
  // data-ended tells the page to drop its steer box and cancel button.
  std::string out = "<p id=\"status\" class=\"status\"" +
                    std::string(store::IsTerminal(run.status) ? " data-ended=\"1\"" : "") + ">" +
                    Badge(std::string(store::ToString(run.status)));
  if (run.attempt > 1) out += " attempt " + std::to_string(run.attempt);
  if (run.cancel_requested && !store::IsTerminal(run.status)) out += " · cancel requested";
  if (!run.outcome.empty()) out += " · " + HtmlEscape(run.outcome);
  if (!run.error.empty()) out += " · " + HtmlEscape(run.error);
  return out + "</p>";
}

std::string Budgets(const RunView& view, const store::Run& run, int64_t now_ms) {
  const json budgets = view.folder().inputs().value("budgets", json::object());
  const json use = view.folder().Usage();
  auto limit = [&](const char* key) {
    const json v = budgets.is_object() ? budgets.value(key, json()) : json();
    return v.is_number() ? v.get<double>() : 0.0;
  };
  auto used = [&](const char* key) { return use.value(key, json(0)).get<double>(); };
  int64_t end = run.finished_ms > 0 ? run.finished_ms : now_ms;
  double wall = run.started_ms > 0 ? static_cast<double>(end - run.started_ms) / 1000.0 : 0;
  std::string out = "<div id=\"budgets\" class=\"budgets\">";
  out += Bar("turns", used("turns"), limit("max_turns"), "turns");
  out += Bar("input tokens", used("input_tokens"), limit("max_input_tokens"), "tokens");
  out += Bar("output tokens", used("output_tokens"), limit("max_output_tokens"), "tokens");
  const json cost = use.value("cost_microusd", json());
  if (cost.is_number()) out += Bar("cost", cost.get<double>() / 1e6, limit("max_cost_usd"), "USD");
  out += Bar("wall time", wall, limit("max_wall_ms") / 1000.0, "s");
  return out + "</div>";
}

std::string Outcome(const RunView& view, const store::Run& run,
                    const std::optional<Verdict>& verdict) {
  const audit::Folder& f = view.folder();
  std::string out = "<div id=\"outcome\">";
  const json& result = f.result();
  if (result.is_object()) {
    out += "<section><h2>Result</h2><table class=\"kv\">" +
           Field("outcome", Str(result["outcome"])) + Field("reason", Str(result["reason"])) +
           Field("summary", Str(result["summary"])) + "</table>" +
           Collapsible("result", result["result"].dump(2)) + "</section>";
  }
  const json gate = f.Sections()["verify_gate"];
  if (gate.is_object()) {
    out += "<section><h2>Verify gate</h2><table class=\"kv\">";
    if (gate.contains("command")) {
      out += Field("command", Str(gate["command"])) + Field("exit code", Str(gate["exit_code"]));
    }
    if (gate.contains("decision")) out += Field("decision", gate["decision"].dump());
    out += "</table>" + Collapsible("output", Str(gate.value("output", json()))) + "</section>";
  }
  const json& diff = f.diff();
  if (diff.is_object() || diff.is_string()) {
    std::string text =
        diff.is_string() ? diff.get<std::string>() : Str(diff.value("patch", json()));
    out += "<section><h2>Diff</h2>";
    if (diff.is_object() && diff.value("files", json()).is_array()) {
      out += "<ul class=\"files\">";
      for (const json& file : diff["files"]) {
        out += "<li>" + HtmlEscape(Str(file.value("status", json()))) + " <code>" +
               HtmlEscape(Str(file.value("path", json()))) + "</code></li>";
      }
      out += "</ul>";
    }
    out += text.empty() ? "<p>no change</p>" : DiffBlock(text);
    out += "</section>";
  }
  if (store::IsTerminal(run.status)) {
    out += "<section><h2>Session log</h2>";
    if (verdict) {
      out += std::string("<p class=\"verdict ") +
             (verdict->verified ? "ok\">✔ verified" : "bad\">✘ does not verify") +
             (verdict->complete ? "" : " (incomplete)") + ": " + HtmlEscape(verdict->text) + "</p>";
    }
    out += "<p><code>" + HtmlEscape(run.log_path) + "</code></p></section>";
  }
  return out + "</div>";
}

std::string TimelinePage(const RunView& view, uint64_t before_seq, uint64_t* first_seq) {
  const auto& items = view.items();
  size_t end = items.size();
  if (before_seq > 0) {
    end = 0;
    while (end < items.size() && items[end].seq < before_seq) ++end;
  }
  size_t begin = end > kPageItems ? end - kPageItems : 0;
  std::string out;
  for (size_t i = begin; i < end; ++i) out += items[i].html;
  *first_seq = begin > 0 ? items[begin].seq : 0;
  return out;
}

std::string RunPage(const Viewer& viewer, const store::Run& run, const RunView* view,
                    const RunPageBase& base, const std::optional<Verdict>& verdict,
                    int64_t now_ms) {
  std::string body = "<h1>Run <code>" + HtmlEscape(run.id) + "</code></h1>" + RunStatus(run);
  if (!base.read_only && !store::IsTerminal(run.status)) {
    body += "<div class=\"actions\" id=\"actions\"><form method=\"post\" action=\"/runs/" +
            HtmlEscape(run.id) + "/steer\" class=\"steer\">" + CsrfField(viewer) +
            "<input name=\"message\" required maxlength=\"8000\" placeholder=\"A message for the "
            "agent, read at its next turn\"><button type=\"submit\">Steer</button></form>"
            "<form method=\"post\" action=\"/runs/" +
            HtmlEscape(run.id) + "/cancel\" class=\"inline\">" + CsrfField(viewer) +
            "<button type=\"submit\" class=\"danger\">Cancel run</button></form></div>";
  }
  // Placeholders until the log begins: the live updates fill them.
  body += view ? Budgets(*view, run, now_ms) : "<div id=\"budgets\"></div>";
  // Inputs: the request, then what run.start recorded.
  const json in = view ? view->folder().inputs() : json::object();
  body += "<section><h2>Inputs</h2><table class=\"kv\">" + Field("role", run.request.role) +
          Field("repository", run.request.repo) +
          Field("commit", run.commit_sha.empty() ? run.request.commit : run.commit_sha) +
          Field("requested by", run.request.requested_by) +
          Field("image", Str(in.value("image", json()))) +
          Field("skill", Str(in.value("skill", json()))) +
          Field("model", Str(in.value("model", json()))) +
          Field("budgets", Str(in.value("budgets", json()))) +
          Field("secrets", Str(in.value("secrets", json()))) + "</table>" +
          Collapsible("task", run.request.task, true) + "</section>";
  body += "<section><h2>Timeline</h2>";
  if (!view) {
    body += "<p>The run has not started: its session log begins when it does.</p>";
  }
  uint64_t first = 0;
  std::string items = view ? TimelinePage(*view, 0, &first) : "";
  if (first > 0) {
    body += "<button class=\"earlier\" data-timeline=\"" + HtmlEscape(base.path) +
            "/timeline\" data-before=\"" + std::to_string(first) + "\">Show earlier</button>";
  }
  body += "<ol id=\"timeline\" class=\"timeline\" data-events=\"" + HtmlEscape(base.path) +
          "/events?after=" + std::to_string(view ? view->last_seq() : 0) + "\">" + items +
          "</ol></section>";
  body += view ? Outcome(*view, run, verdict) : "<div id=\"outcome\"></div>";
  if (!base.read_only && !run.commit_sha.empty()) {
    body += "<section><h2>Continue locally</h2><p>A repository of your own on branch <code>kiln/" +
            HtmlEscape(run.id) +
            "</code>, at the run's commit with the agent's change committed, and the transcript "
            "beside it (<code>kiln-transcript.md</code>):</p><pre>kiln runs handoff " +
            HtmlEscape(run.id) + " ./" + HtmlEscape(run.id) + "</pre></section>";
  }
  return Page("Run " + run.id, viewer, body);
}

std::string LoginPage(const std::string& login_csrf, const std::string& next,
                      const std::string& error) {
  std::string body = "<h1>Sign in</h1>";
  if (!error.empty()) body += "<p class=\"bad\">" + HtmlEscape(error) + "</p>";
  body +=
      "<form method=\"post\" action=\"/login\" class=\"login\"><input type=\"hidden\" "
      "name=\"login_csrf\" value=\"" +
      HtmlEscape(login_csrf) + "\"><input type=\"hidden\" name=\"next\" value=\"" +
      HtmlEscape(next) +
      "\"><label>User <input name=\"user\" autocomplete=\"username\" required></label>"
      "<label>Token <input name=\"token\" type=\"password\" autocomplete=\"current-password\" "
      "required></label><button type=\"submit\">Sign in</button></form><p>Your token is the "
      "one <code>kiln forge user add</code> gave you.</p>";
  return Page("Sign in", Viewer{}, body);
}

std::string ErrorPage(const Viewer& viewer, int status, const std::string& message) {
  return Page("Error", viewer,
              "<h1>" + std::to_string(status) + "</h1><p>" + HtmlEscape(message) + "</p>");
}

}  // namespace kiln::web
