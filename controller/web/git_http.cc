#include "controller/web/git_http.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <vector>

#include "base/process.h"
#include "base/strings.h"
#include "controller/forge/local.h"
#include "controller/git/bare.h"

namespace kiln::web {
namespace {

using forge::ApiRequest;
using forge::ApiResponse;

constexpr char kGitHttpBackend[] = "/usr/lib/git-core/git-http-backend";
constexpr size_t kPiece = 64 << 10;
// A push's ref updates come before its pack: read first, and checked, in
// at most this many bytes.
constexpr size_t kMaxCommands = 1 << 20;

ApiResponse Text(int status, const std::string& message) {
  ApiResponse out;
  out.status = status;
  out.content_type = "text/plain; charset=utf-8";
  out.body = message + "\n";
  return out;
}

struct GitPath {
  std::string repo;     // "owner/name"
  std::string service;  // "info/refs", "git-upload-pack", "git-receive-pack"
};

std::optional<GitPath> Parse(std::string_view path) {
  std::vector<std::string> seg = Split(path, '/');
  // "", owner, name.git, service...
  if (seg.size() < 4 || !seg[0].empty() || !seg[2].ends_with(".git")) return std::nullopt;
  std::string service = seg[3];
  if (seg.size() == 5 && seg[3] == "info" && seg[4] == "refs") {
    service = "info/refs";
  } else if (seg.size() != 4 || (service != "git-upload-pack" && service != "git-receive-pack")) {
    return std::nullopt;
  }
  return GitPath{seg[1] + "/" + seg[2].substr(0, seg[2].size() - 4), service};
}

// The ref updates a receive-pack request asks for: its pkt-lines up to the
// first flush, "OLD NEW REF" each (the first with capabilities after a NUL).
struct Update {
  std::string old_sha, new_sha, ref;
};
// The length a pkt-line at body[at] declares (its four hex digits, 0 for a
// flush); nullopt when they are not hex.
std::optional<unsigned> PktLen(std::string_view body, size_t at) {
  unsigned len = 0;
  for (size_t i = 0; i < 4; ++i) {
    const char c = body[at + i];
    const int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                  : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                                                              : -1;
    if (v < 0) return std::nullopt;
    len = len * 16 + static_cast<unsigned>(v);
  }
  return len;
}

std::optional<std::vector<Update>> Updates(std::string_view body, std::string* caps) {
  std::vector<Update> out;
  size_t at = 0;
  while (at + 4 <= body.size()) {
    auto pkt = PktLen(body, at);
    if (!pkt) return std::nullopt;
    const unsigned len = *pkt;
    if (len == 0) return out;  // flush: the pack follows
    if (len < 4 || at + len > body.size()) return std::nullopt;
    std::string_view line = body.substr(at + 4, len - 4);
    at += len;
    if (size_t nul = line.find('\0'); nul != std::string_view::npos) {
      *caps = std::string(line.substr(nul + 1));
      line = line.substr(0, nul);
    }
    if (line.ends_with('\n')) line.remove_suffix(1);
    std::vector<std::string> parts = Split(line, ' ');
    if (parts.size() != 3) return std::nullopt;
    out.push_back(Update{parts[0], parts[1], parts[2]});
  }
  return std::nullopt;
}

std::string Pkt(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t n = data.size() + 4;
  std::string out = {kHex[(n >> 12) & 15], kHex[(n >> 8) & 15], kHex[(n >> 4) & 15], kHex[n & 15]};
  return out + std::string(data);
}

// A receive-pack result refusing every update, as git reports it
// ("! [remote rejected] main -> main (why)"), in a side band when the client
// asked for one.
ApiResponse Refuse(const std::vector<Update>& updates, const std::string& caps,
                   const std::string& why) {
  std::string report = Pkt("unpack ok\n");
  for (const Update& u : updates) report += Pkt("ng " + u.ref + " " + why + "\n");
  report += "0000";
  ApiResponse out;
  out.content_type = "application/x-git-receive-pack-result";
  out.headers.emplace_back("Cache-Control", "no-cache");
  if (caps.find("side-band") != std::string::npos) {
    out.body = Pkt(std::string("\1") + report) + "0000";
  } else {
    out.body = report;
  }
  return out;
}

// A CGI reply's head (the lines before the blank one) as a response's
// status, type and headers.
ApiResponse CgiHead(std::string_view head) {
  ApiResponse out;
  for (const std::string& line : Split(head, '\n')) {
    std::string_view h = line;
    if (h.ends_with('\r')) h.remove_suffix(1);
    const size_t colon = h.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(h.substr(0, colon));
    std::string value(h.substr(colon + 1));
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (name == "Status") {
      out.status = std::atoi(value.c_str());
    } else if (name == "Content-Type") {
      out.content_type = value;
    } else {
      out.headers.emplace_back(name, value);
    }
  }
  return out;
}

// Whether body holds a push's ref updates up to their flush, or shows it
// never will (not pkt-lines: Updates says so); false while more may come.
bool CommandsRead(std::string_view body) {
  size_t at = 0;
  while (at + 4 <= body.size()) {
    auto len = PktLen(body, at);
    if (!len || *len == 0 || *len < 4) return true;
    at += *len;
  }
  return false;
}

}  // namespace

bool GitHttp::Matches(std::string_view path) { return Parse(path).has_value(); }

void GitHttp::Stream(const ApiRequest& r, const std::string& user, forge::Exchange& x) {
  auto reply = [&](const ApiResponse& out) {
    if (Status st = x.Reply(out); !st.ok()) spdlog::warn("git over HTTP: {}", st.error().message());
  };
  const std::string_view target = r.target;
  const size_t q = target.find('?');
  const std::string path(target.substr(0, q));
  const std::string query(q == std::string_view::npos ? "" : target.substr(q + 1));
  auto gp = Parse(path);
  if (!gp) return reply(Text(404, "not a git path"));
  if (gp->service == "info/refs" ? r.method != "GET" : r.method != "POST") {
    return reply(
        Text(405, "git's smart HTTP: GET info/refs, POST git-upload-pack or git-receive-pack"));
  }
  if (gp->service == "info/refs" && query != "service=git-upload-pack" &&
      query != "service=git-receive-pack") {
    return reply(
        Text(403, "only git's smart HTTP protocol is served (a git client adds ?service=...)"));
  }
  auto forge = forge::Local::Open(store_path_, repos_dir_, user, forge::Access::kUser);
  if (!forge) return reply(Text(500, forge.error().message()));
  auto repo = (*forge)->GetRepo(gp->repo);
  if (!repo) return reply(Text(404, "no repository " + gp->repo + " on this forge"));
  const std::string& bare = repo->info.clone_url;
  const bool maintainer = std::find(repo->maintainers.begin(), repo->maintainers.end(), user) !=
                          repo->maintainers.end();
  // The body read so far: a push's ref updates, read and checked before
  // anything reaches git.
  std::string prefix;
  uint64_t body_bytes = 0;
  std::map<std::string, std::string> before;
  const std::string too_large =
      "the push is larger than " + std::to_string(kMaxPush >> 30) + " GiB";
  if (auto length = r.headers.find("content-length");
      length != r.headers.end() && std::strtoull(length->second.c_str(), nullptr, 10) > kMaxPush) {
    return reply(Text(413, too_large));
  }
  if (gp->service == "git-receive-pack") {
    while (!CommandsRead(prefix)) {
      auto piece = x.ReadBody(kPiece);
      if (!piece) return spdlog::warn("git push to {}: {}", gp->repo, piece.error().message());
      if (piece->empty()) break;
      prefix += *piece;
      if (prefix.size() > kMaxCommands) {
        return reply(Text(400, "the push's ref updates take more than 1 MiB"));
      }
    }
    body_bytes = prefix.size();
    std::string caps;
    auto updates = Updates(prefix, &caps);
    if (!updates) return reply(Text(400, "the push's ref updates are not git pkt-lines"));
    // A refusal goes after the pack, which is read and dropped: git takes a
    // reply that comes before its upload ends for a broken connection.
    auto refuse = [&](const std::string& why) {
      for (uint64_t dropped = prefix.size(); dropped <= kMaxPush;) {
        auto piece = x.ReadBody(kPiece);
        if (!piece || piece->empty()) break;
        dropped += piece->size();
      }
      reply(Refuse(*updates, caps, why));
    };
    for (const Update& u : *updates) {
      if (!u.ref.starts_with("refs/heads/")) {
        return refuse("only branches (refs/heads/...) are pushed here");
      }
      if (u.ref == "refs/heads/" + repo->info.default_branch && !maintainer) {
        return refuse("protected branch: " + repo->info.default_branch + " of " + gp->repo +
                      " takes pushes from its maintainers only; push another branch and open a "
                      "pull request");
      }
    }
    auto b = git::bare::Branches(bare);
    if (!b) return reply(Text(500, b.error().message()));
    before = std::move(*b);
  }
  // The CGI's environment: nothing of the daemon's but what git needs.
  const size_t slash = bare.rfind('/');
  std::vector<std::string> env = {
      "PATH=/usr/bin:/bin",    "GIT_PROJECT_ROOT=" + bare.substr(0, slash),
      "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1",
      "HOME=/nonexistent",     "PATH_INFO=/" + bare.substr(slash + 1) + "/" + gp->service,
      "QUERY_STRING=" + query, "REQUEST_METHOD=" + r.method,
      "REMOTE_USER=" + user,   "REMOTE_ADDR=127.0.0.1",
  };
  // Without a length (a chunked body), git http-backend reads to the end.
  for (const auto& [header, var] :
       std::map<std::string, std::string>{{"content-length", "CONTENT_LENGTH"},
                                          {"content-type", "CONTENT_TYPE"},
                                          {"content-encoding", "HTTP_CONTENT_ENCODING"},
                                          {"git-protocol", "GIT_PROTOCOL"}}) {
    if (auto it = r.headers.find(header); it != r.headers.end())
      env.push_back(var + "=" + it->second);
  }
  auto feed = [&]() -> Result<std::string> {
    if (!prefix.empty()) return std::exchange(prefix, std::string());
    KILN_ASSIGN_OR_RETURN(std::string piece, x.ReadBody(kPiece));
    body_bytes += piece.size();
    if (body_bytes > kMaxPush) return Error::Invalid(too_large);
    return piece;
  };
  // The reply: the CGI's head, held until its blank line, then its body
  // passed on as it comes.
  std::string head;
  std::optional<ApiResponse> began;
  auto out = [&](std::string_view piece) -> Status {
    if (began) return x.Write(piece);
    head.append(piece);
    size_t end = head.find("\r\n\r\n");
    size_t skip = 4;
    if (end == std::string::npos) {
      end = head.find("\n\n");
      skip = 2;
    }
    if (end == std::string::npos) {
      if (head.size() > kPiece) return Error::Invalid("git http-backend's reply has no head");
      return Ok();
    }
    began = CgiHead(std::string_view(head).substr(0, end));
    KILN_TRY(x.Begin(*began));
    return x.Write(std::string_view(head).substr(end + skip));
  };
  auto ran = RunPiped(kGitHttpBackend, {}, env, feed, out, kPiece);
  if (!ran || ran->status != 0 || !began) {
    const std::string why =
        !ran ? ran.error().message() : "exit " + std::to_string(ran->status) + ": " + ran->err;
    spdlog::warn("git http-backend for {}: {}", gp->repo, why);
    // Once the reply has begun, it is left without its end: git sees it cut.
    if (!began) reply(Text(500, "git http-backend failed: " + why));
    return;
  }
  if (Status st = x.End(); !st.ok()) {
    spdlog::warn("git over HTTP for {}: {}", gp->repo, st.error().message());
  }
  if (gp->service == "git-receive-pack" && began->status == 200) {
    // What moved: the forge's events, as a push through the forge records.
    auto after = git::bare::Branches(bare);
    if (!after) return spdlog::error("git push to {}: {}", gp->repo, after.error().message());
    for (const auto& [branch, sha] : *after) {
      auto was = before.find(branch);
      if (was != before.end() && was->second == sha) continue;
      bool forced = false;
      if (was != before.end()) {
        auto ff = git::bare::IsAncestor(bare, was->second, sha);
        forced = ff.ok() && !*ff;
      }
      Status st = (*forge)->RecordPush(gp->repo, branch, was == before.end() ? "" : was->second,
                                       sha, forced);
      if (!st.ok()) spdlog::error("git push to {}: {}", gp->repo, st.error().message());
    }
  }
}

}  // namespace kiln::web
