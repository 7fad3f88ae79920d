#include "tests/modelserver/player.h"

#include <algorithm>
#include <cctype>

#include "base/digest.h"
#include "base/result.h"

namespace kiln::modelserver {
namespace {

using nlohmann::json;

bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

void AddNote(std::vector<std::string>* notes, std::string note) {
  if (std::find(notes->begin(), notes->end(), note) == notes->end()) {
    notes->push_back(std::move(note));
  }
}

std::string Fill(const std::string& s, const std::map<std::string, std::string>& values,
                 const std::map<std::string, std::string>& declared,
                 std::vector<std::string>* notes) {
  std::string out;
  size_t from = 0;
  for (size_t open; (open = s.find("{{", from)) != std::string::npos;) {
    size_t end = open + 2;
    while (end < s.size() && IsNameChar(s[end])) ++end;
    bool placeholder = end > open + 2 && s.compare(end, 2, "}}") == 0;
    if (!placeholder) {  // "{{ x }}" and the like are text; "{{{x}}}" has one at open + 1
      out.append(s, from, open + 1 - from);
      from = open + 1;
      continue;
    }
    std::string name = s.substr(open + 2, end - open - 2);
    out.append(s, from, open - from);
    from = end + 2;
    if (auto v = values.find(name); v != values.end()) {
      out += v->second;
      continue;
    }
    out.append(s, open, from - open);
    auto d = declared.find(name);
    AddNote(notes, d == declared.end()
                       ? "unknown placeholder {{" + name + "}} left verbatim"
                       : "placeholder {{" + name + "}} left verbatim: no digits after " +
                             Quote(d->second) + " in the first user message");
  }
  out.append(s, from);
  return out;
}

void FillJson(json& j, const std::map<std::string, std::string>& values,
              const std::map<std::string, std::string>& declared, std::vector<std::string>* notes) {
  if (j.is_string()) {
    j = Fill(j.get<std::string>(), values, declared, notes);
  } else if (j.is_structured()) {
    for (auto& item : j) FillJson(item, values, declared, notes);
  }
}

}  // namespace

std::optional<std::string> CaptureDigits(const std::string& text, const std::string& marker) {
  if (marker.empty()) return std::nullopt;
  for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + 1)) {
    size_t begin = at + marker.size(), end = begin;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    if (end > begin) return text.substr(begin, end - begin);
  }
  return std::nullopt;
}

void Substitute(Reply& r, const std::map<std::string, std::string>& values,
                const std::map<std::string, std::string>& declared,
                std::vector<std::string>* notes) {
  r.text = Fill(r.text, values, declared, notes);
  for (auto& c : r.tool_calls) {
    FillJson(c.input, values, declared, notes);
    if (c.raw_arguments) *c.raw_arguments = Fill(*c.raw_arguments, values, declared, notes);
  }
}

std::optional<Reply> Player::Advance(const Sequence& seq, Cursor& c,
                                     const std::vector<ToolResultSeen>& last, std::string* step) {
  c.rule_hits.resize(seq.rules.size());
  for (size_t i = 0; i < seq.rules.size(); ++i) {
    const Rule& r = seq.rules[i];
    if (r.times >= 0 && c.rule_hits[i] >= r.times) continue;
    for (const auto& tr : last) {
      if (!r.tool.empty() && tr.tool != r.tool) continue;
      if (r.is_error && *r.is_error != tr.is_error) continue;
      if (tr.content.find(r.contains) == std::string::npos) continue;
      ++c.rule_hits[i];
      *step = "rules[" + std::to_string(i) + "]";
      return r.reply;
    }
  }
  while (c.index < seq.replies.size()) {
    const Reply& r = seq.replies[c.index];
    if (r.repeat < 0 || c.used < r.repeat) {
      ++c.used;
      *step = "replies[" + std::to_string(c.index) + "]";
      return r;
    }
    ++c.index;
    c.used = 0;
  }
  if (seq.fallback) {
    *step = "default";
    return seq.fallback;
  }
  return std::nullopt;
}

Served Player::Next(const RequestSeen& req) {
  Served out;
  const Conversation* conv = nullptr;
  for (size_t i = 0; i < script_.conversations.size() && !conv; ++i) {
    const std::string& m = script_.conversations[i].match;
    if (req.system.find(m) != std::string::npos || req.first_user.find(m) != std::string::npos) {
      conv = &script_.conversations[i];
      out.conversation = i;
    }
  }
  std::string prefix;
  if (conv) {
    prefix = "conversations[" + std::to_string(*out.conversation) + "].";
    out.cursor = Sha256Hex(req.first_user);
  }
  std::string step;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Cursor& c = conv ? runs_[{*out.conversation, out.cursor}] : top_;
    out.reply = Advance(conv ? static_cast<const Sequence&>(*conv) : script_, c, req.last, &step);
  }
  out.step = prefix + (out.reply ? step : "exhausted");
  if (conv && out.reply) {
    std::map<std::string, std::string> values;
    for (const auto& [name, marker] : conv->capture) {
      if (auto v = CaptureDigits(req.first_user, marker)) values[name] = *v;
    }
    Substitute(*out.reply, values, conv->capture, &out.notes);
  }
  return out;
}

}  // namespace kiln::modelserver
