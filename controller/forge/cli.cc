#include "controller/forge/cli.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>

#include "base/clock.h"
#include "base/fd.h"
#include "base/strings.h"
#include "base/terminal.h"
#include "controller/config/config.h"
#include "controller/forge/api.h"
#include "controller/forge/db.h"
#include "controller/forge/inbox.h"
#include "controller/forge/local.h"
#include "controller/forge/users.h"
#include "controller/forge/wire.h"
#include "controller/store/postgres.h"

namespace kiln::forge::cli {
namespace {

using nlohmann::json;

constexpr int kFailed = 1;
constexpr int kUsage = 2;
constexpr char kDefaultConfig[] = "/etc/kiln/kiln.yaml";

struct Options {
  std::string config;
  std::string as;
  bool json = false;
  std::string repo;
  int64_t number = 0;
  std::string title, body, body_file;
  std::string head, base;
  std::string state = "open";
  std::string label;
  std::vector<std::string> labels, add, remove;
  int64_t edit = 0;
  std::string from, default_branch;
  std::vector<std::string> maintainers;
  std::string name;
  bool rotate = false;
  size_t limit = 50;
  std::string listen = "127.0.0.1:8089";
};

// "kiln: error: <message>"; bad input exits 2, anything else 1 (an unknown
// issue is a failure to find it, not a usage error).
int Fail(const Error& e) {
  spdlog::error("{}", e.message());
  return e.code() == Error::Code::kInvalidArgument ? kUsage : kFailed;
}

int Usage(const std::string& message) {
  spdlog::error("{}", message);
  return kUsage;
}

struct Paths {
  std::string store;
  std::string repos_dir;
  std::string bot;      // the pipeline's own forge user
  std::string web_url;  // config::WebUrl: where html_url points
};

// --config FILE, or /etc/kiln/kiln.yaml when it exists, or the defaults.
Result<Paths> ResolvePaths(const std::string& config_path) {
  Result<config::Config> cfg = !config_path.empty()                  ? config::Load(config_path)
                               : ::access(kDefaultConfig, F_OK) == 0 ? config::Load(kDefaultConfig)
                                                                     : config::Defaults();
  if (!cfg.ok()) return cfg.error();
  Paths paths{cfg->store, ReposDir(cfg->state_dir), cfg->pipeline.bot, config::WebUrl(*cfg)};
  // As `kiln serve` does: the state directory is made on first use.
  const std::string store_dir = store::pg::IsUrl(paths.store)
                                    ? ""
                                    : std::filesystem::path(paths.store).parent_path().string();
  for (const std::string& dir : {store_dir, paths.repos_dir}) {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    if (ec) return Error::Sys("mkdir(" + Quote(dir) + ")", ec.value());
  }
  return paths;
}

// --as, else $KILN_USER, else the login name of the effective uid.
std::string Actor(const std::string& as) {
  if (!as.empty()) return as;
  if (const char* env = std::getenv("KILN_USER"); env != nullptr && *env != '\0') return env;
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr) return pw->pw_name;
  return "uid" + std::to_string(::geteuid());
}

Result<std::unique_ptr<Local>> OpenLocal(const Options& o) {
  KILN_ASSIGN_OR_RETURN(Paths paths, ResolvePaths(o.config));
  return Local::Open(paths.store, paths.repos_dir, Actor(o.as));
}

// The links of --json output: html_url at the web view of `kiln serve`, url
// at the API it serves.
Result<wire::Links> LinksOf(const Options& o) {
  KILN_ASSIGN_OR_RETURN(Paths paths, ResolvePaths(o.config));
  return wire::MakeLinks(paths.web_url, "", paths.bot);
}

// What --json needs besides the object: the links and --repo's repository.
struct JsonContext {
  wire::Links links;
  LocalRepo repo;
};
Result<JsonContext> JsonFor(const Options& o, Local& f) {
  KILN_ASSIGN_OR_RETURN(wire::Links links, LinksOf(o));
  KILN_ASSIGN_OR_RETURN(LocalRepo repo, f.GetRepo(o.repo));
  return JsonContext{std::move(links), std::move(repo)};
}

// --body or --body-file ("-": standard input); at most one of them.
Result<std::string> BodyText(const Options& o) {
  if (!o.body.empty() && !o.body_file.empty()) {
    return Error::Invalid("give the body with one of --body and --body-file, not both");
  }
  if (o.body_file == "-") return ReadAll(STDIN_FILENO, "standard input");
  if (!o.body_file.empty()) return ReadFile(o.body_file);
  return o.body;
}

// One-line fields joined, each escaped for the terminal.
std::string Shown(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::vector<std::string> shown;
  for (const auto& s : items) shown.push_back(ForTerminalLine(s));
  return Join(shown, sep);
}

void PrintJson(const json& j) {
  std::cout << ForTerminalJson(j.dump(2, ' ', false, json::error_handler_t::replace)) << "\n";
}

// What API users wrote (titles, bodies, names, labels, branches), as the
// terminal may show it: an escape sequence is printed, never obeyed. One-line
// fields stay on one line, so that a title cannot add a forged "state" line.
Issue Shown(Issue i) {
  for (std::string* f : {&i.repo, &i.title, &i.author, &i.state}) *f = ForTerminalLine(*f);
  for (std::string& l : i.labels) l = ForTerminalLine(l);
  i.body = ForTerminal(i.body);
  return i;
}

PullRequest Shown(PullRequest p) {
  p.issue = Shown(std::move(p.issue));
  for (std::string* f : {&p.head_branch, &p.base_branch}) *f = ForTerminalLine(*f);
  return p;
}

Comment Shown(Comment c) {
  c.author = ForTerminalLine(c.author);
  c.body = ForTerminal(c.body);
  return c;
}

Review Shown(Review r) {
  for (std::string* f : {&r.author, &r.verdict, &r.commit_sha}) *f = ForTerminalLine(*f);
  r.body = ForTerminal(r.body);
  for (ReviewComment& c : r.comments) {
    for (std::string* f : {&c.path, &c.side, &c.start_side, &c.severity, &c.body}) {
      *f = ForTerminalLine(*f);
    }
  }
  return r;
}

CommitStatus Shown(CommitStatus s) {
  for (std::string* f : {&s.context, &s.state, &s.description, &s.target_url}) {
    *f = ForTerminalLine(*f);
  }
  return s;
}

std::string Short(const std::string& sha) { return sha.empty() ? "-" : sha.substr(0, 12); }

// Indents every line of text by prefix.
std::string Indent(const std::string& text, const std::string& prefix) {
  std::string out;
  for (const std::string& line : Split(text, '\n')) out += prefix + line + "\n";
  return out;
}

void PrintComments(const std::vector<Comment>& comments) {
  for (const auto& shown : comments) {
    const Comment c = Shown(shown);
    std::printf(
        "\n--- comment %lld by %s, %s%s\n", static_cast<long long>(c.id), c.author.c_str(),
        wire::Time(c.created_ms).c_str(),
        c.updated_ms != c.created_ms ? (" (edited " + wire::Time(c.updated_ms) + ")").c_str() : "");
    std::printf("%s", Indent(c.body, "  ").c_str());
  }
}

// --- kiln forge ----------------------------------------------------------------

int DoInit(const Options& o) {
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  auto repo = (*f)->CreateRepo(o.repo, o.from, o.maintainers, o.default_branch);
  if (!repo.ok()) return Fail(repo.error());
  if (o.json) {
    auto links = LinksOf(o);
    if (!links.ok()) return Fail(links.error());
    auto described = (*f)->GetRepo(repo->info.name);
    if (!described.ok()) return Fail(described.error());
    PrintJson(wire::RepoJson(*links, *described));
  } else {
    std::printf(
        "created %s at %s (default branch %s; maintainers %s)\n",
        ForTerminalLine(repo->info.name).c_str(), ForTerminalLine(repo->info.clone_url).c_str(),
        ForTerminalLine(repo->info.default_branch).c_str(), Shown(repo->maintainers).c_str());
  }
  return 0;
}

int DoRepos(const Options& o) {
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  auto repos = (*f)->ListRepos();
  if (!repos.ok()) return Fail(repos.error());
  if (o.json) {
    auto links = LinksOf(o);
    if (!links.ok()) return Fail(links.error());
    json a = json::array();
    for (const auto& r : *repos) a.push_back(wire::RepoJson(*links, r));
    PrintJson(a);
    return 0;
  }
  std::printf("%-30s %-12s %-24s %s\n", "REPOSITORY", "DEFAULT", "MAINTAINERS", "PATH");
  for (const auto& r : *repos) {
    std::printf("%-30s %-12s %-24s %s\n", ForTerminalLine(r.info.name).c_str(),
                ForTerminalLine(r.info.default_branch).c_str(), Shown(r.maintainers, ",").c_str(),
                ForTerminalLine(r.info.clone_url).c_str());
  }
  return 0;
}

int DoUserAdd(const Options& o) {
  auto paths = ResolvePaths(o.config);
  if (!paths.ok()) return Fail(paths.error());
  // The bot's items are its own: an API user of the same name would be
  // their author.
  if (o.name == paths->bot) {
    return Fail(Error::Invalid("user " + Quote(o.name) +
                               " is the pipeline's bot (pipeline.bot); it gets no API token"));
  }
  auto users = Users::Open(paths->store);
  if (!users.ok()) return Fail(users.error());
  auto token = (*users)->Add(o.name, o.rotate, NowMs());
  if (!token.ok()) return Fail(token.error());
  std::printf("%s\n", token->c_str());
  std::fprintf(stderr, "kiln: the API token of %s; it is shown only this once\n", o.name.c_str());
  return 0;
}

int DoUserList(const Options& o) {
  auto paths = ResolvePaths(o.config);
  if (!paths.ok()) return Fail(paths.error());
  auto users = Users::Open(paths->store);
  if (!users.ok()) return Fail(users.error());
  auto list = (*users)->List();
  if (!list.ok()) return Fail(list.error());
  if (o.json) {
    json a = json::array();
    for (const auto& u : *list)
      a.push_back({{"login", u.name}, {"created_at", wire::Time(u.created_ms)}});
    PrintJson(a);
    return 0;
  }
  for (const auto& u : *list)
    std::printf("%-24s %s\n", ForTerminalLine(u.name).c_str(), wire::Time(u.created_ms).c_str());
  return 0;
}

int DoEvents(const Options& o) {
  auto paths = ResolvePaths(o.config);
  if (!paths.ok()) return Fail(paths.error());
  auto inbox = Inbox::Open(paths->store);
  if (!inbox.ok()) return Fail(inbox.error());
  auto entries = (*inbox)->RecentEntries(o.limit, o.repo);
  if (!entries.ok()) return Fail(entries.error());
  if (o.json) {
    json a = json::array();
    for (const auto& e : *entries) a.push_back(wire::EventJson(e));
    PrintJson(a);
    return 0;
  }
  std::printf("%-6s %-20s %-18s %-24s %-6s %-12s %s\n", "SEQ", "RECEIVED", "KIND", "REPOSITORY",
              "NUMBER", "ACTOR", "OUTCOME");
  for (const auto& entry : *entries) {
    const Event& e = entry.event;
    std::printf("%-6lld %-20s %-18s %-24s %-6s %-12s %s\n", static_cast<long long>(e.seq),
                wire::Time(e.received_ms).c_str(), ForTerminalLine(e.kind).c_str(),
                ForTerminalLine(e.repo).c_str(),
                e.number > 0 ? ("#" + std::to_string(e.number)).c_str() : "-",
                ForTerminalLine(e.actor).c_str(),
                entry.processed_ms == 0 ? "(pending)" : ForTerminalLine(entry.outcome).c_str());
  }
  return 0;
}

int DoServe(const Options& o) {
  auto paths = ResolvePaths(o.config);
  if (!paths.ok()) return Fail(paths.error());
  // Blocked before the server's thread starts, so that only sigwait takes them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto server =
      ApiServer::Start(o.listen, paths->store, paths->repos_dir, paths->bot, paths->web_url);
  if (!server.ok()) return Fail(server.error());
  spdlog::info("forge API listening on {} (port {}); SIGINT or SIGTERM stops it", o.listen,
               (*server)->port());
  int sig = 0;
  ::sigwait(&set, &sig);
  spdlog::info("forge API: signal {}, stopping", sig);
  return 0;
}

// --- kiln issue ----------------------------------------------------------------

int DoIssueNew(const Options& o) {
  auto body = BodyText(o);
  if (!body.ok()) return Fail(body.error());
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  auto issue = (*f)->CreateIssue(o.repo, o.title, *body, o.labels);
  if (!issue.ok()) return Fail(issue.error());
  if (o.json) {
    auto ctx = JsonFor(o, **f);
    if (!ctx.ok()) return Fail(ctx.error());
    PrintJson(wire::IssueJson(ctx->links, ctx->repo, *issue));
  } else {
    std::printf("%s#%lld\n", issue->repo.c_str(), static_cast<long long>(issue->number));
  }
  return 0;
}

int DoIssueList(const Options& o) {
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  IssueFilter filter;
  filter.state = o.state;
  filter.label = o.label;
  filter.kind = IssueFilter::Kind::kIssues;
  auto issues = (*f)->ListIssues(o.repo, filter);
  if (!issues.ok()) return Fail(issues.error());
  if (o.json) {
    auto ctx = JsonFor(o, **f);
    if (!ctx.ok()) return Fail(ctx.error());
    json a = json::array();
    for (const auto& i : *issues) a.push_back(wire::IssueJson(ctx->links, ctx->repo, i));
    PrintJson(a);
    return 0;
  }
  std::printf("%-6s %-7s %-12s %-30s %s\n", "NUMBER", "STATE", "AUTHOR", "LABELS", "TITLE");
  for (const auto& shown : *issues) {
    const Issue i = Shown(shown);
    std::printf("#%-5lld %-7s %-12s %-30s %s\n", static_cast<long long>(i.number), i.state.c_str(),
                i.author.c_str(), Join(i.labels, ",").c_str(), i.title.c_str());
  }
  return 0;
}

int DoIssueShow(const Options& o) {
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  auto issue = (*f)->GetIssue(o.repo, o.number);
  if (!issue.ok()) return Fail(issue.error());
  auto comments = (*f)->Comments(o.repo, o.number);
  if (!comments.ok()) return Fail(comments.error());
  if (o.json) {
    auto ctx = JsonFor(o, **f);
    if (!ctx.ok()) return Fail(ctx.error());
    json j = wire::IssueJson(ctx->links, ctx->repo, *issue);
    // The comments themselves, where GitHub's issue counts them.
    j["comments"] = json::array();
    for (const auto& c : *comments) {
      j["comments"].push_back(wire::CommentJson(ctx->links, ctx->repo, issue->is_pull, c));
    }
    PrintJson(j);
    return 0;
  }
  const Issue i = Shown(*issue);
  std::printf("#%lld %s\n", static_cast<long long>(i.number), i.title.c_str());
  std::printf("state    %s%s\n", i.state.c_str(),
              i.is_pull ? " (a pull request: kiln pr show has its branches)" : "");
  std::printf("author   %s\n", i.author.c_str());
  std::printf("labels   %s\n", i.labels.empty() ? "-" : Join(i.labels, ", ").c_str());
  std::printf("created  %s, updated %s\n", wire::Time(i.created_ms).c_str(),
              wire::Time(i.updated_ms).c_str());
  if (!i.body.empty()) std::printf("\n%s", Indent(i.body, "  ").c_str());
  PrintComments(*comments);
  return 0;
}

int DoIssueLabel(const Options& o) {
  if (o.add.empty() && o.remove.empty()) return Usage("give at least one --add or --remove label");
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  if (!o.add.empty()) {
    if (Status st = (*f)->AddLabels(o.repo, o.number, o.add); !st.ok()) return Fail(st.error());
  }
  for (const auto& l : o.remove) {
    if (Status st = (*f)->RemoveLabel(o.repo, o.number, l); !st.ok()) return Fail(st.error());
  }
  auto issue = (*f)->GetIssue(o.repo, o.number);
  if (!issue.ok()) return Fail(issue.error());
  std::printf("#%lld labels: %s\n", static_cast<long long>(o.number),
              issue->labels.empty() ? "-" : Shown(issue->labels).c_str());
  return 0;
}

int DoIssueComment(const Options& o) {
  auto body = BodyText(o);
  if (!body.ok()) return Fail(body.error());
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  if (o.edit > 0) {
    // The comment must belong to the issue named on the command line.
    auto comments = (*f)->Comments(o.repo, o.number);
    if (!comments.ok()) return Fail(comments.error());
    bool found = false;
    for (const auto& c : *comments) found = found || c.id == o.edit;
    if (!found) {
      return Fail(Error::NotFound("comment " + std::to_string(o.edit) + " is not on #" +
                                  std::to_string(o.number) + " in " + Quote(o.repo)));
    }
    if (Status st = (*f)->EditComment(o.repo, o.edit, *body); !st.ok()) return Fail(st.error());
    std::printf("comment %lld edited\n", static_cast<long long>(o.edit));
    return 0;
  }
  auto c = (*f)->AddComment(o.repo, o.number, *body);
  if (!c.ok()) return Fail(c.error());
  if (o.json) {
    auto ctx = JsonFor(o, **f);
    if (!ctx.ok()) return Fail(ctx.error());
    auto issue = (*f)->GetIssue(o.repo, o.number);
    if (!issue.ok()) return Fail(issue.error());
    PrintJson(wire::CommentJson(ctx->links, ctx->repo, issue->is_pull, *c));
  } else {
    std::printf("comment %lld on #%lld\n", static_cast<long long>(c->id),
                static_cast<long long>(o.number));
  }
  return 0;
}

int DoClose(const Options& o, bool reopen) {
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  Status st = reopen ? (*f)->Reopen(o.repo, o.number) : (*f)->Close(o.repo, o.number);
  if (!st.ok()) return Fail(st.error());
  auto issue = (*f)->GetIssue(o.repo, o.number);
  if (!issue.ok()) return Fail(issue.error());
  std::printf("#%lld is %s\n", static_cast<long long>(o.number),
              ForTerminalLine(issue->state).c_str());
  return 0;
}

// --- kiln pr -------------------------------------------------------------------

void PrintPullLine(const PullRequest& shown) {
  const PullRequest p = Shown(shown);
  std::printf("#%-5lld %-7s %-12s %-24s %s\n", static_cast<long long>(p.issue.number),
              p.issue.state.c_str(), p.issue.author.c_str(),
              (p.head_branch + " -> " + p.base_branch).c_str(), p.issue.title.c_str());
}

int DoPrNew(const Options& o) {
  auto body = BodyText(o);
  if (!body.ok()) return Fail(body.error());
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  auto p = (*f)->OpenPull(o.repo, o.title, *body, o.head, o.base);
  if (!p.ok()) return Fail(p.error());
  if (o.json) {
    auto ctx = JsonFor(o, **f);
    if (!ctx.ok()) return Fail(ctx.error());
    PrintJson(wire::PullJson(ctx->links, ctx->repo, *p));
  } else {
    std::printf("%s#%lld\n", ForTerminalLine(p->issue.repo).c_str(),
                static_cast<long long>(p->issue.number));
  }
  return 0;
}

int DoPrList(const Options& o) {
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  auto pulls = (*f)->ListPulls(o.repo, o.state);
  if (!pulls.ok()) return Fail(pulls.error());
  if (o.json) {
    auto ctx = JsonFor(o, **f);
    if (!ctx.ok()) return Fail(ctx.error());
    json a = json::array();
    for (const auto& p : *pulls) a.push_back(wire::PullJson(ctx->links, ctx->repo, p));
    PrintJson(a);
    return 0;
  }
  std::printf("%-6s %-7s %-12s %-24s %s\n", "NUMBER", "STATE", "AUTHOR", "BRANCHES", "TITLE");
  for (const auto& p : *pulls) PrintPullLine(p);
  return 0;
}

int DoPrShow(const Options& o) {
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  auto p = (*f)->GetPull(o.repo, o.number);
  if (!p.ok()) return Fail(p.error());
  auto reviews = (*f)->Reviews(o.repo, o.number);
  if (!reviews.ok()) return Fail(reviews.error());
  auto comments = (*f)->Comments(o.repo, o.number);
  if (!comments.ok()) return Fail(comments.error());
  std::vector<CommitStatus> statuses;
  if (!p->head_sha.empty()) {
    auto s = (*f)->Statuses(o.repo, p->head_sha);
    if (!s.ok()) return Fail(s.error());
    statuses = std::move(*s);
  }
  if (o.json) {
    auto ctx = JsonFor(o, **f);
    if (!ctx.ok()) return Fail(ctx.error());
    const wire::Links& links = ctx->links;
    json j = wire::PullJson(links, ctx->repo, *p);
    j["reviews"] = json::array();
    for (const auto& r : *reviews) {
      j["reviews"].push_back(wire::ReviewJson(links, ctx->repo, o.number, r));
    }
    j["statuses"] = json::array();
    for (const auto& s : statuses) j["statuses"].push_back(wire::StatusJson(links, ctx->repo, s));
    j["comments"] = json::array();
    for (const auto& c : *comments) {
      j["comments"].push_back(wire::CommentJson(links, ctx->repo, true, c));
    }
    PrintJson(j);
    return 0;
  }
  const PullRequest pull = Shown(*p);
  const Issue& i = pull.issue;
  std::printf("#%lld %s\n", static_cast<long long>(i.number), i.title.c_str());
  std::printf("state    %s\n", i.state.c_str());
  std::printf("author   %s\n", i.author.c_str());
  std::printf("head     %s @ %s\n", pull.head_branch.c_str(),
              p->head_sha.empty() ? "(branch gone)" : p->head_sha.c_str());
  std::printf("base     %s @ %s\n", pull.base_branch.c_str(),
              p->base_sha.empty() ? "(branch gone)" : p->base_sha.c_str());
  if (!p->merged_sha.empty()) std::printf("merged   %s\n", p->merged_sha.c_str());
  std::printf("labels   %s\n", i.labels.empty() ? "-" : Join(i.labels, ", ").c_str());
  std::printf("created  %s, updated %s\n", wire::Time(i.created_ms).c_str(),
              wire::Time(i.updated_ms).c_str());
  if (!i.body.empty()) std::printf("\n%s", Indent(i.body, "  ").c_str());
  std::printf("\nreviews%s\n", reviews->empty() ? ": none" : "");
  for (const auto& shown : *reviews) {
    const Review r = Shown(shown);
    std::printf("  review %lld by %s: %s at %s, %s\n", static_cast<long long>(r.id),
                r.author.c_str(), r.verdict.c_str(), Short(r.commit_sha).c_str(),
                wire::Time(r.created_ms).c_str());
    if (!r.body.empty()) std::printf("%s", Indent(r.body, "    ").c_str());
    for (const auto& c : r.comments) {
      std::printf("    %s, %s: %s\n", wire::Anchor(c).c_str(), c.severity.c_str(), c.body.c_str());
    }
  }
  std::printf("\nstatuses of %s%s\n", Short(p->head_sha).c_str(), statuses.empty() ? ": none" : "");
  for (const auto& shown : statuses) {
    const CommitStatus s = Shown(shown);
    std::printf("  %-20s %-8s %s%s\n", s.context.c_str(), s.state.c_str(), s.description.c_str(),
                s.target_url.empty() ? "" : ("  " + s.target_url).c_str());
  }
  PrintComments(*comments);
  return 0;
}

int DoPrDiff(const Options& o) {
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  auto patch = (*f)->Diff(o.repo, o.number);
  if (!patch.ok()) return Fail(patch.error());
  // The patch holds what the agent wrote: on a terminal it is shown, never
  // obeyed; into a pipe (git apply) it goes byte for byte.
  std::string shown = ::isatty(STDOUT_FILENO) ? ForTerminal(*patch) : *patch;
  std::fwrite(shown.data(), 1, shown.size(), stdout);
  return 0;
}

int DoPrApprove(const Options& o) {
  auto body = BodyText(o);
  if (!body.ok()) return Fail(body.error());
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  Review r;
  r.verdict = "approve";
  r.body = *body;
  auto out = (*f)->AddReview(o.repo, o.number, r);
  if (!out.ok()) return Fail(out.error());
  if (o.json) {
    auto ctx = JsonFor(o, **f);
    if (!ctx.ok()) return Fail(ctx.error());
    PrintJson(wire::ReviewJson(ctx->links, ctx->repo, o.number, *out));
  } else {
    std::printf("#%lld approved at %s (review %lld)\n", static_cast<long long>(o.number),
                Short(out->commit_sha).c_str(), static_cast<long long>(out->id));
  }
  return 0;
}

int DoPrMerge(const Options& o) {
  auto f = OpenLocal(o);
  if (!f.ok()) return Fail(f.error());
  auto p = (*f)->Merge(o.repo, o.number);
  if (!p.ok()) return Fail(p.error());
  if (o.json) {
    auto ctx = JsonFor(o, **f);
    if (!ctx.ok()) return Fail(ctx.error());
    PrintJson(wire::PullJson(ctx->links, ctx->repo, *p));
  } else {
    std::printf("#%lld merged into %s: %s\n", static_cast<long long>(o.number),
                ForTerminalLine(p->base_branch).c_str(), p->merged_sha.c_str());
  }
  return 0;
}

// --- registration --------------------------------------------------------------

// A verb with its own options, --config and --as; json adds --json.
CLI::App* Verb(CLI::App* parent, const std::string& name, const std::string& help,
               std::shared_ptr<Options> o, int* exit_code, std::function<int(const Options&)> run,
               bool json) {
  CLI::App* cmd = parent->add_subcommand(name, help);
  cmd->add_option("--config", o->config, "configuration file (default /etc/kiln/kiln.yaml)");
  cmd->add_option("--as", o->as, "acting user (default $KILN_USER, else your login name)");
  if (json) cmd->add_flag("--json", o->json, "JSON output (the API's shapes)");
  cmd->callback([o, exit_code, run] { *exit_code = run(*o); });
  return cmd;
}

void RepoAndNumber(CLI::App* cmd, Options* o) {
  cmd->add_option("--repo", o->repo, "repository, owner/name")->required();
  cmd->add_option("number", o->number, "issue or pull request number")->required();
}

void BodyOptions(CLI::App* cmd, Options* o, const std::string& what) {
  cmd->add_option("--body,-b", o->body, what);
  cmd->add_option("--body-file", o->body_file, "read the " + what + " from a file ('-': stdin)");
}

std::shared_ptr<Options> New() { return std::make_shared<Options>(); }

}  // namespace

void Register(CLI::App& app, int* exit_code) {
  // kiln forge ...
  CLI::App* forge =
      app.add_subcommand("forge", "The local forge: repositories, users, events, API");
  forge->require_subcommand(1);
  {
    auto o = New();
    CLI::App* c = Verb(forge, "init", "Create a repository from a directory or git repository", o,
                       exit_code, DoInit, true);
    c->add_option("repo", o->repo, "the new repository, owner/name")->required();
    c->add_option("--from", o->from, "a directory (its files) or a git repository (its branches)")
        ->required();
    c->add_option("--maintainer", o->maintainers,
                  "a maintainer (repeatable; default: the acting user)");
    c->add_option("--default-branch", o->default_branch,
                  "default branch (default: main, or the repository's current branch)");
  }
  Verb(forge, "repos", "List the repositories", New(), exit_code, DoRepos, true);
  {
    CLI::App* user = forge->add_subcommand("user", "API users and their tokens");
    user->require_subcommand(1);
    auto o = New();
    CLI::App* add = Verb(user, "add", "Create a user and print its API token (shown once)", o,
                         exit_code, DoUserAdd, false);
    add->add_option("name", o->name, "user name")->required();
    add->add_flag("--rotate", o->rotate, "replace the token of an existing user");
    Verb(user, "list", "List the users", New(), exit_code, DoUserList, true);
  }
  {
    auto o = New();
    CLI::App* c = Verb(forge, "events", "The latest events of the inbox, newest first", o,
                       exit_code, DoEvents, true);
    c->add_option("--repo", o->repo, "only this repository's");
    c->add_option("--limit", o->limit, "at most this many (default 50; 0: all)");
  }
  {
    auto o = New();
    CLI::App* c = Verb(forge, "serve", "Serve the forge's HTTP API until SIGINT or SIGTERM", o,
                       exit_code, DoServe, false);
    c->add_option("--listen", o->listen, "HOST:PORT (default 127.0.0.1:8089)");
  }

  // kiln issue ...
  CLI::App* issue = app.add_subcommand("issue", "Issues of the local forge");
  issue->require_subcommand(1);
  {
    auto o = New();
    CLI::App* c =
        Verb(issue, "new", "Open an issue; prints owner/name#N", o, exit_code, DoIssueNew, true);
    c->add_option("--repo", o->repo, "repository, owner/name")->required();
    c->add_option("--title,-t", o->title, "one line")->required();
    BodyOptions(c, o.get(), "issue text");
    c->add_option("--label,-l", o->labels, "a label (repeatable)");
  }
  {
    auto o = New();
    CLI::App* c =
        Verb(issue, "list", "List issues (not pull requests)", o, exit_code, DoIssueList, true);
    c->add_option("--repo", o->repo, "repository, owner/name")->required();
    c->add_option("--state", o->state, "open (default), closed or all")
        ->check(CLI::IsMember({"open", "closed", "all"}));
    c->add_option("--label,-l", o->label, "only issues with this label");
  }
  {
    auto o = New();
    CLI::App* c =
        Verb(issue, "show", "Show an issue and its comments", o, exit_code, DoIssueShow, true);
    RepoAndNumber(c, o.get());
  }
  {
    auto o = New();
    CLI::App* c = Verb(issue, "label", "Add and remove labels", o, exit_code, DoIssueLabel, false);
    RepoAndNumber(c, o.get());
    c->add_option("--add,-a", o->add, "labels to add");
    c->add_option("--remove,-r", o->remove, "labels to remove");
  }
  {
    auto o = New();
    CLI::App* c = Verb(issue, "comment", "Comment on an issue or pull request", o, exit_code,
                       DoIssueComment, true);
    RepoAndNumber(c, o.get());
    BodyOptions(c, o.get(), "comment");
    c->add_option("--edit", o->edit, "edit this comment (its id) in place instead");
  }
  {
    auto o = New();
    CLI::App* c = Verb(
        issue, "close", "Close an issue", o, exit_code,
        [](const Options& x) { return DoClose(x, false); }, false);
    RepoAndNumber(c, o.get());
  }
  {
    auto o = New();
    CLI::App* c = Verb(
        issue, "reopen", "Reopen a closed issue", o, exit_code,
        [](const Options& x) { return DoClose(x, true); }, false);
    RepoAndNumber(c, o.get());
  }

  // kiln pr ...
  CLI::App* pr = app.add_subcommand("pr", "Pull requests of the local forge");
  pr->require_subcommand(1);
  {
    auto o = New();
    CLI::App* c =
        Verb(pr, "new", "Open a pull request; prints owner/name#N", o, exit_code, DoPrNew, true);
    c->add_option("--repo", o->repo, "repository, owner/name")->required();
    c->add_option("--head", o->head, "the branch with the changes")->required();
    c->add_option("--base", o->base, "the branch to merge into (default: the default branch)");
    c->add_option("--title,-t", o->title, "one line")->required();
    BodyOptions(c, o.get(), "description");
  }
  {
    auto o = New();
    CLI::App* c = Verb(pr, "list", "List pull requests", o, exit_code, DoPrList, true);
    c->add_option("--repo", o->repo, "repository, owner/name")->required();
    c->add_option("--state", o->state, "open (default), closed, merged or all")
        ->check(CLI::IsMember({"open", "closed", "merged", "all"}));
  }
  {
    auto o = New();
    CLI::App* c = Verb(pr, "show", "Show a pull request: branches, reviews, statuses, comments", o,
                       exit_code, DoPrShow, true);
    RepoAndNumber(c, o.get());
  }
  {
    auto o = New();
    CLI::App* c = Verb(pr, "diff", "Print a pull request's diff", o, exit_code, DoPrDiff, false);
    RepoAndNumber(c, o.get());
  }
  {
    auto o = New();
    CLI::App* c =
        Verb(pr, "approve", "Approve a pull request (a review)", o, exit_code, DoPrApprove, true);
    RepoAndNumber(c, o.get());
    BodyOptions(c, o.get(), "review text");
  }
  {
    auto o = New();
    CLI::App* c =
        Verb(pr, "merge", "Merge a pull request (maintainers)", o, exit_code, DoPrMerge, true);
    RepoAndNumber(c, o.get());
  }
  {
    auto o = New();
    CLI::App* c = Verb(
        pr, "close", "Close a pull request without merging", o, exit_code,
        [](const Options& x) { return DoClose(x, false); }, false);
    RepoAndNumber(c, o.get());
  }
}

}  // namespace kiln::forge::cli
