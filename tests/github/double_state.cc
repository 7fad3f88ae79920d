// Changes to the double's state that both the REST API and the test-side
// methods make, each queueing the webhook GitHub would send for it.
#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "base/strings.h"
#include "tests/github/double_internal.h"

namespace kiln::testing {

using ghd::Issue;
using ghd::json;
using ghd::Repo;

namespace {

bool SameLabel(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

const char kZero[] = "0000000000000000000000000000000000000000";

}  // namespace

Repo* GitHubDouble::Impl::FindRepo(const std::string& full_name) {
  for (auto& [name, repo] : repos) {
    if (SameLabel(name, full_name)) return &repo;  // GitHub's names are case-insensitive
  }
  return nullptr;
}

Repo& GitHubDouble::Impl::RepoOrThrow(const std::string& full_name) {
  Repo* repo = FindRepo(full_name);
  if (repo == nullptr) throw std::runtime_error("github double: no repository " + full_name);
  return *repo;
}

Issue& GitHubDouble::Impl::IssueOrThrow(Repo& repo, int64_t number) {
  auto it = repo.issues.find(number);
  if (it == repo.issues.end()) {
    throw std::runtime_error("github double: no issue " + repo.full_name() + "#" +
                             std::to_string(number));
  }
  return it->second;
}

void GitHubDouble::Impl::IssueEvent(Repo& repo, Issue& issue, const std::string& action,
                                    const std::string& user, json extra) {
  json payload = {{"action", action}};
  if (issue.is_pull) {
    payload["number"] = issue.number;
    payload["pull_request"] = PullJson(repo, issue);
  } else {
    payload["issue"] = IssueJson(repo, issue);
  }
  for (auto& [k, v] : extra.items()) payload[k] = v;
  QueueHook(issue.is_pull ? "pull_request" : "issues", std::move(payload), repo, user);
}

int64_t GitHubDouble::Impl::OpenIssueLocked(Repo& repo, const std::string& user,
                                            const std::string& title, const std::string& body) {
  Issue issue;
  issue.id = NextId();
  issue.number = repo.next_number++;
  issue.title = title;
  issue.body = body;
  issue.user = user;
  issue.created_at = issue.updated_at = ghd::NowIso();
  Issue& stored = repo.issues[issue.number] = issue;
  IssueEvent(repo, stored, "opened", user);
  return stored.number;
}

ghd::Label& GitHubDouble::Impl::EnsureLabel(Repo& repo, const std::string& name) {
  for (auto& l : repo.labels) {
    if (SameLabel(l.name, name)) return l;
  }
  repo.labels.push_back({NextId(), name, "ededed", ""});
  return repo.labels.back();
}

void GitHubDouble::Impl::AddLabelLocked(Repo& repo, Issue& issue, const std::string& user,
                                        const std::string& name) {
  ghd::Label& label = EnsureLabel(repo, name);
  if (std::find(issue.labels.begin(), issue.labels.end(), label.name) != issue.labels.end()) {
    return;
  }
  issue.labels.push_back(label.name);
  issue.updated_at = ghd::NowIso();
  IssueEvent(repo, issue, "labeled", user, {{"label", LabelJson(repo, label)}});
}

bool GitHubDouble::Impl::RemoveLabelLocked(Repo& repo, Issue& issue, const std::string& user,
                                           const std::string& name) {
  auto it = std::find_if(issue.labels.begin(), issue.labels.end(),
                         [&](const std::string& l) { return SameLabel(l, name); });
  if (it == issue.labels.end()) return false;
  std::string removed = *it;
  issue.labels.erase(it);
  issue.updated_at = ghd::NowIso();
  json label = json::object();
  for (const auto& l : repo.labels) {
    if (l.name == removed) label = LabelJson(repo, l);
  }
  IssueEvent(repo, issue, "unlabeled", user, {{"label", label}});
  return true;
}

ghd::IssueComment& GitHubDouble::Impl::CommentLocked(Repo& repo, Issue& issue,
                                                     const std::string& user,
                                                     const std::string& body) {
  ghd::IssueComment c;
  c.id = NextId();
  c.number = issue.number;
  c.user = user;
  c.body = body;
  c.created_at = c.updated_at = ghd::NowIso();
  repo.comments.push_back(c);
  issue.updated_at = c.created_at;
  QueueHook("issue_comment",
            {{"action", "created"},
             {"issue", IssueJson(repo, issue)},
             {"comment", CommentJson(repo, repo.comments.back())}},
            repo, user);
  return repo.comments.back();
}

void GitHubDouble::Impl::SetStateLocked(Repo& repo, Issue& issue, const std::string& user,
                                        const std::string& state) {
  if (issue.state == state) return;
  issue.state = state;
  issue.updated_at = ghd::NowIso();
  issue.closed_at = state == "closed" ? issue.updated_at : "";
  IssueEvent(repo, issue, state == "closed" ? "closed" : "reopened", user);
}

void GitHubDouble::Impl::RefsChanged(Repo& repo, const std::map<std::string, std::string>& before,
                                     const std::map<std::string, std::string>& after,
                                     const std::string& pusher) {
  std::set<std::string> names;
  for (const auto& [name, sha] : before) names.insert(name);
  for (const auto& [name, sha] : after) names.insert(name);
  for (const auto& name : names) {
    std::string old_sha = before.count(name) ? before.at(name) : kZero;
    std::string new_sha = after.count(name) ? after.at(name) : kZero;
    if (old_sha == new_sha) continue;
    bool created = old_sha == kZero;
    bool deleted = new_sha == kZero;
    bool forced = false;
    if (!created && !deleted) {
      forced =
          ghd::Run({"git", "--git-dir", repo.bare, "merge-base", "--is-ancestor", old_sha, new_sha})
              .exit_code != 0;
    }
    json commits = json::array();
    if (!deleted) {
      std::vector<std::string> args = {
          "--git-dir",
          repo.bare,
          "log",
          "--reverse",
          "-n",
          "20",
          "--format=%H%x1f%T%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%B%x1e"};
      args.push_back(new_sha);
      if (!created) {
        args.push_back("^" + old_sha);
      } else if (after.count("main") && name != "main") {
        args.push_back("^" + after.at("main"));
      }
      for (std::string rec : Split(ghd::Git(args), '\x1e')) {
        while (!rec.empty() && rec.front() == '\n') rec.erase(0, 1);
        std::vector<std::string> f = Split(rec, '\x1f');
        if (f.size() < 8) continue;
        while (!f[7].empty() && f[7].back() == '\n') f[7].pop_back();
        commits.push_back({{"id", f[0]},
                           {"tree_id", f[1]},
                           {"distinct", true},
                           {"message", f[7]},
                           {"timestamp", f[4]},
                           {"url", web_base() + "/" + repo.full_name() + "/commit/" + f[0]},
                           {"author", {{"name", f[2]}, {"email", f[3]}}},
                           {"committer", {{"name", f[5]}, {"email", f[6]}}},
                           {"added", json::array()},
                           {"removed", json::array()},
                           {"modified", json::array()}});
      }
    }
    QueueHook("push",
              {{"ref", "refs/heads/" + name},
               {"before", old_sha},
               {"after", new_sha},
               {"created", created},
               {"deleted", deleted},
               {"forced", forced},
               {"base_ref", nullptr},
               {"compare", web_base() + "/" + repo.full_name() + "/compare/" +
                               old_sha.substr(0, 12) + "..." + new_sha.substr(0, 12)},
               {"commits", commits},
               {"head_commit", commits.empty() ? json(nullptr) : commits.back()},
               {"pusher", {{"name", pusher}, {"email", pusher + "@users.noreply.github.com"}}}},
              repo, pusher);
    for (auto& [number, pull] : repo.issues) {
      if (deleted && pull.is_pull && pull.state == "open" && pull.head == name) {
        SetStateLocked(repo, pull, pusher, "closed");  // as GitHub closes it
      }
    }
    if (deleted) continue;
    for (auto& [number, pull] : repo.issues) {
      if (!pull.is_pull || pull.state != "open" || pull.head != name) continue;
      std::string prev = pull.head_sha;
      pull.head_sha = new_sha;
      pull.updated_at = ghd::NowIso();
      IssueEvent(repo, pull, "synchronize", pusher, {{"before", prev}, {"after", new_sha}});
    }
  }
}

json GitHubDouble::Impl::ApplyTitleAndBody(ghd::Issue& item, const json& req) {
  json changes = json::object();
  for (auto [key, field] : {std::pair{"title", &item.title}, std::pair{"body", &item.body}}) {
    auto it = req.find(key);
    if (it == req.end() || !it->is_string() || *it == *field) continue;
    changes[key] = {{"from", *field}};
    *field = it->get<std::string>();
  }
  return changes;
}

}  // namespace kiln::testing
