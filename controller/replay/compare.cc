#include "controller/replay/compare.h"

#include <algorithm>
#include <string_view>

#include "controller/git/patch.h"

namespace kiln::replay {
namespace {

using nlohmann::json;
using sessionlog::Entry;

// What is compared of each record type, in this order. A field "a.b" is a
// member of a member; "body" holds JSON text, compared pretty-printed so that
// the diff shows the message that changed.
const std::map<std::string, std::vector<std::string>, std::less<>>& FieldsByType() {
  static const std::map<std::string, std::vector<std::string>, std::less<>> fields = {
      {"model.request", {"turn", "attempt", "provider", "model", "url", "body"}},
      {"model.response", {"turn", "attempt", "status", "stop_reason", "error"}},
      {"tool.call", {"turn", "tool", "call_id", "input"}},
      {"tool.result", {"tool", "call_id", "exit_status", "is_error", "truncated", "output"}},
      {"result", {"outcome", "result", "diff.patch", "diff.files"}},
      {"command_output", {"exit_code", "output"}},
      {"steer", {"from", "message"}},
  };
  return fields;
}

// The record's kind for comparing: its type, or a controller record's event.
std::string KindOf(const Entry& e) {
  if (e.type == "controller" && e.payload.is_object() &&
      e.payload.value("event", "") == "command_output") {
    return "command_output";
  }
  return e.type;
}

bool Runtime(std::string_view kind) {
  return kind == "model.request" || kind == "model.response" || kind == "tool.call" ||
         kind == "tool.result";
}

std::string Text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "(none)";
  return v.dump(2);
}

// The field's value in payload ("a.b": a member of a member); null when absent.
const json& Field(const json& payload, const std::string& field) {
  static const json kNone;
  std::string pointer = "/" + field;
  std::replace(pointer.begin(), pointer.end(), '.', '/');
  const json::json_pointer at(pointer);
  return payload.contains(at) ? payload.at(at) : kNone;
}

// The value as compared and shown: text as itself, a request body as
// pretty-printed JSON (so that a diff shows the message that changed).
std::string FieldText(const json& v, const std::string& field) {
  if (field == "body" && v.is_string()) {
    json parsed = json::parse(v.get<std::string>(), nullptr, false);
    if (!parsed.is_discarded()) return parsed.dump(2);
  }
  return Text(v);
}

// A one-line description of a record, for a record the other side lacks.
std::string Describe(const Entry& e) {
  std::string kind = KindOf(e);
  std::string out = kind;
  for (const char* key : {"turn", "tool", "call_id", "outcome"}) {
    if (e.payload.is_object() && e.payload.contains(key)) {
      out += std::string(" ") + key + "=" + Text(e.payload.at(key));
    }
  }
  return out;
}

class Comparer {
 public:
  Comparer(const Normaliser& n, Comparison* out) : n_(n), out_(out) {
    out_->matched.assign(n.rules().size(), 0);
    out_->hid.assign(n.rules().size(), 0);
  }

  void Pair(const Entry& a, const Entry& b) {
    std::string kind = KindOf(a);
    ++out_->compared[kind];
    if (KindOf(b) != kind) {
      Add(a.seq, static_cast<int64_t>(b.seq), kind, "record", Describe(a), Describe(b));
      return;
    }
    auto fields = FieldsByType().find(kind);
    if (fields == FieldsByType().end()) return;
    for (const std::string& field : fields->second) {
      const json &va = Field(a.payload, field), &vb = Field(b.payload, field);
      if (va == vb) continue;  // the common case, without rendering either
      std::string x = FieldText(va, field), y = FieldText(vb, field);
      if (x == y) continue;
      std::vector<uint64_t> hx, hy;
      std::string nx = n_.Apply(x, &hx), ny = n_.Apply(y, &hy);
      for (size_t i = 0; i < hx.size(); ++i) {
        out_->matched[i] += (hx[i] > 0) + (hy[i] > 0);
        if (nx == ny && (hx[i] > 0 || hy[i] > 0)) ++out_->hid[i];
      }
      if (nx == ny) continue;
      Add(a.seq, static_cast<int64_t>(b.seq), kind, field, std::move(nx), std::move(ny));
      return;  // one divergence per record: its first field that differs
    }
  }

  void Missing(const Entry& a) {
    ++out_->compared[KindOf(a)];
    Add(a.seq, -1, KindOf(a), "record", Describe(a), "(nothing: the replay has no such record)");
  }

  void Extra(uint64_t after_seq, const Entry& b) {
    Add(after_seq, static_cast<int64_t>(b.seq), KindOf(b), "record",
        "(nothing: the original has no such record)", Describe(b));
  }

 private:
  void Add(uint64_t seq, int64_t replay_seq, std::string type, std::string field,
           std::string expected, std::string found) {
    Divergence d{
        seq, replay_seq, std::move(type), std::move(field), std::move(expected), std::move(found),
        ""};
    auto diff = git::UnifiedDiff(d.expected + "\n", d.found + "\n", "expected", "found");
    d.diff = diff ? *diff : "";
    out_->divergences.push_back(std::move(d));
  }

  const Normaliser& n_;
  Comparison* out_;
};

// The records compared, split into the runtime's stream, the steering
// (recorded when the controller sent it: its place among the runtime's
// records is a matter of timing) and the run's end.
struct Streams {
  std::vector<const Entry*> runtime, steering;
  std::map<std::string, const Entry*> end;  // result, command_output: the last of each
};

Streams Split(const sessionlog::Entries& log) {
  Streams s;
  for (const Entry& e : log.records) {
    std::string kind = KindOf(e);
    if (Runtime(kind)) {
      s.runtime.push_back(&e);
    } else if (kind == "steer") {
      s.steering.push_back(&e);
    } else if (kind == "result" || kind == "command_output") {
      s.end[kind] = &e;
    }
  }
  return s;
}

// Pairs two streams in order; what one side has beyond the other is missing
// or extra.
void PairStreams(Comparer& c, const std::vector<const Entry*>& a,
                 const std::vector<const Entry*>& b) {
  size_t common = std::min(a.size(), b.size());
  for (size_t i = 0; i < common; ++i) c.Pair(*a[i], *b[i]);
  for (size_t i = common; i < a.size(); ++i) c.Missing(*a[i]);
  uint64_t last = a.empty() ? 0 : a.back()->seq;
  for (size_t i = common; i < b.size(); ++i) c.Extra(last, *b[i]);
}

}  // namespace

Comparison Compare(const sessionlog::Entries& original, const sessionlog::Entries& replay,
                   const Normaliser& normaliser) {
  Comparison out;
  Comparer c(normaliser, &out);
  Streams a = Split(original), b = Split(replay);
  PairStreams(c, a.runtime, b.runtime);
  PairStreams(c, a.steering, b.steering);
  for (const auto& [kind, entry] : a.end) {
    auto it = b.end.find(kind);
    if (it == b.end.end()) {
      c.Missing(*entry);
    } else {
      c.Pair(*entry, *it->second);
    }
  }
  std::stable_sort(out.divergences.begin(), out.divergences.end(),
                   [](const Divergence& x, const Divergence& y) { return x.seq < y.seq; });
  return out;
}

}  // namespace kiln::replay
