#include "controller/improve/signals.h"

#include <map>
#include <set>

#include "base/strings.h"
#include "controller/forge/wire.h"
#include "controller/pipeline/roles.h"

namespace kiln::improve {
namespace {

using nlohmann::json;

class Collector {
 public:
  Collector(const Window& w, store::Store& store, pipeline::State& state, forge::Forge& forge)
      : w_(w), store_(store), state_(state), forge_(forge) {}

  Result<json> Collect(const std::vector<forge::Event>& history) {
    KILN_ASSIGN_OR_RETURN(std::vector<pipeline::Tracked> tracked, state_.ForRepo(w_.repo));
    for (pipeline::Tracked& t : tracked) tracked_[t.number].push_back(std::move(t));
    for (const forge::Event& e : history) {
      Learn(e);
      if (e.received_ms < w_.from_ms || e.received_ms > w_.to_ms) continue;
      KILN_TRY(Consider(e));
    }
    KILN_ASSIGN_OR_RETURN(json runs, Runs());
    return json{{"version", 1},
                {"repo", w_.repo},
                {"role", w_.role},
                {"window",
                 {{"from_ms", w_.from_ms},
                  {"to_ms", w_.to_ms},
                  {"from", forge::wire::Time(w_.from_ms)},
                  {"to", forge::wire::Time(w_.to_ms)}}},
                {"runs", std::move(runs)},
                {"signals", std::move(signals_)}};
  }

 private:
  // What the history says of kiln's pull requests: their branches, the
  // heads they had, the humans who pushed to them, kiln's reviews.
  void Learn(const forge::Event& e) {
    const json& p = e.payload;
    if (e.kind == "pull.opened" || e.kind == "pull.synchronized") {
      std::string branch = p.value("head_branch", "");
      if (!branch.empty()) branch_[e.number] = branch;
      std::string sha = p.value("head_sha", "");
      if (!sha.empty()) pull_of_sha_[sha] = e.number;
    } else if (e.kind == "push" && e.actor != w_.bot) {
      human_pushes_[p.value("branch", "")]++;
    } else if (e.kind == "review.submitted" && e.actor == w_.bot) {
      if (!kiln_reviewed_.count(e.number)) kiln_reviewed_[e.number] = e.received_ms;
      kiln_reviews_.insert(p.value("review_id", int64_t{0}));
    } else if (e.kind == "comment.created" && e.actor == w_.bot && p.value("inline", false)) {
      kiln_inline_.insert(p.value("comment_id", int64_t{0}));  // GitHub's review comments
    }
  }

  // The kind of kiln branch a pull request has ("spec", "implement"), or "".
  std::string KilnPull(int64_t number) const {
    auto it = branch_.find(number);
    if (it == branch_.end()) return "";
    for (const char* kind : {"spec", "implement"}) {
      if (pipeline::roles::IssueOfBranch(it->second, kind) > 0) return kind;
    }
    return "";
  }

  // The latest run of role on number whose result reached the forge before t.
  const pipeline::Tracked* AppliedBefore(int64_t number, const std::string& role, int64_t t) {
    const pipeline::Tracked* found = nullptr;
    auto it = tracked_.find(number);
    if (it == tracked_.end()) return nullptr;
    for (const pipeline::Tracked& r : it->second) {
      if (r.role == role && r.applied_ms > 0 && r.applied_ms <= t) found = &r;
    }
    return found;
  }

  // The run a pull request on kiln's branch came from: the latest of role for
  // the branch's issue.
  const pipeline::Tracked* RunOfPull(int64_t pull, const std::string& role, int64_t t) {
    auto it = branch_.find(pull);
    if (it == branch_.end()) return nullptr;
    return AppliedBefore(pipeline::roles::IssueOfBranch(it->second, role), role, t);
  }

  Result<bool> Trusted(const std::string& user) {
    auto it = trusted_.find(user);
    if (it != trusted_.end()) return it->second;
    KILN_ASSIGN_OR_RETURN(bool t, forge_.IsTrusted(w_.repo, user));
    trusted_[user] = t;
    return t;
  }

  // A signal for event e: its id, kind, where and who.
  Result<json> Signal(const forge::Event& e, const std::string& kind,
                      const pipeline::Tracked* run) {
    KILN_ASSIGN_OR_RETURN(bool trusted, Trusted(e.actor));
    json s = {{"id", "event:" + std::to_string(e.seq)},
              {"kind", kind},
              {"number", e.number},
              {"actor", e.actor},
              {"trusted", trusted},
              {"at_ms", e.received_ms},
              {"at", forge::wire::Time(e.received_ms)}};
    if (run) s["run_id"] = run->run_id;
    return s;
  }

  // Text someone wrote: as it is from a trusted user, in an untrusted block
  // from anyone else.
  static std::string Text(const json& signal, const std::string& what, const std::string& text) {
    if (signal["trusted"].get<bool>()) return text;
    return pipeline::roles::Untrusted(what + " by " + signal["actor"].get<std::string>() + " on #" +
                                          std::to_string(signal["number"].get<int64_t>()),
                                      text);
  }

  Status Add(Result<json> signal) {
    if (!signal) return std::move(signal).error();
    signals_.push_back(std::move(*signal));
    return Ok();
  }

  // A human's comment (not a /kiln command) after run.
  Status Comment(const forge::Event& e, const pipeline::Tracked* run) {
    std::string body = e.payload.value("body", "");
    if (!run || e.actor == w_.bot || StartsWith(Trim(body), "/kiln")) return Ok();
    KILN_ASSIGN_OR_RETURN(json s, Signal(e, "comment", run));
    s["body"] = Text(s, "a comment", body);
    signals_.push_back(std::move(s));
    return Ok();
  }

  // A human's review on a pull request, with its body from the forge.
  Status HumanReview(const forge::Event& e, const std::string& kind, const pipeline::Tracked* run) {
    KILN_ASSIGN_OR_RETURN(json s, Signal(e, kind, run));
    s["verdict"] = e.payload.value("verdict", "");
    KILN_ASSIGN_OR_RETURN(std::vector<forge::Review> reviews, forge_.Reviews(w_.repo, e.number));
    for (const forge::Review& r : reviews) {
      if (r.id != e.payload.value("review_id", int64_t{0})) continue;
      s["body"] = Text(s, "a review", r.body);
      json comments = json::array();
      for (const forge::ReviewComment& c : r.comments) {
        comments.push_back(
            {{"path", c.path}, {"line", c.line}, {"body", Text(s, "a review comment", c.body)}});
      }
      if (!comments.empty()) s["comments"] = std::move(comments);
    }
    signals_.push_back(std::move(s));
    return Ok();
  }

  Status Consider(const forge::Event& e) {
    const json& p = e.payload;
    const bool human = e.actor != w_.bot;
    const std::string pull_kind = KilnPull(e.number);
    const bool is_pull = branch_.count(e.number) > 0;
    if (w_.role == "triage" && !is_pull) {
      const pipeline::Tracked* run = AppliedBefore(e.number, "triage", e.received_ms);
      if (!run || !human) return Ok();
      if (e.kind == "issue.labeled" || e.kind == "issue.unlabeled") {
        std::string label = p.value("label", "");
        if (label == "triaged" || pipeline::roles::IsReserved(label)) return Ok();
        bool added = e.kind == "issue.labeled";
        std::string kind = label == "duplicate" ? (added ? "duplicate_missed" : "duplicate_removed")
                                                : (added ? "label_added" : "label_removed");
        KILN_ASSIGN_OR_RETURN(json s, Signal(e, kind, run));
        s["label"] = label;
        signals_.push_back(std::move(s));
      } else if (e.kind == "issue.reopened") {
        return Add(Signal(e, "issue_reopened", run));
      } else if (e.kind == "comment.created") {
        return Comment(e, run);
      }
      return Ok();
    }
    if ((w_.role == "spec" || w_.role == "implement") && pull_kind == w_.role && human) {
      const pipeline::Tracked* run = RunOfPull(e.number, w_.role, e.received_ms);
      if (e.kind == "pull.closed") {
        if (!p.value("merged", false)) return Add(Signal(e, w_.role + "_closed_unmerged", run));
        int pushes = human_pushes_[branch_[e.number]];
        if (pushes == 0) return Ok();
        KILN_ASSIGN_OR_RETURN(json s, Signal(e, "merged_after_human_commits", run));
        s["human_pushes"] = pushes;
        signals_.push_back(std::move(s));
      } else if (e.kind == "push" && w_.role == "spec") {
        return Add(Signal(e, "spec_edited", run));
      } else if (e.kind == "review.submitted" && p.value("verdict", "") == "request_changes") {
        return HumanReview(e, "changes_requested", run);
      } else if (e.kind == "comment.created") {
        return Comment(e, run);
      }
      return Ok();
    }
    if (w_.role == "implement") {
      if (e.kind == "status.created" && p.value("context", "") == "kiln/verify" &&
          p.value("state", "") == "failure") {
        auto pull = pull_of_sha_.find(p.value("sha", ""));
        if (pull == pull_of_sha_.end() || KilnPull(pull->second) != "implement") return Ok();
        KILN_ASSIGN_OR_RETURN(json s, Signal(e, "verify_failed",
                                             RunOfPull(pull->second, "implement", e.received_ms)));
        s["number"] = pull->second;
        s["description"] = p.value("description", "");
        signals_.push_back(std::move(s));
      } else if (e.kind == "issue.labeled" && !human && p.value("label", "") == "blocked") {
        return Add(Signal(e, "implement_blocked", nullptr));
      }
      return Ok();
    }
    if (w_.role == "review" && is_pull && human) {
      auto reviewed = kiln_reviewed_.find(e.number);
      if (reviewed == kiln_reviewed_.end() || reviewed->second > e.received_ms) return Ok();
      const pipeline::Tracked* run = AppliedBefore(e.number, "review", e.received_ms);
      if (e.kind == "review.submitted") return HumanReview(e, "human_review", run);
      if (e.kind == "comment.created" && kiln_inline_.count(p.value("in_reply_to", int64_t{0}))) {
        // An answer in the thread of one of kiln's inline comments.
        KILN_ASSIGN_OR_RETURN(json s, Signal(e, "review_comment_answered", run));
        s["in_reply_to"] = p["in_reply_to"];
        if (p.contains("path")) s["path"] = p["path"];
        if (p.contains("line")) s["line"] = p["line"];
        s["body"] = Text(s, "a reply", p.value("body", ""));
        signals_.push_back(std::move(s));
        return Ok();
      }
      if (e.kind == "comment.created") return Comment(e, run);
      if (e.kind == "review_thread.resolved") {
        json kilns = json::array();
        for (const json& id : p.value("comment_ids", json::array())) {
          if (id.is_number_integer() && kiln_inline_.count(id.get<int64_t>())) kilns.push_back(id);
        }
        if (kilns.empty()) return Ok();
        KILN_ASSIGN_OR_RETURN(json s, Signal(e, "review_comment_resolved", run));
        s["comment_ids"] = std::move(kilns);
        signals_.push_back(std::move(s));
      } else if (e.kind == "review.dismissed" &&
                 kiln_reviews_.count(p.value("review_id", int64_t{0}))) {
        KILN_ASSIGN_OR_RETURN(json s, Signal(e, "review_dismissed", run));
        s["review_id"] = p["review_id"];
        signals_.push_back(std::move(s));
      }
    }
    return Ok();
  }

  // The role's runs in the window: counted by status, and a signal for each
  // that ended badly or had part of its result refused.
  Result<json> Runs() {
    json by_status = json::object();
    uint64_t total = 0;
    for (const auto& [number, runs] : tracked_) {
      for (const pipeline::Tracked& t : runs) {
        if (t.role != w_.role) continue;
        KILN_ASSIGN_OR_RETURN(store::Run run, store_.Get(t.run_id));
        if (run.created_ms < w_.from_ms || run.created_ms > w_.to_ms) continue;
        ++total;
        std::string status(store::ToString(run.status));
        by_status[status] = by_status.value(status, 0) + 1;
        json s = {{"id", "run:" + run.id},
                  {"number", number},
                  {"run_id", run.id},
                  {"at_ms", run.created_ms},
                  {"at", forge::wire::Time(run.created_ms)}};
        if (run.status != store::Status::kSucceeded && store::IsTerminal(run.status)) {
          s["kind"] = "run_ended";
          s["status"] = status;
          s["outcome"] = run.outcome;
          if (!run.error.empty()) s["error"] = run.error;
          signals_.push_back(s);
        }
        const json refused =
            run.result.is_object()
                ? run.result.value("actions", json::object()).value("refused", json())
                : json();
        if (refused.is_array() && !refused.empty()) {
          s["kind"] = "result_refused";
          s["id"] = "run:" + run.id + ":refused";
          s["refusals"] = refused;
          signals_.push_back(std::move(s));
        }
      }
    }
    return json{{"total", total}, {"by_status", std::move(by_status)}};
  }

  const Window& w_;
  store::Store& store_;
  pipeline::State& state_;
  forge::Forge& forge_;
  std::map<int64_t, std::vector<pipeline::Tracked>> tracked_;  // by issue or pull number
  std::map<std::string, bool> trusted_;
  std::map<int64_t, std::string> branch_;       // pull number -> head branch
  std::map<std::string, int64_t> pull_of_sha_;  // a head a pull request had -> its number
  std::map<std::string, int> human_pushes_;     // branch -> pushes by people
  std::map<int64_t, int64_t> kiln_reviewed_;    // pull number -> kiln's first review
  std::set<int64_t> kiln_reviews_;              // kiln's review ids
  std::set<int64_t> kiln_inline_;               // kiln's inline comment ids (GitHub)
  json signals_ = json::array();
};

}  // namespace

Result<json> CollectSignals(const Window& w, store::Store& store, pipeline::State& state,
                            forge::Inbox& inbox, forge::Forge& forge) {
  if (w.from_ms > w.to_ms) return Error::Invalid("the window ends before it starts");
  KILN_ASSIGN_OR_RETURN(std::vector<forge::Event> history, inbox.History(w.repo, w.to_ms));
  return Collector(w, store, state, forge).Collect(history);
}

}  // namespace kiln::improve
