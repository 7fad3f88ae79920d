#include "controller/web/runview.h"

#include <algorithm>

#include "base/html.h"
#include "controller/web/html.h"

namespace kiln::web {
namespace {

using nlohmann::json;

constexpr size_t kKeepWarm = 16;

std::string Str(const json& v) {
  if (v.is_null()) return "";
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string Num(const json& v, const char* unit = "") { return v.is_number() ? Str(v) + unit : ""; }

// " · "-separated, the empty parts left out.
std::string Facts(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += " · ";
    out += p;
  }
  return HtmlEscape(out);
}

}  // namespace

std::string RenderItem(const json& t, const std::string& id) {
  const std::string kind = Str(t.value("kind", json("note")));
  std::string cls = kind;
  std::string head, body;
  if (kind == "model") {
    const json usage = t.value("usage", json());
    std::string tokens;
    if (usage.is_object()) {
      tokens = Str(usage.value("input_tokens", json(0))) + " in / " +
               Str(usage.value("output_tokens", json(0))) + " out tokens";
    }
    head = Facts({"turn " + Str(t.value("turn", json())), Str(t.value("model", json())), tokens,
                  Usd(t.value("cost_microusd", json())), Num(t.value("duration_ms", json()), " ms"),
                  Str(t.value("stop_reason", json()))});
    if (!t.contains("status")) cls += " pending";
    if (t.contains("error")) body += "<p class=\"bad\">" + HtmlEscape(Str(t["error"])) + "</p>";
    body += Collapsible("reply", Str(t.value("text", json(""))));
  } else if (kind == "tool") {
    const json status = t.value("exit_status", json());
    const bool failed = (status.is_number() && status != 0) || t.value("is_error", json()) == true;
    if (!t.contains("exit_status") && !t.contains("output")) cls += " pending";
    if (failed) cls += " failed";
    head = Facts({Str(t.value("tool", json())),
                  status.is_number() ? "exit " + Str(status) : std::string(),
                  Num(t.value("duration_ms", json()), " ms"),
                  t.value("truncated", json()) == true ? "output truncated" : ""});
    body += Collapsible("arguments", t.value("input", json()).dump(2), /*always=*/true);
    if (t.contains("output")) body += Collapsible("output", Str(t["output"]));
  } else if (kind == "steer") {
    head = Facts({"steering from " + Str(t.value("from", json()))});
    body = "<pre>" + HtmlEscape(Str(t.value("message", json()))) + "</pre>";
  } else {
    head = Facts({Str(t.value("event", json()))});
    body = "<p>" + HtmlEscape(Str(t.value("message", json()))) + "</p>";
  }
  return "<li class=\"item " + cls + "\" id=\"" + id +
         "\"><div class=\"head\"><span class=\"kind\">" + HtmlEscape(kind) + "</span> " + head +
         "<time>" + HtmlEscape(Str(t.value("ts", json()))) + "</time></div>" + body + "</li>";
}

std::string RenderProxy(const json& r, const std::string& id) {
  const bool denied = r.value("decision", json()) == "deny";
  std::string head =
      Facts({Str(r.value("method", json())) + " " + Str(r.value("host", json())) + ":" +
                 Str(r.value("port", json())) + Str(r.value("path", json())),
             Str(r.value("decision", json())), Num(r.value("status", json())),
             Str(r.value("reason", json())), Num(r.value("duration_ms", json()), " ms")});
  return "<li class=\"item proxy" + std::string(denied ? " failed" : "") + "\" id=\"" + id +
         "\"><div class=\"head\"><span class=\"kind\">proxy</span> " + head + "<time>" +
         HtmlEscape(Str(r.value("ts", json()))) + "</time></div></li>";
}

Result<std::vector<size_t>> RunView::Poll() {
  KILN_ASSIGN_OR_RETURN(sessionlog::Entries fresh, sessionlog::ReadNewEntries(log_path_, &cursor_));
  std::vector<size_t> changed;
  for (const sessionlog::Entry& e : fresh.records) {
    last_seq_ = std::max(last_seq_, e.seq);
    if (e.type == "run.start") started_ts_ = e.ts;
    audit::Folder::Change c = folder_.Add(e);
    size_t pos;
    if (c.kind == audit::Folder::Change::kTimeline || c.kind == audit::Folder::Change::kProxy) {
      const bool proxy = c.kind == audit::Folder::Change::kProxy;
      auto& index = proxy ? proxy_pos_ : timeline_pos_;
      const json& data = proxy ? folder_.proxy()[c.index] : folder_.timeline()[c.index];
      auto it = index.find(c.index);
      if (it == index.end()) {
        const uint64_t seq = data.value("seq", e.seq);
        pos = items_.size();
        items_.push_back(Item{(proxy ? "p" : "t") + std::to_string(seq), seq, e.seq, ""});
        index[c.index] = pos;
      } else {
        pos = it->second;
        items_[pos].rev = e.seq;
      }
      items_[pos].html =
          proxy ? RenderProxy(data, items_[pos].id) : RenderItem(data, items_[pos].id);
      if (std::find(changed.begin(), changed.end(), pos) == changed.end()) changed.push_back(pos);
    } else if (c.kind == audit::Folder::Change::kOther) {
      sections_rev_ = e.seq;
    }
  }
  return changed;
}

Result<std::shared_ptr<RunView>> RunViews::Get(const store::Run& run, const LogOf& log_of) {
  KILN_ASSIGN_OR_RETURN(std::string path, log_of(run));
  return Get(path);
}

Result<std::shared_ptr<RunView>> RunViews::Get(const std::string& log_path) {
  std::shared_ptr<RunView> view;
  {
    std::lock_guard lock(mu_);
    auto it = views_.find(log_path);
    if (it != views_.end()) view = it->second.lock();
    if (!view) {
      view = std::make_shared<RunView>(log_path);
      views_[log_path] = view;
      recent_.push_back(view);
      if (recent_.size() > kKeepWarm) recent_.erase(recent_.begin());
      std::erase_if(views_, [](const auto& kv) { return kv.second.expired(); });
    }
  }
  std::lock_guard lock(view->mu);
  KILN_TRY(view->Poll());
  return view;
}

}  // namespace kiln::web
