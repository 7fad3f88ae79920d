// The replay's report, as JSON (docs/replay.md has the format) and as text.
#include <iomanip>
#include <sstream>

#include "base/strings.h"
#include "controller/replay/replay.h"

namespace kiln::replay {

using nlohmann::json;

namespace {

json DivergenceJson(const Divergence& d) {
  return {{"seq", d.seq},           {"replay_seq", d.replay_seq < 0 ? json() : json(d.replay_seq)},
          {"type", d.type},         {"field", d.field},
          {"expected", d.expected}, {"found", d.found},
          {"diff", d.diff}};
}

}  // namespace

json Report::ToJson() const {
  auto side = [](const Side& s) {
    json j = {{"run_id", s.run_id},
              {"log", s.log},
              {"head", s.head},
              {"status", s.status},
              {"outcome", s.outcome}};
    if (!s.outcomes.is_null()) j["outcomes"] = s.outcomes;
    return j;
  };
  json j = {{"mode", mode},
            {"verdict", verdict},
            {"exit_code", exit_code},
            {"verified", findings.empty()},
            {"forced", forced},
            {"original", side(original)},
            {"replay", side(replay)},
            {"image",
             {{"recorded", image_recorded},
              {"used", image_used},
              {"overridden", !image_used.empty() && image_used != image_recorded}}},
            {"model_requests_answered", model_requests},
            {"compared", comparison.compared}};
  if (!error.empty()) j["error"] = error;
  if (!findings.empty()) j["findings"] = findings;
  const auto& d = comparison.divergences;
  j["first_divergence"] = d.empty() ? json() : DivergenceJson(d.front());
  j["later_divergences"] = d.empty() ? 0 : d.size() - 1;
  json later = json::array();
  for (size_t i = 1; i < d.size(); ++i) {
    later.push_back({{"seq", d[i].seq}, {"type", d[i].type}, {"field", d[i].field}});
  }
  j["later"] = later;
  json rules_json = json::array();
  for (size_t i = 0; i < rules.size(); ++i) {
    rules_json.push_back({{"name", rules[i].name},
                          {"pattern", rules[i].pattern},
                          {"replace", rules[i].replace},
                          {"source", rules[i].source},
                          {"matched", i < comparison.matched.size() ? comparison.matched[i] : 0},
                          {"hid", i < comparison.hid.size() ? comparison.hid[i] : 0}});
  }
  j["normalisation"] = rules_json;
  return j;
}

std::string Report::ToText() const {
  std::ostringstream o;
  o << "original  run " << (original.run_id.empty() ? "?" : original.run_id) << ", log "
    << original.log << (original.head.empty() ? "" : ", head " + original.head) << "\n";
  if (forced) {
    o << "          the log does NOT verify (" << findings.size()
      << " finding(s)); replayed because of --force:\n";
    for (const auto& f : findings) o << "            " << f << "\n";
  }
  if (!replay.run_id.empty()) {
    o << "replay    run " << replay.run_id << ", log " << replay.log << ": " << replay.status
      << (replay.outcome.empty() ? "" : " (" + replay.outcome + ")") << "\n";
  }
  if (!image_used.empty()) {
    o << "image     " << image_used
      << (image_used == image_recorded ? " (as recorded)"
                                       : " (--image; the run recorded " + image_recorded + ")")
      << "\n";
  }
  if (!comparison.compared.empty()) {
    o << "compared ";
    for (const auto& [type, n] : comparison.compared) o << " " << n << " " << type;
    o << "; " << model_requests << " model request(s) answered from the log\n";
  }
  for (size_t i = 0; i < rules.size() && i < comparison.hid.size(); ++i) {
    if (comparison.hid[i] == 0) continue;
    o << "hidden    " << comparison.hid[i] << " difference(s) by rule " << rules[i].name << " ("
      << rules[i].source << ": " << rules[i].pattern << " -> " << rules[i].replace << ")\n";
  }
  if (!error.empty()) o << verdict << ": " << error << "\n";
  if (original.outcomes.is_object() && replay.outcomes.is_object()) {
    // A long value (the result) is cut; --json has it whole.
    auto text = [](const json& v) {
      return Ellipsize(v.is_string() ? v.get<std::string>() : v.dump(), 60);
    };
    o << std::left << std::setw(15) << "" << std::setw(25) << "original"
      << "rerun\n";
    json keys = original.outcomes;  // and those of the re-run's alone (verify_run)
    keys.update(replay.outcomes);
    for (const auto& [key, _] : keys.items()) {
      o << std::setw(15) << key << std::setw(25) << text(original.outcomes.value(key, json()))
        << text(replay.outcomes.value(key, json())) << "\n";
    }
  }
  const auto& d = comparison.divergences;
  if (verdict == "identical") o << "identical\n";
  if (!d.empty()) {
    const Divergence& f = d.front();
    o << "diverged at seq " << f.seq << " (" << f.type << "): " << f.field << " differs";
    if (f.replay_seq >= 0) o << " (the replay's seq " << f.replay_seq << ")";
    o << "\n" << f.diff;
    if (!f.diff.empty() && f.diff.back() != '\n') o << "\n";
    o << d.size() - 1 << " later divergence(s)";
    for (size_t i = 1; i < d.size() && i < 11; ++i) {
      o << (i == 1 ? ": " : ", ") << "seq " << d[i].seq << " " << d[i].type << " " << d[i].field;
    }
    o << (d.size() > 11 ? ", ...\n" : "\n");
  }
  if (!forced) return o.str();
  std::string out, line;
  std::istringstream in(o.str());
  while (std::getline(in, line)) out += "UNVERIFIED: " + line + "\n";
  return out;
}

}  // namespace kiln::replay
