// GitHubDouble's public face: start and stop, the test-side methods (what
// people do on github.com), Get through the REST handlers, faults, and the
// records of requests and deliveries.
#include "tests/github/double.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include "tests/github/double_internal.h"

namespace kiln::testing {

using ghd::json;

std::unique_ptr<GitHubDouble> GitHubDouble::Start(GitHubDoubleOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  if (impl->opt.dir.empty()) throw std::runtime_error("github double: options.dir is empty");
  if (impl->opt.max_per_page < 1) impl->opt.max_per_page = 1;
  std::filesystem::create_directories(impl->opt.dir + "/repos");
  impl->tls = ghd::MakeTlsFiles(impl->opt.dir + "/tls");
  impl->app_public = ghd::LoadPublicKey(impl->tls.app_key);
  impl->reset_at = ghd::NowUnix() + 3600;
  try {
    impl->StartServer();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("github double: listening on 127.0.0.1: ") + e.what());
  }
  impl->sender = std::thread([p = impl.get()] { p->SenderLoop(); });
  return std::unique_ptr<GitHubDouble>(new GitHubDouble(std::move(impl)));
}

GitHubDouble::GitHubDouble(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GitHubDouble::~GitHubDouble() {
  impl_->StopServer();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->hooks_stopping = true;
  }
  impl_->hooks_cv.notify_all();
  if (impl_->sender.joinable()) impl_->sender.join();
}

std::string GitHubDouble::api_url() const { return impl_->api_base(); }
std::string GitHubDouble::git_url(const std::string& repo) const {
  return impl_->web_base() + "/" + repo + ".git";
}
std::string GitHubDouble::ca_file() const { return impl_->tls.ca; }
std::string GitHubDouble::app_key_file() const { return impl_->tls.app_key; }
std::string GitHubDouble::bot_login() const { return impl_->opt.app_slug + "[bot]"; }

void GitHubDouble::CreateRepo(const std::string& full_name, const std::string& source) {
  size_t slash = full_name.find('/');
  if (slash == std::string::npos || full_name.find('/', slash + 1) != std::string::npos) {
    throw std::runtime_error("github double: repository name is not owner/name: " + full_name);
  }
  std::string bare = impl_->opt.dir + "/repos/" + full_name + ".git";
  ghd::Git({"init", "--quiet", "--bare", "--initial-branch=main", bare});
  ghd::Git({"--git-dir", bare, "config", "http.receivepack", "true"});
  ghd::Git({"-C", source, "push", "--quiet", bare, "HEAD:refs/heads/main"});
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->FindRepo(full_name) != nullptr) {
    throw std::runtime_error("github double: repository exists: " + full_name);
  }
  ghd::Repo& repo = impl_->repos[full_name];
  repo.id = impl_->NextId();
  repo.owner = full_name.substr(0, slash);
  repo.name = full_name.substr(slash + 1);
  repo.bare = bare;
  repo.collaborators[repo.owner] = "admin";
}

void GitHubDouble::AddCollaborator(const std::string& repo, const std::string& user,
                                   const std::string& permission) {
  static const std::set<std::string> kRoles = {"admin", "maintain", "write", "triage", "read"};
  if (!kRoles.count(permission)) {
    throw std::runtime_error("github double: unknown permission " + permission);
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->RepoOrThrow(repo).collaborators[user] = permission;
}

void GitHubDouble::AddTeamMember(const std::string& org, const std::string& team_slug,
                                 const std::string& user) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->teams[org + "/" + team_slug].insert(user);
}

int64_t GitHubDouble::OpenIssue(const std::string& repo, const std::string& user,
                                const std::string& title, const std::string& body) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->OpenIssueLocked(impl_->RepoOrThrow(repo), user, title, body);
}

void GitHubDouble::PushBranch(const std::string& repo, const std::string& source,
                              const std::string& branch) {
  std::string bare;
  std::string pusher;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    ghd::Repo& r = impl_->RepoOrThrow(repo);
    bare = r.bare;
    pusher = r.owner;
  }
  auto before = impl_->Branches(bare);
  ghd::Git({"-C", source, "push", "--quiet", "--force", bare,
            "refs/heads/" + branch + ":refs/heads/" + branch});
  auto after = impl_->Branches(bare);
  std::lock_guard<std::mutex> lock(impl_->mu);
  ghd::Repo& r = impl_->RepoOrThrow(repo);
  r.branches.reset();
  if (after != before) impl_->RefsChanged(r, before, after, pusher);
}

int64_t GitHubDouble::OpenPull(const std::string& repo, const std::string& user,
                               const std::string& title, const std::string& body,
                               const std::string& head, const std::string& base) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ghd::Reply r =
      impl_->CreatePull(impl_->RepoOrThrow(repo), user,
                        {{"title", title}, {"body", body}, {"head", head}, {"base", base}});
  if (r.status != 201) throw std::runtime_error("github double: OpenPull: " + r.body);
  return json::parse(r.body)["number"].get<int64_t>();
}

void GitHubDouble::AddLabel(const std::string& repo, int64_t number, const std::string& user,
                            const std::string& label) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ghd::Repo& r = impl_->RepoOrThrow(repo);
  impl_->AddLabelLocked(r, impl_->IssueOrThrow(r, number), user, label);
}

void GitHubDouble::RemoveLabel(const std::string& repo, int64_t number, const std::string& user,
                               const std::string& label) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ghd::Repo& r = impl_->RepoOrThrow(repo);
  impl_->RemoveLabelLocked(r, impl_->IssueOrThrow(r, number), user, label);
}

int64_t GitHubDouble::Comment(const std::string& repo, int64_t number, const std::string& user,
                              const std::string& body) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ghd::Repo& r = impl_->RepoOrThrow(repo);
  return impl_->CommentLocked(r, impl_->IssueOrThrow(r, number), user, body).id;
}

int64_t GitHubDouble::Review(const std::string& repo, int64_t number, const std::string& user,
                             const std::string& event, const std::string& body) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ghd::Repo& r = impl_->RepoOrThrow(repo);
  ghd::Issue& pull = impl_->IssueOrThrow(r, number);
  if (!pull.is_pull) throw std::runtime_error("github double: not a pull request: " + repo);
  ghd::Reply reply = impl_->CreateReview(r, pull, user, {{"event", event}, {"body", body}});
  if (reply.status != 200) throw std::runtime_error("github double: Review: " + reply.body);
  return json::parse(reply.body)["id"].get<int64_t>();
}

void GitHubDouble::Close(const std::string& repo, int64_t number, const std::string& user) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ghd::Repo& r = impl_->RepoOrThrow(repo);
  impl_->SetStateLocked(r, impl_->IssueOrThrow(r, number), user, "closed");
}

json GitHubDouble::Get(const std::string& path) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  json joined = json::array();
  for (int64_t page = 1;; ++page) {
    ghd::Call call;
    call.method = "GET";
    call.target = path;
    size_t q = path.find('?');
    call.path = path.substr(0, q);
    std::string query = q == std::string::npos ? "" : path.substr(q + 1);
    for (size_t start = 0; start < query.size();) {
      size_t amp = std::min(query.find('&', start), query.size());
      std::string kv = query.substr(start, amp - start);
      size_t eq = kv.find('=');
      std::string k = ghd::UrlDecode(kv.substr(0, eq));
      std::string v = eq == std::string::npos ? "" : ghd::UrlDecode(kv.substr(eq + 1));
      if (!k.empty() && k != "page" && k != "per_page") {
        call.query[k] = v;
        call.query_order.emplace_back(k, v);
      }
      start = amp + 1;
    }
    call.query["per_page"] = std::to_string(impl_->opt.max_per_page);
    call.query["page"] = std::to_string(page);
    ghd::Reply r = impl_->HandleApi(call, {"god", "", ""});
    if (r.status != 200) {
      throw std::runtime_error("github double: GET " + path + ": " + std::to_string(r.status) +
                               " " + r.body);
    }
    json body = json::parse(r.body);
    if (!body.is_array()) return body;
    for (auto& item : body) joined.push_back(std::move(item));
    bool next = false;
    for (const auto& [k, v] : r.headers) next |= k == "link" && v.find("rel=\"next\"") != v.npos;
    if (!next) return joined;
  }
}

std::string GitHubDouble::BranchSha(const std::string& repo, const std::string& branch) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->BranchShaLocked(impl_->RepoOrThrow(repo), branch);
}

void GitHubDouble::Inject(Fault fault) {
  std::regex(fault.path_regex);  // throws std::regex_error here, not in the server thread
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (fault.times > 0) impl_->faults.push_back(std::move(fault));
}

void GitHubDouble::ExpireTokens() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (auto& [token, expiry] : impl_->tokens) expiry = 0;
}

std::vector<GitHubDouble::Request> GitHubDouble::Requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->requests;
}

std::vector<GitHubDouble::Delivery> GitHubDouble::Deliveries() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<Delivery> out;
  for (const auto& s : impl_->deliveries) out.push_back(s.d);
  return out;
}

bool GitHubDouble::WaitDeliveries(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->hooks_cv.wait_for(lock, timeout,
                                  [this] { return impl_->pending.empty() && !impl_->sending; });
}

GitHubDouble::Delivery GitHubDouble::Redeliver(const std::string& id) {
  ghd::StoredDelivery s;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = std::find_if(impl_->deliveries.begin(), impl_->deliveries.end(),
                           [&](const ghd::StoredDelivery& d) { return d.d.id == id; });
    if (it == impl_->deliveries.end()) {
      throw std::runtime_error("github double: no delivery " + id);
    }
    s = *it;
  }
  s = impl_->Send(std::move(s));
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->deliveries.push_back(s);
  return s.d;
}

GitHubDouble::Delivery GitHubDouble::SendRaw(const std::string& event, const std::string& id,
                                             const std::string& body,
                                             const std::string& signature) {
  ghd::StoredDelivery s;
  s.d.id = id;
  s.d.event = event;
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_object() && parsed.contains("action") && parsed["action"].is_string()) {
    s.d.action = parsed["action"].get<std::string>();
  }
  s.d.body = body;
  s.d.signature = signature;
  s = impl_->Send(std::move(s));
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->deliveries.push_back(s);
  return s.d;
}

}  // namespace kiln::testing
