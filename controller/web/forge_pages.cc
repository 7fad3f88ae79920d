#include "controller/web/forge_pages.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "base/html.h"
#include "controller/forge/local.h"
#include "controller/web/pages.h"

namespace kiln::web {
namespace {

// First segments that are the web view's own, never an owner's name.
const std::set<std::string> kReserved = {"runs",   "s",       "api",   "static",   "login",
                                         "logout", "healthz", "repos", "webhooks", "favicon.ico"};

std::string E(const std::string& s) { return HtmlEscape(s); }

int64_t Number(const std::string& s) {
  if (s.empty() || s.size() > 12 || !std::all_of(s.begin(), s.end(), ::isdigit)) return 0;
  return std::stoll(s);
}

PageReply Fail(const Viewer& v, const Error& e) {
  int status = e.code() == Error::Code::kPermission        ? 403
               : e.code() == Error::Code::kNotFound        ? 404
               : e.code() == Error::Code::kInvalidArgument ? 422
                                                           : 500;
  return {status, ErrorPage(v, status, e.message()), ""};
}

std::string Labels(const std::vector<std::string>& labels) {
  std::string out;
  for (const auto& l : labels) out += "<span class=\"label\">" + E(l) + "</span> ";
  return out;
}

std::string Text(const std::string& body) {
  return body.empty() ? "<p class=\"muted\">No description.</p>"
                      : "<div class=\"text\">" + E(body) + "</div>";
}

// A link only to http(s): a status's target_url came from whoever set it.
std::string Link(const std::string& url, const std::string& text) {
  if (url.starts_with("https://") || url.starts_with("http://")) {
    return "<a href=\"" + E(url) + "\" rel=\"noreferrer noopener\">" + E(text) + "</a>";
  }
  return E(text);
}

std::string ItemRows(const std::string& repo, const std::vector<forge::Issue>& items) {
  if (items.empty()) return "<p class=\"muted\">None.</p>";
  std::string out =
      "<table class=\"items\"><tr><th>#</th><th>title</th><th>state</th><th>by</th><th>labels</th>"
      "</tr>";
  for (const auto& i : items) {
    std::string href = "/" + repo + (i.is_pull ? "/pull/" : "/issues/") + std::to_string(i.number);
    out += "<tr><td>" + std::to_string(i.number) + "</td><td><a href=\"" + E(href) + "\">" +
           E(i.title) + "</a></td><td>" + Badge(i.state) + "</td><td>" + E(i.author) + "</td><td>" +
           Labels(i.labels) + "</td></tr>";
  }
  return out + "</table>";
}

// The diff, each review comment placed after the line it is anchored to.
std::string DiffWithComments(const std::string& diff, const std::vector<forge::Review>& reviews) {
  struct At {
    std::string author, severity, body;
  };
  std::map<std::tuple<std::string, std::string, int64_t>, std::vector<At>> at;
  for (const auto& r : reviews) {
    for (const auto& c : r.comments)
      at[{c.path, c.side, c.line}].push_back({r.author, c.severity, c.body});
  }
  std::string out = "<pre class=\"diff\">";
  std::istringstream in(diff);
  std::string line, path;
  int64_t old_line = 0, new_line = 0;
  while (std::getline(in, line)) {
    const char* cls = "ctx";
    std::vector<std::pair<std::string, int64_t>> anchors;
    if (line.starts_with("+++ ")) {
      path = line.substr(4);
      if (path.starts_with("b/")) path = path.substr(2);
      cls = "file";
    } else if (line.starts_with("--- ") || line.starts_with("diff ") ||
               line.starts_with("index ")) {
      cls = "file";
    } else if (line.starts_with("@@")) {
      cls = "hunk";
      int a = 0, c = 0;
      if (std::sscanf(line.c_str(), "@@ -%d%*[^+]+%d", &a, &c) == 2) {
        old_line = a;
        new_line = c;
      }
    } else if (line.starts_with("+")) {
      cls = "add";
      anchors.push_back({"RIGHT", new_line++});
    } else if (line.starts_with("-")) {
      cls = "del";
      anchors.push_back({"LEFT", old_line++});
    } else {
      anchors.push_back({"RIGHT", new_line++});
      anchors.push_back({"LEFT", old_line++});
    }
    out += "<span class=\"" + std::string(cls) + "\">" + E(line) + "\n</span>";
    for (const auto& [side, n] : anchors) {
      auto it = at.find({path, side, n});
      if (it == at.end()) continue;
      for (const At& c : it->second) {
        out += "<span class=\"inline\"><b>" + E(c.author) + "</b> (" + E(c.severity) +
               "): " + E(c.body) + "\n</span>";
      }
      at.erase(it);
    }
  }
  return out + "</pre>";
}

// The runs that acted on repo#number, newest first (not `kiln replay
// --rerun`'s, which carry the original's context and act on nothing).
std::string RunsOf(store::Store& store, const std::string& repo, int64_t number) {
  store::ListFilter f;
  f.limit = 1000;
  auto runs = store.List(f);
  if (!runs) return "";
  std::string rows;
  for (const auto& r : *runs) {
    const auto& c = r.request.context;
    if (!c.is_object() || c.value("repo", "") != repo || c.value("number", int64_t{0}) != number ||
        r.request.requested_by.starts_with("rerun:")) {
      continue;
    }
    rows += RunRow(r);
  }
  if (rows.empty()) return "";
  return "<section><h2>Runs</h2><div class=\"scroll\"><table class=\"runs\"><tr><th>run</th>"
         "<th>role</th><th>for</th><th>status</th><th>attempt</th><th>queued</th><th>took</th>"
         "<th>outcome</th></tr>" +
         rows + "</table></div></section>";
}

std::string Form(const Viewer& v, const std::string& action, const std::string& fields,
                 const std::string& button, const std::string& cls = "") {
  return "<form method=\"post\" action=\"" + E(action) + "\" class=\"" + cls + "\">" +
         CsrfField(v) + fields + "<button type=\"submit\">" + E(button) + "</button></form>";
}

}  // namespace

bool ForgePages::Matches(const std::vector<std::string>& seg) {
  if (seg.size() == 1) return seg[0] == "repos";
  if (seg.size() < 2 || kReserved.count(seg[0])) return false;
  if (seg.size() == 2) return true;
  return seg.size() >= 4 && (seg[2] == "issues" || seg[2] == "pull") && Number(seg[3]) > 0 &&
         seg.size() <= 5;
}

PageReply ForgePages::Get(const Viewer& v, const std::vector<std::string>& seg,
                          const std::map<std::string, std::string>& query,
                          const std::string& clone_base) {
  auto forge = forge::Local::Open(store_path_, repos_dir_, v.user, forge::Access::kUser);
  if (!forge) return Fail(v, forge.error());
  forge::Local& f = **forge;
  if (seg.size() == 1) {
    auto repos = f.ListRepos();
    if (!repos) return Fail(v, repos.error());
    std::string body =
        "<h1>Repositories</h1><table><tr><th>repository</th><th>default branch</th>"
        "<th>maintainers</th><th>clone</th></tr>";
    for (const auto& r : *repos) {
      std::string maint;
      for (const auto& m : r.maintainers) maint += (maint.empty() ? "" : ", ") + m;
      body += "<tr><td><a href=\"/" + E(r.info.name) + "\">" + E(r.info.name) + "</a></td><td>" +
              E(r.info.default_branch) + "</td><td>" + E(maint) + "</td><td><code>git clone " +
              E(clone_base + "/" + r.info.name + ".git") + "</code></td></tr>";
    }
    return {200, Page("Repositories", v, body + "</table>"), ""};
  }
  if (seg.size() > 4) return {405, ErrorPage(v, 405, "that is a form's action: POST"), ""};
  const std::string repo = seg[0] + "/" + seg[1];
  auto r = f.GetRepo(repo);
  if (!r) return Fail(v, r.error());
  if (seg.size() == 2) {
    forge::IssueFilter filter;
    filter.state = query.count("state") ? query.at("state") : "open";
    if (filter.state != "open" && filter.state != "closed" && filter.state != "all") {
      filter.state = "open";
    }
    filter.kind = forge::IssueFilter::Kind::kIssues;
    auto issues = f.ListIssues(repo, filter);
    filter.kind = forge::IssueFilter::Kind::kPulls;
    auto pulls = f.ListIssues(repo, filter);
    if (!issues) return Fail(v, issues.error());
    if (!pulls) return Fail(v, pulls.error());
    std::string maint;
    for (const auto& m : r->maintainers) maint += (maint.empty() ? "" : ", ") + m;
    std::string body = "<h1>" + E(repo) + "</h1><p><code>git clone " +
                       E(clone_base + "/" + repo + ".git") + "</code> · default branch <code>" +
                       E(r->info.default_branch) + "</code> · maintainers " + E(maint) +
                       "</p><p class=\"tabs\">";
    for (const char* s : {"open", "closed", "all"}) {
      body += "<a href=\"/" + E(repo) + "?state=" + s + "\"" +
              (filter.state == s ? " class=\"on\"" : "") + ">" + s + "</a> ";
    }
    body += "</p><section><h2>Pull requests</h2>" + ItemRows(repo, *pulls) +
            "</section><section><h2>Issues</h2>" + ItemRows(repo, *issues) + "</section>";
    return {200, Page(repo, v, body), ""};
  }
  const int64_t number = Number(seg[3]);
  auto item = f.GetIssue(repo, number);
  if (!item) return Fail(v, item.error());
  const bool pull = seg[2] == "pull";
  if (item->is_pull != pull) {
    return {0, "", "/" + repo + (item->is_pull ? "/pull/" : "/issues/") + std::to_string(number)};
  }
  auto comments = f.Comments(repo, number);
  if (!comments) return Fail(v, comments.error());
  const std::string self = "/" + repo + (pull ? "/pull/" : "/issues/") + std::to_string(number);
  std::string body = "<h1>" + E(item->title) + " <span class=\"muted\">#" + std::to_string(number) +
                     "</span></h1><p>" + Badge(item->state) + " " + E(item->author) + " · " +
                     E(When(item->created_ms)) + " UTC · " + Labels(item->labels) + "</p>";
  std::vector<forge::Review> reviews;
  if (pull) {
    auto p = f.GetPull(repo, number);
    if (!p) return Fail(v, p.error());
    auto rs = f.Reviews(repo, number);
    if (!rs) return Fail(v, rs.error());
    reviews = std::move(*rs);
    body += "<p><code>" + E(p->head_branch) + "</code> → <code>" + E(p->base_branch) +
            "</code> at <code>" + E(p->head_sha.substr(0, 12)) + "</code></p>";
    auto statuses = f.Statuses(repo, p->head_sha);
    if (statuses && !statuses->empty()) {
      body += "<section><h2>Statuses</h2><table>";
      for (const auto& s : *statuses) {
        body += "<tr><td>" + E(s.context) + "</td><td>" + Badge(s.state) + "</td><td>" +
                Link(s.target_url, s.description) + "</td></tr>";
      }
      body += "</table></section>";
    }
  }
  body += "<section><h2>Description</h2>" + Text(item->body) + "</section>";
  body += RunsOf(store_, repo, number);
  if (pull) {
    for (const auto& rv : reviews) {
      body += "<section class=\"review\"><h2>Review by " + E(rv.author) + ": " + E(rv.verdict) +
              "</h2>" + Text(rv.body) + "</section>";
    }
    auto diff = f.Diff(repo, number);
    if (diff) body += "<section><h2>Diff</h2>" + DiffWithComments(*diff, reviews) + "</section>";
  }
  body += "<section><h2>Comments</h2>";
  for (const auto& c : *comments) {
    body += "<div class=\"comment\" id=\"comment-" + std::to_string(c.id) + "\"><p><b>" +
            E(c.author) + "</b> <span class=\"muted\">" + E(When(c.created_ms)) +
            " UTC</span></p>" + Text(c.body) + "</div>";
  }
  body += Form(v, self + "/comment",
               "<textarea name=\"body\" required maxlength=\"65536\" placeholder=\"Comment\">"
               "</textarea>",
               "Comment", "comment-form") +
          "</section>";
  // What a maintainer (or the author) may do; the forge says no to others.
  std::string options;
  for (const auto& l : r->info.labels) {
    if (std::find(item->labels.begin(), item->labels.end(), l) == item->labels.end()) {
      options += "<option>" + E(l) + "</option>";
    }
  }
  body += "<section><h2>Act</h2><div class=\"actions\">";
  if (!options.empty()) {
    body += Form(v, self + "/label", "<select name=\"label\">" + options + "</select>", "Add label",
                 "inline");
  }
  for (const auto& l : item->labels) {
    body +=
        Form(v, self + "/unlabel", "<input type=\"hidden\" name=\"label\" value=\"" + E(l) + "\">",
             "Remove " + l, "inline");
  }
  if (item->state != "merged") {
    body += Form(v, self + "/state",
                 "<input type=\"hidden\" name=\"state\" value=\"" +
                     std::string(item->state == "open" ? "closed" : "open") + "\">",
                 item->state == "open" ? "Close" : "Reopen", "inline");
  }
  if (pull && item->state == "open") {
    body += Form(v, self + "/approve", "", "Approve", "inline");
    body += Form(v, self + "/merge", "", "Merge", "inline merge");
  }
  body += "</div></section>";
  return {200, Page(item->title, v, body), ""};
}

PageReply ForgePages::Post(const Viewer& v, const std::vector<std::string>& seg,
                           const std::map<std::string, std::string>& form) {
  if (seg.size() != 5) return {405, ErrorPage(v, 405, "nothing to post here"), ""};
  auto forge = forge::Local::Open(store_path_, repos_dir_, v.user, forge::Access::kUser);
  if (!forge) return Fail(v, forge.error());
  forge::Local& f = **forge;
  const std::string repo = seg[0] + "/" + seg[1];
  const int64_t number = Number(seg[3]);
  const bool pull = seg[2] == "pull";
  const std::string& action = seg[4];
  auto field = [&](const char* name) {
    auto it = form.find(name);
    return it == form.end() ? std::string() : it->second;
  };
  Status st = Ok();
  if (action == "comment") {
    if (field("body").find_first_not_of(" \t\r\n") == std::string::npos) {
      return {422, ErrorPage(v, 422, "body: empty; write something to comment"), ""};
    }
    auto c = f.AddComment(repo, number, field("body"));
    st = c.ok() ? Ok() : Status(c.error());
  } else if (action == "label") {
    st = f.AddLabels(repo, number, {field("label")});
  } else if (action == "unlabel") {
    st = f.RemoveLabel(repo, number, field("label"));
  } else if (action == "state") {
    if (field("state") != "open" && field("state") != "closed") {
      return {422, ErrorPage(v, 422, "state: open or closed"), ""};
    }
    st = f.Update(repo, number, std::nullopt, std::nullopt, field("state"));
  } else if (pull && action == "approve") {
    forge::Review review;
    review.verdict = "approve";
    review.body = field("body");
    auto rv = f.AddReview(repo, number, review);
    st = rv.ok() ? Ok() : Status(rv.error());
  } else if (pull && action == "merge") {
    auto m = f.Merge(repo, number);
    st = m.ok() ? Ok() : Status(m.error());
  } else {
    return {404, ErrorPage(v, 404, "no such action: " + action), ""};
  }
  if (!st.ok()) return Fail(v, st.error());
  return {0, "", "/" + repo + (pull ? "/pull/" : "/issues/") + std::to_string(number)};
}

}  // namespace kiln::web
