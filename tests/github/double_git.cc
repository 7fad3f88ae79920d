// git in the double: running the git CLI, reading branches and diffs of the
// bare repositories, and serving smart HTTP through `git http-backend` as a
// CGI program, with a push's ref changes turned into webhooks.
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "base/strings.h"
#include "tests/github/double_internal.h"

extern char** environ;

namespace kiln::testing {

namespace ghd {

namespace {

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(std::string("write: ") + std::strerror(errno));
    off += static_cast<size_t>(n);
  }
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Parses "-a,b" or "+c,d" (b and d default to 1) into a set of lines.
void AddRange(const std::string& spec, std::set<int>* lines) {
  size_t comma = spec.find(',');
  int start = std::stoi(spec.substr(1, comma == std::string::npos ? std::string::npos : comma - 1));
  int count = comma == std::string::npos ? 1 : std::stoi(spec.substr(comma + 1));
  for (int i = 0; i < count; ++i) lines->insert(start + i);
}

std::string StripPrefix(const std::string& path) {
  if (path == "/dev/null") return "";
  if (path.size() > 2 && (path.rfind("a/", 0) == 0 || path.rfind("b/", 0) == 0)) {
    return path.substr(2);
  }
  return path;
}

}  // namespace

ProcResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
               const std::string& input) {
  int in_fd = ::memfd_create("stdin", MFD_CLOEXEC);
  int err_fd = ::memfd_create("stderr", MFD_CLOEXEC);
  int out_pipe[2];
  if (in_fd < 0 || err_fd < 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("memfd_create/pipe2: ") + std::strerror(errno));
  }
  WriteAll(in_fd, input);
  ::lseek(in_fd, 0, SEEK_SET);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, argv[0].c_str(), &fa, nullptr, args.data(),
                          env.empty() ? environ : envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(out_pipe[1]);
  ::close(in_fd);
  ProcResult r;
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_fd);
    throw std::runtime_error("posix_spawnp('" + argv[0] + "'): " + std::strerror(rc));
  }
  r.out = ReadAll(out_pipe[0]);
  ::close(out_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  ::lseek(err_fd, 0, SEEK_SET);
  r.err = ReadAll(err_fd);
  ::close(err_fd);
  return r;
}

std::string Git(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"git"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcResult r = Run(argv);
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    throw std::runtime_error("github double: `" + cmd + "` failed: " + r.err);
  }
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

std::map<std::string, DiffLines> ParseDiff(const std::string& diff) {
  std::map<std::string, DiffLines> files;
  DiffLines* current = nullptr;
  std::string old_path;
  int old_left = 0;
  int new_left = 0;
  for (const std::string& line : Split(diff, '\n')) {
    if (old_left > 0 || new_left > 0) {  // inside a hunk: content lines only
      char c = line.empty() ? ' ' : line[0];
      if (c == ' ' || c == '-') --old_left;
      if (c == ' ' || c == '+') --new_left;
      continue;
    }
    if (line.rfind("diff --git ", 0) == 0) {
      current = nullptr;
    } else if (line.rfind("--- ", 0) == 0) {
      old_path = StripPrefix(line.substr(4));
    } else if (line.rfind("+++ ", 0) == 0) {
      std::string path = StripPrefix(line.substr(4));
      current = &files[path.empty() ? old_path : path];
    } else if (line.rfind("@@ ", 0) == 0 && current != nullptr) {
      size_t minus = line.find(" -");
      size_t plus = line.find(" +", minus + 1);
      size_t close = line.find(" @@", plus + 1);
      if (minus == std::string::npos || plus == std::string::npos || close == std::string::npos) {
        continue;
      }
      std::string old_spec = line.substr(minus + 1, plus - minus - 1);
      std::string new_spec = line.substr(plus + 1, close - plus - 1);
      std::set<int> old_lines, new_lines;
      AddRange(old_spec, &old_lines);
      AddRange(new_spec, &new_lines);
      current->left.insert(old_lines.begin(), old_lines.end());
      current->right.insert(new_lines.begin(), new_lines.end());
      current->hunks.push_back({old_lines, new_lines});
      old_left = static_cast<int>(old_lines.size());
      new_left = static_cast<int>(new_lines.size());
      if (current->first_hunk.empty()) current->first_hunk = line;
    }
  }
  return files;
}

}  // namespace ghd

std::map<std::string, std::string> GitHubDouble::Impl::Branches(const std::string& bare) {
  std::string out = ghd::Git(
      {"--git-dir", bare, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/"});
  std::map<std::string, std::string> branches;
  for (const std::string& line : Split(out, '\n')) {
    size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    branches[line.substr(space + 1 + std::strlen("refs/heads/"))] = line.substr(0, space);
  }
  return branches;
}

std::string GitHubDouble::Impl::BranchShaLocked(ghd::Repo& repo, const std::string& branch) {
  if (!repo.branches) repo.branches = Branches(repo.bare);
  auto it = repo.branches->find(branch);
  return it == repo.branches->end() ? "" : it->second;
}

ghd::Reply GitHubDouble::Impl::ServeGit(const ghd::Call& call, const std::string& remote_user,
                                        const std::string& repo_name) {
  std::string bare;
  {
    std::lock_guard<std::mutex> lock(mu);
    ghd::Repo* repo = FindRepo(repo_name);
    if (repo != nullptr) bare = repo->bare;
  }
  if (bare.empty()) return ghd::Reply{404, {{"content-type", "text/plain"}}, "Not Found\n"};
  bool receive = call.method == "POST" && call.path.size() >= 17 &&
                 call.path.compare(call.path.size() - 17, 17, "/git-receive-pack") == 0;
  std::map<std::string, std::string> before;
  if (receive) before = Branches(bare);
  auto header = [&](const char* name) {
    auto it = call.headers.find(name);
    return it == call.headers.end() ? std::string() : it->second;
  };
  size_t q = call.target.find('?');
  const char* path_env = std::getenv("PATH");
  std::vector<std::string> env = {
      "GIT_PROJECT_ROOT=" + opt.dir + "/repos",
      "GIT_HTTP_EXPORT_ALL=1",
      "GIT_CONFIG_NOSYSTEM=1",
      "HOME=" + opt.dir,
      "PATH=" + std::string(path_env != nullptr ? path_env : "/usr/bin:/bin"),
      "PATH_INFO=" + call.path,
      "QUERY_STRING=" + (q == std::string::npos ? "" : call.target.substr(q + 1)),
      "REQUEST_METHOD=" + call.method,
      "CONTENT_TYPE=" + header("content-type"),
      "CONTENT_LENGTH=" + std::to_string(call.body.size()),
      "REMOTE_USER=" + remote_user,
      "REMOTE_ADDR=127.0.0.1",
      "GATEWAY_INTERFACE=CGI/1.1",
      "SERVER_PROTOCOL=HTTP/1.1",
  };
  if (!header("content-encoding").empty()) {
    env.push_back("HTTP_CONTENT_ENCODING=" + header("content-encoding"));
  }
  if (!header("git-protocol").empty()) env.push_back("GIT_PROTOCOL=" + header("git-protocol"));
  ghd::ProcResult r = ghd::Run({"git", "http-backend"}, env, call.body);
  ghd::Reply reply;
  size_t split = r.out.find("\r\n\r\n");
  size_t sep = 4;
  size_t lf = r.out.find("\n\n");
  if (lf != std::string::npos && (split == std::string::npos || lf < split)) {
    split = lf;
    sep = 2;
  }
  if (split == std::string::npos) {
    return ghd::Reply{500, {{"content-type", "text/plain"}}, "git http-backend: " + r.err};
  }
  std::string head = r.out.substr(0, split);
  reply.body = r.out.substr(split + sep);
  size_t start = 0;
  while (start < head.size()) {
    size_t end = head.find('\n', start);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (name == "Status") {
      reply.status = std::stoi(value);
    } else {
      reply.headers.emplace_back(name, value);
    }
  }
  if (receive) {
    std::map<std::string, std::string> after = Branches(bare);
    std::lock_guard<std::mutex> lock(mu);
    ghd::Repo* repo = FindRepo(repo_name);
    if (repo != nullptr) {
      repo->branches.reset();
      if (after != before) RefsChanged(*repo, before, after, remote_user);
    }
  }
  return reply;
}

}  // namespace kiln::testing
