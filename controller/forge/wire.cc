// The forge's JSON shapes (wire.h): times, what the API and the store read
// back, inline review comments and events. GitHub's objects are in
// wire_objects.cc.
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
