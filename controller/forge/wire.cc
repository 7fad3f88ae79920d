#include "controller/forge/wire.h"

#include <cstdint>
#include <ctime>
#include <optional>

#include "controller/forge/validate.h"

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

// j[field] when it is an integer (1.0 is not); nullopt when missing or null.
Result<std::optional<int64_t>> OptInt(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX)) {
    return Error::Invalid("field " + Quote(field) + " must be an integer");
  }
  return std::optional<int64_t>(it->get<int64_t>());
}

}  // namespace

Result<std::optional<std::string>> OptString(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return Error::Invalid("field " + Quote(field) + " must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

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

json ReviewCommentJson(const ReviewComment& c) {
  const bool range = c.start_line != 0;
  return {{"path", c.path},
          {"line", c.line},
          {"side", c.side},
          {"start_line", range ? json(c.start_line) : json(nullptr)},
          {"start_side", range ? json(c.start_side) : json(nullptr)},
          {"severity", c.severity},
          {"body", c.body}};
}

Result<ReviewComment> ReviewCommentFrom(const json& j) {
  if (!j.is_object()) return Error::Invalid("an inline comment must be an object");
  ReviewComment c;
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> path, OptString(j, "path"));
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> line, OptInt(j, "line"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> side, OptString(j, "side"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> severity, OptString(j, "severity"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> body, OptString(j, "body"));
  KILN_ASSIGN_OR_RETURN(std::optional<int64_t> start_line, OptInt(j, "start_line"));
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> start_side, OptString(j, "start_side"));
  if (!path) return Error::Invalid("field 'path' is missing");
  if (!line) return Error::Invalid("field 'line' must be an integer");
  if (!body) return Error::Invalid("field 'body' is missing");
  c.path = *path;
  c.line = *line;
  c.side = side.value_or("RIGHT");
  c.severity = severity.value_or("nit");
  c.body = *body;
  if (start_line) {
    // 0 would read as "no range" and hide a mistake: a given start_line is a line.
    if (*start_line < 1) {
      return Error::Invalid("field 'start_line' must be 1 or more, not " +
                            std::to_string(*start_line));
    }
    c.start_line = *start_line;
    c.start_side = start_side.value_or(c.side);
  } else if (start_side) {
    c.start_side = *start_side;  // refused below: a side without a line
  }
  Status range = validate::CommentRange(c.start_line, c.start_side, c.line, c.side);
  if (!range.ok()) return range.error().Wrap(Anchor(c));
  return c;
}

std::string Anchor(const ReviewComment& c) {
  std::string at = c.path + ":";
  if (c.start_line != 0 && c.start_side != c.side) {
    at += std::to_string(c.start_line) + " (" + c.start_side + ") to ";
  } else if (c.start_line != 0) {
    at += std::to_string(c.start_line) + "-";
  }
  return at + std::to_string(c.line) + " (" + c.side + ")";
}

json ReviewJson(const Review& r) {
  json comments = json::array();
  for (const auto& c : r.comments) comments.push_back(ReviewCommentJson(c));
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
