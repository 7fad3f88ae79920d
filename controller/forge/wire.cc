#include "controller/forge/wire.h"

#include <ctime>

namespace kiln::forge::wire {

using nlohmann::json;

std::string Time(int64_t ms) {
  if (ms == 0) return "";
  time_t t = static_cast<time_t>(ms / 1000);
  tm parts;
  gmtime_r(&t, &parts);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return buf;
}

namespace {

json User(const std::string& login) { return {{"login", login}}; }

json Labels(const std::vector<std::string>& labels) {
  json a = json::array();
  for (const auto& l : labels) a.push_back({{"name", l}});
  return a;
}

}  // namespace

json RepoJson(const LocalRepo& r) {
  const std::string& name = r.info.name;
  size_t slash = name.find('/');
  return {{"full_name", name},
          {"owner", User(name.substr(0, slash))},
          {"name", slash == std::string::npos ? name : name.substr(slash + 1)},
          {"clone_url", r.info.clone_url},
          {"default_branch", r.info.default_branch},
          {"labels", r.info.labels},
          {"maintainers", r.maintainers},
          {"created_at", Time(r.created_ms)}};
}

json IssueJson(const Issue& i) {
  json j = {{"repo", i.repo},
            {"number", i.number},
            {"title", i.title},
            {"body", i.body},
            {"user", User(i.author)},
            {"state", i.state},
            {"labels", Labels(i.labels)},
            {"created_at", Time(i.created_ms)},
            {"updated_at", Time(i.updated_ms)}};
  if (i.is_pull) {
    j["pull_request"] = {
        {"url", "/api/v1/repos/" + i.repo + "/pulls/" + std::to_string(i.number)},
        {"diff_url", "/api/v1/repos/" + i.repo + "/pulls/" + std::to_string(i.number) + "/diff"}};
  }
  return j;
}

json PullJson(const PullRequest& p) {
  json j = IssueJson(p.issue);
  j.erase("pull_request");
  j["head"] = {{"ref", p.head_branch}, {"sha", p.head_sha}};
  j["base"] = {{"ref", p.base_branch}, {"sha", p.base_sha}};
  j["merged"] = p.issue.state == "merged";
  j["merge_commit_sha"] = p.merged_sha.empty() ? json(nullptr) : json(p.merged_sha);
  return j;
}

json CommentJson(const Comment& c) {
  return {{"id", c.id},
          {"user", User(c.author)},
          {"body", c.body},
          {"created_at", Time(c.created_ms)},
          {"updated_at", Time(c.updated_ms)}};
}

std::string ReviewState(const std::string& verdict) {
  if (verdict == "approve") return "APPROVED";
  if (verdict == "request_changes") return "CHANGES_REQUESTED";
  return "COMMENTED";
}

json ReviewJson(const Review& r) {
  json comments = json::array();
  for (const auto& c : r.comments) {
    comments.push_back({{"path", c.path},
                        {"line", c.line},
                        {"side", c.side},
                        {"severity", c.severity},
                        {"body", c.body}});
  }
  return {{"id", r.id},           {"user", User(r.author)},
          {"verdict", r.verdict}, {"state", ReviewState(r.verdict)},
          {"body", r.body},       {"commit_id", r.commit_sha},
          {"comments", comments}, {"submitted_at", Time(r.created_ms)}};
}

json StatusJson(const CommitStatus& s) {
  return {{"context", s.context},
          {"state", s.state},
          {"description", s.description},
          {"target_url", s.target_url},
          {"created_at", Time(s.created_ms)}};
}

json EventJson(const InboxEntry& entry) {
  const Event& e = entry.event;
  return {{"seq", e.seq},
          {"delivery", e.delivery},
          {"source", e.source},
          {"kind", e.kind},
          {"repo", e.repo},
          {"number", e.number},
          {"actor", e.actor},
          {"payload", e.payload},
          {"received_at", Time(e.received_ms)},
          {"processed_at", Time(entry.processed_ms)},
          {"outcome", entry.outcome}};
}

}  // namespace kiln::forge::wire
