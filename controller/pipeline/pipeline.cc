#include "controller/pipeline/pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "base/clock.h"
#include "controller/config/skill.h"
#include "controller/forge/wire.h"
#include "controller/git/write.h"
#include "controller/pipeline/fenced_forge.h"
#include "controller/pipeline/roles.h"

namespace kiln::pipeline {
namespace {

using nlohmann::json;

bool Active(store::Status s) { return !store::IsTerminal(s); }

// "/kiln review" on a comment's first line, or a mention of the bot
// ("@kiln"): the role to run again, or "" when the comment asks for nothing.
std::string CommandOf(const std::string& body, bool on_pull, const std::string& bot) {
  std::string first = body.substr(0, body.find('\n'));
  while (!first.empty() && (first.back() == ' ' || first.back() == '\r')) first.pop_back();
  const std::string prefix = "/kiln ";
  if (first.rfind(prefix, 0) == 0) {
    std::string word = first.substr(prefix.size());
    word = word.substr(0, word.find(' '));
    for (const char* role : {"triage", "spec", "implement", "review", "verify"}) {
      if (word == role) return word;
    }
    return "?" + word;
  }
  // A GitHub App's bot "name[bot]" is mentioned as @name.
  std::string handle = bot;
  if (handle.size() > 5 && handle.compare(handle.size() - 5, 5, "[bot]") == 0)
    handle.resize(handle.size() - 5);
  // "@kiln" as a word: not "@kiln-dev", not "ops@kiln.example".
  auto word = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  };
  const std::string mention = "@" + handle;
  for (size_t at = body.find(mention); at != std::string::npos; at = body.find(mention, at + 1)) {
    const size_t end = at + mention.size();
    bool starts = at == 0 || (!word(body[at - 1]) && body[at - 1] != '.');
    bool ends = end == body.size() || (!word(body[end]) && body[end] != '.') ||
                (body[end] == '.' && (end + 1 == body.size() || !word(body[end + 1])));
    if (starts && ends) return on_pull ? "review" : "triage";
  }
  return "";
}

}  // namespace

struct Pipeline::Handled {
  std::string outcome;    // recorded with the event
  bool deferred = false;  // wait: the event stays pending
};

Pipeline::Pipeline(const runner::Services& services, forge::Forge& forge, forge::Inbox& inbox,
                   State& state, Options options)
    : s_(services),
      fenced_(std::make_unique<FencedForge>(
          forge, [&state](const std::string& doing) { return state.Leads(doing); })),
      forge_(*fenced_),
      inbox_(inbox),
      state_(state),
      options_(std::move(options)) {}

Result<bool> Pipeline::Lead() {
  if (options_.lead_ms <= 0) return true;
  // Renewed every third of the lease, not at every call (before each event
  // and result): a write per event would cost more than the event. Between
  // renewals the fence still checks every write.
  const int64_t now = NowMs();
  if (leader_ == options_.host && now - renewed_ms_ < options_.lead_ms / 3) return true;
  KILN_ASSIGN_OR_RETURN(pipeline::Lead lead, state_.TakeLead(options_.host, now, options_.lead_ms));
  renewed_ms_ = now;
  if (lead.holder != leader_) {
    if (lead.holder == options_.host) {
      spdlog::info("pipeline: this host leads it now (epoch {})", lead.epoch);
    } else {
      spdlog::info("pipeline: {} leads it (epoch {}); this host leaves events and results to it",
                   lead.holder, lead.epoch);
    }
    leader_ = lead.holder;
  }
  if (lead.holder != options_.host) return false;
  state_.Fence(options_.host, lead.epoch);
  return true;
}

Result<bool> Pipeline::Trusted(const std::string& repo, const std::string& user) {
  for (const auto& u : options_.trusted_users) {
    if (u == user) return true;
  }
  return forge_.IsTrusted(repo, user);
}

Result<std::optional<store::Run>> Pipeline::Active(const std::string& repo, int64_t number,
                                                   const std::string& role) {
  KILN_ASSIGN_OR_RETURN(auto tracked, state_.ForIssue(repo, number, role));
  for (const auto& t : tracked) {
    KILN_ASSIGN_OR_RETURN(store::Run run, s_.store->Get(t.run_id));
    if (pipeline::Active(run.status)) return std::optional<store::Run>(run);
  }
  return std::optional<store::Run>();
}

Status Pipeline::Comment(const std::string& repo, int64_t number, const std::string& body) {
  auto c = forge_.AddComment(repo, number, body);
  if (!c) return c.error();
  return Ok();
}

Status Pipeline::CancelActive(const std::string& repo, int64_t number) {
  KILN_ASSIGN_OR_RETURN(auto tracked, state_.ForIssue(repo, number));
  for (const auto& t : tracked) {
    KILN_ASSIGN_OR_RETURN(store::Run run, s_.store->Get(t.run_id));
    if (pipeline::Active(run.status)) (void)s_.store->RequestCancel(t.run_id, NowMs());
  }
  return Ok();
}

Result<Pipeline::Handled> Pipeline::Start(const std::string& role, int64_t number,
                                          const forge::Event& e, const std::string& pinned) {
  const std::string& repo = e.repo;
  // Handled before (a crash or an error after the run was queued): once.
  KILN_ASSIGN_OR_RETURN(auto earlier, state_.ForIssue(repo, number, role));
  for (const auto& t : earlier) {
    if (t.event_seq == e.seq) return Handled{"started " + role + " run " + t.run_id, false};
  }
  KILN_ASSIGN_OR_RETURN(std::optional<store::Run> active, Active(repo, number, role));
  if (active) return Handled{"waiting for " + role + " run " + active->id, true};
  KILN_ASSIGN_OR_RETURN(forge::RepoInfo info, forge_.Repo(repo));
  roles::TaskInput in;
  in.role = role;
  in.repo = repo;
  in.event_seq = e.seq;
  in.label_set = info.labels;
  json context = {{"forge", forge_.kind()},
                  {"repo", repo},
                  {"number", number},
                  {"event_seq", e.seq},
                  {"event", e.kind},
                  {"actor", e.actor},
                  {"label_set", info.labels},
                  {"base_branch", info.default_branch},
                  {"skills_dir", info.skills_dir}};
  std::string rev = info.default_branch;
  int64_t issue_number = number;
  if (role == "review" || role == "verify") {
    KILN_ASSIGN_OR_RETURN(forge::PullRequest pull, forge_.GetPull(repo, number));
    if (pull.issue.state != "open") return Handled{"pull request is " + pull.issue.state, false};
    // By sha, the base branch's tip and the head: a fetch only when the
    // mirror lacks them (so review and verify of one event fetch once). The
    // test command is read from the base (a pull request cannot change its
    // own gate).
    KILN_ASSIGN_OR_RETURN(git::Resolved base_tip, s_.cache->Resolve(info.clone_url, pull.base_sha));
    KILN_ASSIGN_OR_RETURN(git::Resolved head, s_.cache->Resolve(info.clone_url, pull.head_sha));
    KILN_ASSIGN_OR_RETURN(std::string base,
                          git::MergeBase(head.mirror_path, pull.base_sha, pull.head_sha));
    rev = pull.head_sha;
    context["head_sha"] = pull.head_sha;
    context["base_sha"] = base;
    context["base_branch"] = pull.base_branch;
    if (role == "review") {
      KILN_ASSIGN_OR_RETURN(in.patch, git::DiffCommits(head.mirror_path, base, pull.head_sha));
    } else {
      KILN_ASSIGN_OR_RETURN(std::string command,
                            roles::TestCommand(head.mirror_path, base_tip.commit));
      if (command.empty()) {
        KILN_ASSIGN_OR_RETURN(skill::Skill sk, skill::Load(s_.config->skills_dir, "verify"));
        command = sk.command;
      }
      if (command.empty()) {
        KILN_TRY(Comment(repo, number,
                         "kiln cannot verify this pull request: the repository names no test "
                         "command (`test:` in `.kiln/kiln.yml`)."));
        return Handled{"no test command", false};
      }
      context["command"] = command;
    }
    in.pull = pull;
    in.issue = pull.issue;
    // The issue the pull request is for, when kiln opened it.
    if (int64_t n = roles::IssueOfBranch(pull.head_branch, "implement"); n > 0) issue_number = n;
  } else {
    KILN_ASSIGN_OR_RETURN(in.issue, forge_.GetIssue(repo, number));
    if (in.issue.state != "open") return Handled{"issue is " + in.issue.state, false};
  }
  if (issue_number != number) {
    KILN_ASSIGN_OR_RETURN(in.issue, forge_.GetIssue(repo, issue_number));
  }
  context["issue"] = issue_number;
  KILN_ASSIGN_OR_RETURN(in.comments, forge_.Comments(repo, issue_number));
  // kiln's own progress comments are not the people's words.
  std::erase_if(in.comments, [&](const forge::Comment& c) { return c.author == options_.bot; });
  if (role == "implement") {
    in.spec_branch = roles::SpecBranch(number);
    rev = pinned;
  }
  store::RunRequest req;
  req.role = role;
  req.repo = info.clone_url;
  req.commit = rev;
  req.task = roles::Task(in);
  req.requested_by = forge_.kind() + ":" + e.actor;
  req.context = context;
  if (Status st = runner::CheckRequest(s_, req); !st.ok()) {
    KILN_TRY(Comment(repo, number, "kiln cannot start " + role + ": " + st.error().message()));
    return Handled{"refused: " + st.error().message(), false};
  }
  KILN_TRY(state_.Leads("queueing " + role + " for " + repo + " #" + std::to_string(number)));
  KILN_ASSIGN_OR_RETURN(store::Run run, s_.store->Enqueue(req, NowMs()));
  Tracked t{run.id, repo, number, role, e.seq, 0, "", 0, ""};
  KILN_TRY(state_.Track(t));
  auto comment = forge_.AddComment(repo, number, ProgressText(t, run));
  if (comment) {
    KILN_TRY(state_.SetComment(run.id, comment->id));
    KILN_TRY(state_.SetShown(run.id, std::string(store::ToString(run.status))));
  }
  if (role == "verify") {
    forge::CommitStatus status{"kiln/verify", "pending", "queued as run " + run.id, "", 0};
    (void)forge_.SetStatus(repo, context["head_sha"].get<std::string>(), status);
  }
  spdlog::info("pipeline: {} #{}: {} queued as run {}", repo, number, role, run.id);
  return Handled{"started " + role + " run " + run.id, false};
}

// Implement needs an approved spec: kiln's own spec pull request for the
// issue, approved by a trusted user — the plan-approved label on the issue or
// on that pull request, or an approving review of its current head. The run
// starts from that head, pinned: a later push to the spec is not approved.
Result<Pipeline::Handled> Pipeline::StartImplement(int64_t issue, const forge::Event& e) {
  KILN_ASSIGN_OR_RETURN(std::optional<store::Run> spec_run, Active(e.repo, issue, "spec"));
  if (spec_run) return Handled{"waiting for spec run " + spec_run->id, true};
  KILN_ASSIGN_OR_RETURN(auto spec_pull, forge_.FindPull(e.repo, roles::SpecBranch(issue)));
  std::string why;
  if (!spec_pull || spec_pull->issue.author != options_.bot) {
    why = "it has no spec pull request from kiln";
  } else {
    KILN_ASSIGN_OR_RETURN(forge::Issue item, forge_.GetIssue(e.repo, issue));
    auto labelled = [](const forge::Issue& i) {
      return std::find(i.labels.begin(), i.labels.end(), "plan-approved") != i.labels.end();
    };
    bool approved = labelled(item) || labelled(spec_pull->issue);
    KILN_ASSIGN_OR_RETURN(auto reviews, forge_.Reviews(e.repo, spec_pull->issue.number));
    for (const auto& r : reviews) {
      if (approved) break;
      if (r.verdict != "approve" || r.commit_sha != spec_pull->head_sha) continue;
      KILN_ASSIGN_OR_RETURN(approved, Trusted(e.repo, r.author));
    }
    if (!approved) {
      why = "its spec pull request #" + std::to_string(spec_pull->issue.number) +
            " is not approved (an approving review of its head, or the plan-approved label)";
    }
  }
  if (!why.empty()) {
    (void)forge_.AddLabels(e.repo, issue, {"blocked"});
    KILN_TRY(Comment(e.repo, issue,
                     "kiln will not implement #" + std::to_string(issue) + ": " + why +
                         ". Label the issue `ready-to-spec` for a spec pull request, then "
                         "approve it."));
    return Handled{"blocked: " + why, false};
  }
  return Start("implement", issue, e, spec_pull->head_sha);
}

Result<Pipeline::Handled> Pipeline::Handle(const forge::Event& e) {
  const bool by_bot = e.actor == options_.bot;
  auto expensive = [&](const std::string& role, int64_t number) -> Result<Handled> {
    KILN_ASSIGN_OR_RETURN(bool trusted, Trusted(e.repo, e.actor));
    if (!trusted) {
      KILN_TRY(Comment(e.repo, number,
                       "kiln: " + e.actor + " is not trusted to start " + role + " runs in " +
                           e.repo + "; a maintainer can."));
      return Handled{"refused: " + e.actor + " is not trusted to start " + role, false};
    }
    if (role == "implement") return StartImplement(number, e);
    return Start(role, number, e);
  };
  if (e.kind == "issue.opened") {
    if (by_bot) return Handled{"ignored: opened by kiln", false};
    KILN_ASSIGN_OR_RETURN(auto earlier, state_.ForIssue(e.repo, e.number, "triage"));
    if (!earlier.empty()) return Handled{"ignored: already triaged", false};
    return Start("triage", e.number, e);
  }
  if (e.kind == "issue.labeled" || e.kind == "pull.labeled") {
    const std::string label = e.payload.value("label", "");
    if (by_bot) return Handled{"ignored: labeled by kiln", false};
    if (label != "ready-to-spec" && label != "plan-approved") {
      return Handled{"ignored: label " + label, false};
    }
    KILN_ASSIGN_OR_RETURN(forge::Issue now, forge_.GetIssue(e.repo, e.number));
    if (std::find(now.labels.begin(), now.labels.end(), label) == now.labels.end()) {
      return Handled{"stale: label " + label + " was removed since", false};
    }
    if (label == "ready-to-spec") {
      if (now.is_pull) return Handled{"ignored: ready-to-spec on a pull request", false};
      return expensive("spec", e.number);
    }
    int64_t issue = e.number;
    if (now.is_pull) {
      KILN_ASSIGN_OR_RETURN(forge::PullRequest pull, forge_.GetPull(e.repo, e.number));
      issue = roles::IssueOfBranch(pull.head_branch, "spec");
      if (issue == 0)
        return Handled{"ignored: plan-approved on a pull request that is no spec", false};
    }
    return expensive("implement", issue);
  }
  if (e.kind == "review.submitted") {
    if (by_bot || e.payload.value("verdict", "") != "approve") {
      return Handled{"ignored: not an approval of a spec", false};
    }
    KILN_ASSIGN_OR_RETURN(forge::PullRequest pull, forge_.GetPull(e.repo, e.number));
    int64_t issue = roles::IssueOfBranch(pull.head_branch, "spec");
    if (issue == 0) return Handled{"ignored: not a spec pull request", false};
    return expensive("implement", issue);
  }
  if (e.kind == "pull.opened" || e.kind == "pull.synchronized") {
    if (!by_bot) return Handled{"ignored: not opened or updated by kiln", false};
    KILN_ASSIGN_OR_RETURN(forge::PullRequest pull, forge_.GetPull(e.repo, e.number));
    if (roles::IssueOfBranch(pull.head_branch, "implement") == 0) {
      return Handled{"ignored: not an implementation pull request", false};
    }
    if (e.payload.value("head_sha", pull.head_sha) != pull.head_sha) {
      return Handled{"stale: the head moved on to " + pull.head_sha, false};
    }
    KILN_ASSIGN_OR_RETURN(std::optional<store::Run> review, Active(e.repo, e.number, "review"));
    KILN_ASSIGN_OR_RETURN(std::optional<store::Run> verify, Active(e.repo, e.number, "verify"));
    if (review || verify) {
      return Handled{"waiting for run " + (review ? review->id : verify->id), true};
    }
    KILN_ASSIGN_OR_RETURN(Handled r, Start("review", e.number, e));
    KILN_ASSIGN_OR_RETURN(Handled v, Start("verify", e.number, e));
    return Handled{r.outcome + "; " + v.outcome, false};
  }
  if (e.kind == "comment.created") {
    if (by_bot) return Handled{"ignored: kiln's own comment", false};
    KILN_ASSIGN_OR_RETURN(forge::Issue item, forge_.GetIssue(e.repo, e.number));
    std::string role = CommandOf(e.payload.value("body", ""), item.is_pull, options_.bot);
    if (role.empty()) return Handled{"ignored: no command", false};
    if (role[0] == '?' || ((role == "review" || role == "verify") != item.is_pull)) {
      KILN_TRY(Comment(e.repo, e.number,
                       "kiln: unknown command `/kiln " + (role[0] == '?' ? role.substr(1) : role) +
                           "` here. On an issue: triage, spec, implement; on a pull request: "
                           "review, verify."));
      return Handled{"refused: unknown command " + role, false};
    }
    return expensive(role, e.number);
  }
  if (e.kind == "issue.closed" || e.kind == "pull.closed") {
    KILN_TRY(CancelActive(e.repo, e.number));
    return Handled{"cancelled the active runs", false};
  }
  return Handled{"ignored: " + e.kind, false};
}

Status Pipeline::Resign() {
  if (options_.lead_ms <= 0 || leader_ != options_.host) return Ok();
  return state_.ReleaseLead(options_.host);
}

Result<size_t> Pipeline::Tick() {
  KILN_ASSIGN_OR_RETURN(bool leads, Lead());
  if (!leads) return 0;
  KILN_ASSIGN_OR_RETURN(size_t handled, HandleEvents());
  KILN_ASSIGN_OR_RETURN(Followed runs, FollowRuns());
  if (runs.applied > 0) {
    // The writes just made are events too (kiln's pull request opened: review it).
    KILN_ASSIGN_OR_RETURN(size_t more, HandleEvents());
    handled += more;
  }
  return handled + runs.applied + runs.updated;
}

Result<size_t> Pipeline::HandleEvents() {
  size_t done = 0;
  KILN_ASSIGN_OR_RETURN(std::vector<forge::Event> events, inbox_.Pending(options_.batch));
  std::set<std::pair<std::string, int64_t>> waiting;  // issues with a deferred event
  for (const auto& e : events) {
    auto key = std::make_pair(e.repo, e.number);
    if (waiting.count(key)) continue;  // in order, per issue
    // The lead renewed (when due) before each event, so that a long tick (a
    // first fetch of a large repository) does not let it lapse unseen; lost,
    // the tick stops and the events are the new leader's.
    KILN_ASSIGN_OR_RETURN(bool leads, Lead());
    if (!leads) return done;
    auto h = Handle(e);
    if (!h) {
      spdlog::error("pipeline: event {} ({} {} #{}): {}", e.seq, e.kind, e.repo, e.number,
                    h.error().message());
      // A write refused because the lead passed: not the event's fault.
      // It stays pending for the new leader, and this tick ends.
      KILN_TRY(state_.Leads("handling event " + std::to_string(e.seq)));
      const Error::Code code = h.error().code();
      if (code == Error::Code::kIO || code == Error::Code::kTimeout ||
          code == Error::Code::kInternal) {
        // Left pending: a forge, git or store failure may pass. The issue waits.
        waiting.insert(key);
        continue;
      }
      // The event's own fault (a bad .kiln/kiln.yml, a branch that is gone):
      // said once on the issue, and done with.
      (void)Comment(e.repo, e.number, "kiln could not act on this: " + h.error().message());
      KILN_TRY(inbox_.MarkProcessed(e.seq, "failed: " + h.error().message(), NowMs()));
      ++done;
      continue;
    }
    if (h->deferred) {
      waiting.insert(key);
      continue;
    }
    KILN_TRY(state_.Leads("marking event " + std::to_string(e.seq) + " handled"));
    KILN_TRY(inbox_.MarkProcessed(e.seq, h->outcome, NowMs()));
    ++done;
  }
  return done;
}

Result<bool> Pipeline::Idle() {
  KILN_ASSIGN_OR_RETURN(auto events, inbox_.Pending(1));
  if (!events.empty()) return false;
  KILN_ASSIGN_OR_RETURN(auto unapplied, state_.Unapplied());
  return unapplied.empty();
}

// The start of the outcome of a run whose result could not be written.
constexpr std::string_view kApplyFailed = "failed: ";
// The outcome while the result is being written: found on a run not yet
// applied, it says a controller died in the middle of writing it.
constexpr std::string_view kApplying = "applying";

std::string Pipeline::ProgressText(const Tracked& t, const store::Run& run) {
  // A run whose result could not be written failed, whatever its sandbox did.
  std::string state = t.outcome.rfind(kApplyFailed, 0) == 0
                          ? std::string("failed")
                          : std::string(store::ToString(run.status));
  std::string text = "**kiln** `" + t.role + "` run `" + run.id + "`: **" + state + "**";
  if (run.attempt > 1) text += " (attempt " + std::to_string(run.attempt) + ")";
  text += "\n";
  if (!run.outcome.empty()) text += "\nOutcome: " + run.outcome;
  if (!run.error.empty()) text += " — " + run.error;
  if (!run.outcome.empty()) text += "\n";
  const json& totals = run.result.is_object() ? run.result.value("totals", json()) : json();
  if (totals.is_object()) {
    // The runtime's totals came out of the sandbox: numbers only if they are.
    auto count = [&](const char* key) {
      auto it = totals.find(key);
      return it != totals.end() && it->is_number_unsigned() ? std::to_string(it->get<uint64_t>())
                                                            : std::string("?");
    };
    text += "\nBudget use: " + count("turns") + " turns, " + count("input_tokens") + " input and " +
            count("output_tokens") + " output tokens, " + count("tool_calls") + " tool calls\n";
  }
  // On a fleet the run may be another host's: its use as that host records it.
  if (auto live = runner::LiveUsageOf(s_.live, run)) {
    text += "\nBudget use so far: " + std::to_string(live->turns) + " turns, " +
            std::to_string(live->input_tokens) + " input and " +
            std::to_string(live->output_tokens) + " output tokens, " +
            std::to_string(live->tool_calls) + " tool calls\n";
  }
  if (!t.outcome.empty()) text += "\nApplied: " + t.outcome + "\n";
  if (!options_.web_url.empty()) {
    text += "\n[Watch, steer or cancel it](" + options_.web_url + "/runs/" + run.id + ")\n";
  }
  text += "\nInspect: `kiln runs show " + run.id + "`";
  if (!run.log_path.empty()) text += " · `kiln log show " + run.log_path + "`";
  return text;
}

// The forge writes of one run's decision, as the bot. Returns what was done
// (for the progress comment and the event log); a write the forge refuses
// is reported there and the rest go on.
std::string Pipeline::Apply(const Tracked& t, const store::Run& run) {
  const json& actions = run.result.is_object() ? run.result.value("actions", json()) : json();
  std::vector<std::string> done;
  auto note = [&](const std::string& what, Status st) {
    done.push_back(st.ok() ? what : what + " failed: " + st.error().message());
  };
  if (!actions.is_object()) return "nothing (the run ended " + run.outcome + ")";
  // A controller that died while writing this result may have posted the
  // review or the comment already: those are looked for before posting
  // again. (Labels, the push, the pull request's edit and the status are
  // the same when written twice.)
  const bool resumed = t.outcome == kApplying;
  if (actions.contains("labels")) {
    // One by one: a label the forge refuses does not cost the others.
    for (const auto& label : actions["labels"]) {
      Status st = forge_.AddLabels(t.repo, t.number, {label.get<std::string>()});
      if (!st.ok()) note("label " + label.get<std::string>(), st);
    }
    done.push_back("labels added");
  }
  // A push and its pull request are the run's purpose: when either fails
  // the outcome says "failed: ", and a branch pushed for a pull request that
  // could not be opened is deleted again (nothing half-written).
  std::string failure;
  if (actions.contains("push")) {
    const json& p = actions["push"];
    std::string branch = p["branch"], commit = p["commit"];
    std::optional<forge::PullRequest> existing;
    std::optional<std::string> before;
    Status looked = Ok();
    if (actions.contains("pull")) {
      auto found = forge_.FindPull(t.repo, branch);
      auto sha = forge_.BranchSha(t.repo, branch);
      if (found && sha) {
        existing = *found;
        before = *sha;
      } else {
        looked = found ? Status(sha.error()) : Status(found.error());
      }
    }
    Status st = looked.ok() ? forge_.PushBranch(t.repo, branch, p.value("source", ""), commit, true)
                            : looked;
    if (!st.ok()) {
      failure = "pushing " + commit.substr(0, 12) + " to " + branch + ": " + st.error().message();
    } else {
      done.push_back("pushed " + commit.substr(0, 12) + " to " + branch);
    }
    if (st.ok() && actions.contains("pull")) {
      const json& pr = actions["pull"];
      if (existing) {
        note("updated pull request #" + std::to_string(existing->issue.number),
             forge_.EditPull(t.repo, existing->issue.number, pr["title"], pr["body"]));
      } else if (auto opened = forge_.OpenPull(t.repo, pr["title"], pr["body"], branch, pr["base"]);
                 opened) {
        done.push_back("opened pull request #" + std::to_string(opened->issue.number));
      } else {
        failure = "opening the pull request: " + opened.error().message();
        if (before) {
          // Not kiln's to delete: it was there before this run's push.
          failure +=
              " (branch " + branch + " existed before and is left at " + commit.substr(0, 12) + ")";
        } else {
          Status undo = forge_.DeleteBranch(t.repo, branch);
          failure += undo.ok() ? " (branch " + branch + " deleted again)"
                               : " (deleting branch " + branch +
                                     " failed too: " + undo.error().message() + ")";
        }
      }
    }
  }
  if (actions.contains("review")) {
    const json& r = actions["review"];
    forge::Review review;
    review.verdict = r["verdict"];
    review.body = r["body"];
    review.commit_sha = r["commit_sha"];
    for (const auto& c : r["comments"]) {
      // Decide checked them; one that does not read back is dropped alone.
      auto comment = forge::wire::ReviewCommentFrom(c);
      if (comment.ok()) {
        review.comments.push_back(std::move(*comment));
      } else {
        note("inline comment", comment.error());
      }
    }
    // No forge takes a verdict on one's own pull request (GitHub refuses it,
    // as the local forge does): on kiln's own, the verdict is said instead.
    auto pull = forge_.GetPull(t.repo, t.number);
    if (pull.ok() && pull->issue.author == forge_.actor() && review.verdict != "comment") {
      review.body = "**Verdict: " + review.verdict + "**\n\n" + review.body;
      review.verdict = "comment";
    }
    auto posted = resumed ? AlreadyPosted(t, review) : Result<bool>(false);
    if (!posted.ok()) note("looking for an earlier review", posted.error());
    if (posted.ok() && *posted) {
      done.push_back("review already posted");
    } else {
      auto added = forge_.AddReview(t.repo, t.number, review);
      note("review posted (" + review.verdict + ", " + std::to_string(review.comments.size()) +
               " inline comments)",
           added ? Ok() : Status(added.error()));
    }
  }
  if (actions.contains("status")) {
    const json& s = actions["status"];
    forge::CommitStatus status{s["context"], s["state"], s["description"], "", 0};
    note("status " + status.context + " " + status.state,
         forge_.SetStatus(t.repo, s["sha"], status));
  }
  if (actions.contains("comment")) {
    const std::string body = actions["comment"];
    auto posted = resumed ? AlreadyPosted(t, body) : Result<bool>(false);
    if (!posted.ok()) note("looking for an earlier comment", posted.error());
    if (posted.ok() && *posted) {
      done.push_back("comment already posted");
    } else {
      note("comment posted", Comment(t.repo, t.number, body));
    }
  }
  if (actions.contains("refused")) {
    done.push_back("refused: " + actions["refused"].dump());
  }
  if (actions.contains("nothing_to_propose")) {
    done.push_back("nothing to propose: " + actions["nothing_to_propose"].get<std::string>());
  }
  std::string out;
  for (const auto& d : done) out += (out.empty() ? "" : "; ") + d;
  if (!failure.empty())
    return std::string(kApplyFailed) + failure + (out.empty() ? "" : "; " + out);
  return out.empty() ? "nothing to write" : out;
}

Result<bool> Pipeline::AlreadyPosted(const Tracked& t, const forge::Review& review) {
  KILN_ASSIGN_OR_RETURN(auto reviews, forge_.Reviews(t.repo, t.number));
  for (const auto& r : reviews) {
    // The forge may put words before the body (GitHub: kiln's verdict on its
    // own pull request), never after.
    if (r.author == forge_.actor() && r.commit_sha == review.commit_sha &&
        r.body.ends_with(review.body)) {
      return true;
    }
  }
  return false;
}

Result<bool> Pipeline::AlreadyPosted(const Tracked& t, const std::string& comment) {
  KILN_ASSIGN_OR_RETURN(auto comments, forge_.Comments(t.repo, t.number));
  for (const auto& c : comments) {
    if (c.author == forge_.actor() && c.body == comment) return true;
  }
  return false;
}

Result<Pipeline::Followed> Pipeline::FollowRuns() {
  KILN_ASSIGN_OR_RETURN(auto tracked, state_.Unapplied());
  Followed n;
  for (auto t : tracked) {
    KILN_ASSIGN_OR_RETURN(store::Run run, s_.store->Get(t.run_id));
    if (store::IsTerminal(run.status)) {
      KILN_ASSIGN_OR_RETURN(bool leads, Lead());  // renewed, when due, before each result
      if (!leads) return n;
      KILN_TRY(state_.SetOutcome(t.run_id, std::string(kApplying)));
      t.outcome = Apply(t, run);
      KILN_TRY(state_.MarkApplied(t.run_id, t.outcome, NowMs()));
      if (t.comment_id != 0) (void)forge_.EditComment(t.repo, t.comment_id, ProgressText(t, run));
      spdlog::info("pipeline: run {} ({} {} #{}): {}", run.id, t.role, t.repo, t.number, t.outcome);
      ++n.applied;
      continue;
    }
    // The comment follows the run's status at once, and its use so far at
    // most every kLiveEveryMs: each edit is a forge API call.
    std::string state(store::ToString(run.status));
    const auto live = runner::LiveUsageOf(s_.live, run);
    std::string shown = state;
    if (live) shown += " " + std::to_string(live->turns) + " turns";
    if (shown == t.shown_state || t.comment_id == 0) continue;
    const int64_t now = NowMs();
    const bool same_status = t.shown_state.substr(0, t.shown_state.find(' ')) == state;
    if (same_status && now - last_live_edit_[t.run_id] < kLiveEveryMs) continue;
    if (forge_.EditComment(t.repo, t.comment_id, ProgressText(t, run)).ok()) {
      KILN_TRY(state_.SetShown(t.run_id, shown));
      last_live_edit_[t.run_id] = now;
      ++n.updated;
    }
  }
  std::erase_if(last_live_edit_, [&](const auto& kv) {
    return std::none_of(tracked.begin(), tracked.end(),
                        [&](const Tracked& t) { return t.run_id == kv.first; });
  });
  return n;
}

json Pipeline::Decide(const runner::Finished& f, sessionlog::Writer& log) {
  return roles::DecideAndRecord(f, log);
}

}  // namespace kiln::pipeline
