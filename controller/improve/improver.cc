#include "controller/improve/improver.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>

#include "base/fd.h"
#include "base/strings.h"
#include "controller/config/skill.h"
#include "controller/git/write.h"
#include "controller/improve/proposal.h"
#include "controller/improve/signals.h"
#include "controller/replay/replay.h"
#include "controller/run/provision.h"
#include "runtime/tools/json_schema.h"

namespace kiln::improve {

std::string Branch(const std::string& role) { return "kiln/improve-" + role; }

namespace {

using nlohmann::json;

// The signals the task lists (the file has them all).
constexpr size_t kTaskIndexLines = 200;

std::string Text(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// The improver's pull request still open, and its companion's text.
struct Open {
  int64_t number = 0;
  std::string text;
};

// The task of an improve run: what to improve, where the evidence is, the
// open proposal it replaces, and the core skill its guidance is appended to.
std::string Task(const config::Config::Schedule& sc, const json& signals, const skill::Skill& core,
                 const std::string& companion, bool exists, const std::optional<Open>& open) {
  const auto& im = sc.improve;
  std::string t = "Improve the guidance of kiln's `" + im.role + "` role for the repository " +
                  im.repo + ".\n\n";
  t += "The signals from " + signals["window"]["from"].get<std::string>() + " to " +
       signals["window"]["to"].get<std::string>() + " (" +
       std::to_string(signals["signals"].size()) + " signal(s); " +
       std::to_string(signals["runs"]["total"].get<uint64_t>()) + " run(s) of the role) are in " +
       kSignalsPath + ".\n";
  t += "The companion skill you may change is " + companion +
       (exists ? "." : ", which does not exist yet.") + " No other file.\n\n";
  if (open) {
    t += "Your earlier proposal is still open as pull request #" + std::to_string(open->number) +
         " (" + Branch(im.role) +
         "); your change replaces it. Keep what the evidence still supports. Its " + companion +
         " reads:\n\n" + open->text + "\n\n";
  }
  // An index of the signals, by kind and number, with the ids to cite.
  const json& list = signals["signals"];
  if (!list.empty()) t += "The signals, by kind (details in the file):\n";
  for (size_t i = 0; i < list.size() && i < kTaskIndexLines; ++i) {
    t += "- " + Text(list[i], "kind") + " on #" +
         std::to_string(list[i].value("number", int64_t{0})) + ": " + Text(list[i], "id") + "\n";
  }
  if (list.size() > kTaskIndexLines) {
    t += "- ... and " + std::to_string(list.size() - kTaskIndexLines) + " more in the file\n";
  }
  if (!list.empty()) t += "\n";
  t += "The " + im.role + " role's core skill, which that guidance is appended to:\n\n" +
       core.body + "\n";
  return t;
}

// The pull request's description: the run's summary, the evidence it cites,
// how it was made.
std::string Body(const runner::Finished& f, const std::string& role, const json& signals,
                 const std::vector<std::string>& evidence, const std::string& comparison) {
  std::string b = Text(f.result, "summary") + "\n\n## Evidence\n\n";
  for (const std::string& id : evidence) {
    for (const json& s : signals["signals"]) {
      if (Text(s, "id") != id) continue;
      b += "- `" + id + "` " + Text(s, "kind") + " on #" +
           std::to_string(s.value("number", int64_t{0}));
      if (!Text(s, "actor").empty()) b += " by " + Text(s, "actor");
      if (!Text(s, "run_id").empty()) b += " (kiln run `" + Text(s, "run_id") + "`)";
      b += "\n";
    }
  }
  b += "\n" + comparison;
  b += "\nThis changes only `" + CompanionPath(Text(f.run.request.context, "skills_dir"), role) +
       "`, the guidance the " + role +
       " role reads after its core skill; nothing takes effect before it is merged.\n\n---\n"
       "_kiln improve run `" +
       f.run.id + "`; inspect with `kiln runs show " + f.run.id + "`_";
  return b;
}

// The past tasks the comparison re-runs: the runs the cited signals
// correct first, then the others the signals name, at most n.
std::vector<std::pair<std::string, int64_t>> PastTasks(const json& signals,
                                                       const std::vector<std::string>& evidence,
                                                       size_t n) {
  std::vector<std::pair<std::string, int64_t>> out;
  std::set<std::string> seen;
  auto add = [&](const json& s) {
    std::string run = Text(s, "run_id");
    if (run.empty() || out.size() >= n || !seen.insert(run).second) return;
    out.emplace_back(run, s.value("number", int64_t{0}));
  };
  for (const std::string& id : evidence) {
    for (const json& s : signals["signals"]) {
      if (Text(s, "id") == id) add(s);
    }
  }
  for (const json& s : signals["signals"]) add(s);
  return out;
}

// A table cell: one line, no '|'.
std::string Cell(const json& v) {
  std::string t = v.is_null() ? "-" : v.is_string() ? v.get<std::string>() : v.dump();
  for (char& c : t) {
    if (c == '\n' || c == '|' || c == '`') c = ' ';
  }
  return Ellipsize(t, 80);
}

// What a result says that the roles are judged on: triage's labels and
// duplicate, review's verdict, spec's and implement's title; else the whole.
json Gist(const json& result) {
  if (!result.is_object()) return result;
  json gist = json::object();
  for (const char* key : {"labels", "duplicate_of", "verdict", "title"}) {
    if (result.contains(key)) gist[key] = result[key];
  }
  return gist.empty() ? result : gist;
}

std::string Cost(const json& microusd) {
  if (!microusd.is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.4f", microusd.get<double>() / 1e6);
  return buf;
}

}  // namespace

Improver::Improver(const runner::Services& services, forge::Forge& forge, forge::Inbox& inbox,
                   pipeline::State& state, std::string bot)
    : s_(services), forge_(forge), inbox_(inbox), state_(state), bot_(std::move(bot)) {}

Result<std::string> Improver::Start(const config::Config::Schedule& sc, int64_t now_ms) {
  const auto& im = sc.improve;
  const config::Config& cfg = *s_.config;
  KILN_ASSIGN_OR_RETURN(forge::RepoInfo info, forge_.Repo(im.repo));
  Window w{im.repo, im.role, now_ms - static_cast<int64_t>(im.lookback_ms), now_ms, bot_};
  KILN_ASSIGN_OR_RETURN(json signals, CollectSignals(w, *s_.store, state_, inbox_, forge_));
  KILN_ASSIGN_OR_RETURN(skill::Skill core, skill::Load(cfg.skills_dir, im.role));
  KILN_ASSIGN_OR_RETURN(git::Resolved base, s_.cache->Resolve(info.clone_url, info.default_branch));
  const std::string companion = CompanionPath(info.skills_dir, im.role);
  KILN_ASSIGN_OR_RETURN(auto existing, git::ReadFileAt(base.mirror_path, base.commit, companion));
  std::optional<Open> open;
  KILN_ASSIGN_OR_RETURN(auto pull, forge_.FindPull(im.repo, Branch(im.role)));
  if (pull) {
    KILN_ASSIGN_OR_RETURN(git::Resolved head, s_.cache->Resolve(info.clone_url, pull->head_sha));
    KILN_ASSIGN_OR_RETURN(auto text, git::ReadFileAt(head.mirror_path, head.commit, companion));
    open = Open{pull->issue.number, text.value_or("(" + companion + " is not in it)")};
  }

  // The run starts from the default branch's head with the signals in it.
  std::string tmp = cfg.state_dir + "/tmp/improve-XXXXXX";
  std::error_code ec;
  std::filesystem::create_directories(cfg.state_dir + "/tmp", ec);
  if (!::mkdtemp(tmp.data())) return Error::Sys("creating " + tmp, errno);
  std::string dir = tmp + "/" + std::filesystem::path(kSignalsPath).parent_path().string();
  Status written = std::filesystem::create_directories(dir, ec) || !ec
                       ? WriteFileAtomic(tmp + "/" + kSignalsPath, signals.dump(2) + "\n", 0644)
                       : Status(Error::Sys("creating " + dir, ec.value()));
  git::FileChange file;
  file.path = kSignalsPath;
  file.status = 'A';
  file.new_mode = 0100644;
  auto start = written.ok()
                   ? git::CommitChanges(base.mirror_path, base.commit, tmp, {file},
                                        "kiln improve: the signals of the " + im.role + " role", {},
                                        "refs/kiln/improve/" + sc.name)
                   : Result<std::string>(written.error());
  std::filesystem::remove_all(tmp, ec);
  if (!start) return start.error().Wrap("the improve run's start commit");

  store::RunRequest r;
  r.role = "improve";
  r.repo = info.clone_url;
  r.commit = *start;
  r.task = Task(sc, signals, core, companion, existing.has_value(), open);
  r.requested_by = "schedule:" + sc.name;
  r.max_attempts = cfg.retry.max_attempts;
  r.context = {{"forge", forge_.kind()},
               {"repo", im.repo},
               {"number", 0},
               {"base_sha", base.commit},
               {"base_branch", info.default_branch},
               {"skills_dir", info.skills_dir},
               {"improve",
                {{"role", im.role},
                 {"schedule", sc.name},
                 {"from_ms", w.from_ms},
                 {"to_ms", w.to_ms},
                 {"signals", signals["signals"].size()},
                 {"tasks", im.tasks}}}};
  KILN_ASSIGN_OR_RETURN(store::Run run, s_.store->Enqueue(r, now_ms));
  KILN_TRY(state_.Track({run.id, im.repo, 0, "improve", 0, 0, "", 0, ""}));
  return run.id;
}

Result<std::string> Improver::Compare(const runner::Finished& f, const std::string& role,
                                      const Verdict& v, const json& signals,
                                      sessionlog::Writer& log) {
  const json& ctx = f.run.request.context;
  int64_t n = ctx.value("improve", json::object()).value("tasks", int64_t{5});
  auto tasks = PastTasks(signals, v.evidence, static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::string out = "## Comparison\n\n";
  if (tasks.empty()) {
    return out + "The signals name no past run of the " + role + " role to re-run.\n";
  }
  // The guidance on the default branch, and with this change.
  KILN_ASSIGN_OR_RETURN(auto old_guidance, provision::CompanionsAt(f.mirror, Text(ctx, "base_sha"),
                                                                   Text(ctx, "skills_dir"), role));
  auto new_guidance = old_guidance;
  auto at = std::find_if(new_guidance.begin(), new_guidance.end(),
                         [&](const auto& c) { return c.first == v.path; });
  if (at != new_guidance.end()) {
    at->second = v.text;
  } else {
    new_guidance.emplace_back(v.path, v.text);
    std::sort(new_guidance.begin(), new_guidance.end());
  }
  std::vector<replay::Options> options;
  for (const auto& [run, number] : tasks) {
    for (const auto* guidance : {&old_guidance, &new_guidance}) {
      replay::Options o;
      o.target = run;
      o.rerun = true;
      o.companions = *guidance;
      o.verify_original = false;  // old and new are compared, not the original
      options.push_back(std::move(o));
    }
  }
  std::vector<replay::Report> reports = replay::ReplayAll(s_, options, stop_);
  out += "Each past task below was run again with today's `" + role +
         "` core skill and the configured model: with the guidance on `" +
         Text(ctx, "base_branch") +
         "` (old) and with this change (new).\n\n"
         "| task | guidance | status | gate | turns | tokens | cost | result |\n"
         "|---|---|---|---|---|---|---|---|\n";
  json rows = json::array();
  for (size_t i = 0; i < reports.size(); ++i) {
    const replay::Report& r = reports[i];
    const auto& [run, number] = tasks[i / 2];
    std::string task = i % 2 == 0 ? "`" + run + "` (#" + std::to_string(number) + ")" : "";
    std::string which = i % 2 == 0 ? "old" : "new";
    const json& o = r.replay.outcomes;
    if (r.exit_code != replay::kIdentical || !o.is_object()) {
      out += "| " + task + " | " + which + " | not run: " + Cell(r.error) + " | | | | | |\n";
    } else {
      out += "| " + task + " | " + which + " | " + Cell(o["status"]) + " | " + Cell(o["gate"]) +
             " | " + Cell(o["turns"]) + " | " + Cell(o["tokens"]) + " | " +
             Cost(o["cost_microusd"]) + " | `" + Cell(Gist(o.value("result", json()))) + "` |\n";
    }
    rows.push_back({{"task", run},
                    {"guidance", which},
                    {"run_id", r.replay.run_id},
                    {"error", r.error},
                    {"outcomes", o}});
  }
  (void)log.Append("controller", {{"event", "comparison"}, {"rows", std::move(rows)}});
  return out;
}

json Improver::Decide(const runner::Finished& f, sessionlog::Writer& log) {
  auto d = DecideOrError(f, log);
  if (d) return *d;
  (void)log.Append("controller", {{"event", "decision_failed"}, {"message", d.error().message()}});
  return {{"refused", json::array({"the controller could not decide: " + d.error().message()})}};
}

Result<json> Improver::DecideOrError(const runner::Finished& f, sessionlog::Writer& log) {
  if (!f.succeeded) return json::object();  // the run's outcome says how it ended
  const json& ctx = f.run.request.context;
  const std::string role = Text(ctx.value("improve", json::object()), "role");
  if (auto errors = json_schema::Validate(f.result_schema, f.result); !errors.empty()) {
    return json{{"refused", {"the result does not match the improve schema: " + errors.front()}}};
  }
  KILN_ASSIGN_OR_RETURN(auto signals_text, git::ReadFileAt(f.mirror, f.commit, kSignalsPath));
  json signals = json::parse(signals_text.value_or("{}"), nullptr, false);
  KILN_ASSIGN_OR_RETURN(skill::Skill core, skill::Load(s_.config->skills_dir, role));

  ProposalInput in;
  in.core = &core;
  in.skills_dir = Text(ctx, "skills_dir");
  in.diff = f.diff;
  in.result = f.result;
  in.signals = signals;
  std::string commit;
  // The change, committed on the default branch's head (never on the
  // signals' commit), read back from the commit: links are never followed.
  in.read = [&](const std::string& path) -> Result<std::string> {
    std::string message = "kiln improve: " + Text(f.result, "title") + "\n\n" +
                          Text(f.result, "summary") + "\n\nkiln-run: " + f.run.id + "\n";
    KILN_ASSIGN_OR_RETURN(
        commit, git::CommitChanges(f.mirror, Text(ctx, "base_sha"), f.workspace, f.diff->files,
                                   message, {}, "refs/kiln/runs/" + f.run.id));
    KILN_ASSIGN_OR_RETURN(auto text, git::ReadFileAt(f.mirror, commit, path));
    if (!text) return Error::NotFound(path + " is not in the change's commit");
    return *text;
  };
  Verdict v = CheckProposal(in);
  (void)log.Append("controller", {{"event", "improve"},
                                  {"outcome", v.outcome},
                                  {"reason", v.reason},
                                  {"evidence", v.evidence}});
  if (v.outcome == "refused") return json{{"refused", {v.reason}}};
  if (v.outcome != "proposed") return json{{"nothing_to_propose", v.reason}};
  KILN_ASSIGN_OR_RETURN(std::string comparison, Compare(f, role, v, signals, log));
  json actions = {{"push", {{"branch", Branch(role)}, {"commit", commit}, {"source", f.mirror}}},
                  {"pull",
                   {{"title", "Improve " + role + ": " + Text(f.result, "title")},
                    {"body", Body(f, role, signals, v.evidence, comparison)},
                    {"base", Text(ctx, "base_branch")}}}};
  (void)log.Append("controller", {{"event", "decision"},
                                  {"message", "the forge writes kiln will make"},
                                  {"actions", actions}});
  return actions;
}

}  // namespace kiln::improve
