#include "controller/improve/proposal.h"

#include <map>
#include <set>

#include "base/strings.h"

namespace kiln::improve {
namespace {

using nlohmann::json;

Verdict Not(std::string outcome, std::string reason, std::vector<std::string> evidence = {}) {
  Verdict v;
  v.outcome = std::move(outcome);
  v.reason = std::move(reason);
  v.evidence = std::move(evidence);
  return v;
}

}  // namespace

std::string CompanionPath(const std::string& skills_dir, const std::string& role) {
  return skills_dir + "/" + role + "/SKILL.md";
}

Verdict CheckProposal(const ProposalInput& in) {
  const std::string role = in.core->name;
  const std::string allowed = CompanionPath(in.skills_dir, role);
  std::vector<std::string> cited;
  for (const json& id : in.result.value("evidence", json::array())) {
    if (id.is_string()) cited.push_back(id.get<std::string>());
  }
  if (!in.diff || in.diff->files.empty()) {
    return Not("nothing_to_propose", "the run changed no file", cited);
  }
  if (in.diff->truncated || in.diff->files_total > in.diff->files.size()) {
    return Not("refused", "the change is larger than the result limits; nothing is pushed", cited);
  }
  for (const git::FileChange& f : in.diff->files) {
    if (f.path != allowed) {
      return Not("refused",
                 "the improve run changed " + Quote(f.path) + ": only " + allowed + " (the " +
                     role + " role's companion skill) may change; nothing is pushed",
                 cited);
    }
    if (f.status == 'D' || f.new_mode != 0100644) {
      return Not("refused", allowed + " must stay a regular file; nothing is pushed", cited);
    }
  }

  // The evidence: signals the run was given, from at least two issues, pull
  // requests or runs.
  const json given = in.signals.value("signals", json::array());
  std::map<std::string, const json*> by_id;
  for (const json& s : given) {
    if (s.contains("id") && s["id"].is_string()) by_id[s["id"].get<std::string>()] = &s;
  }
  std::set<std::string> independent;
  for (const std::string& id : cited) {
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      return Not("refused",
                 "the result cites " + Quote(id) + ", which is not among the signals it was given",
                 cited);
    }
    const json& s = *it->second;
    independent.insert(s.contains("run_id") && s["run_id"].is_string()
                           ? "run " + s["run_id"].get<std::string>()
                           : "#" + std::to_string(s.value("number", int64_t{0})));
  }
  if (independent.size() < kMinSignals) {
    return Not("nothing_to_propose",
               "the change cites " + std::to_string(independent.size()) +
                   " independent signal(s) (distinct runs, issues or pull requests); " +
                   std::to_string(kMinSignals) + " are needed",
               cited);
  }

  auto text = in.read(allowed);
  if (!text) return Not("refused", "reading " + allowed + ": " + text.error().message(), cited);
  // A valid companion of the role: instructions only, no core field, within
  // the size limit.
  if (auto specialized = skill::Specialize(*in.core, {{allowed, *text}}); !specialized) {
    return Not("refused", specialized.error().message() + "; nothing is pushed", cited);
  }
  Verdict v;
  v.outcome = "proposed";
  v.evidence = std::move(cited);
  v.path = allowed;
  v.text = std::move(*text);
  return v;
}

}  // namespace kiln::improve
