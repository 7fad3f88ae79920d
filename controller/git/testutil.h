// Helpers shared by the kiln_git tests: temporary directories, shell and git
// CLI commands (the git CLI is the oracle the tests check against), and small
// file utilities. Everything runs as root on the host.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/mountinfo.h"
#include "tests/support/temp_dir.h"

namespace kiln::git::testing {

// The uid and gid a sandbox's user has as seen from the host.
inline constexpr uid_t kUid = 200001000;
inline constexpr gid_t kGid = 200001000;

using TempDir = ::kiln::testing::TempDir;

// 'text' for a POSIX shell.
inline std::string ShQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

struct Output {
  int status = -1;
  std::string out;  // stdout and stderr
};

inline Output Sh(const std::string& command) {
  Output result;
  FILE* f = ::popen(("(" + command + ") 2>&1").c_str(), "r");
  if (f == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) result.out.append(buf, n);
  int status = ::pclose(f);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// git with no system or global configuration, a fixed identity, and every
// directory trusted (the trees belong to the sandbox's uid, not root).
inline std::string GitCommand(const std::string& dir, const std::string& args) {
  return "GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=kiln "
         "GIT_AUTHOR_EMAIL=kiln@example.com GIT_COMMITTER_NAME=kiln "
         "GIT_COMMITTER_EMAIL=kiln@example.com GIT_OPTIONAL_LOCKS=0 "
         "git -c safe.directory='*' -c init.defaultBranch=main -C " +
         ShQuote(dir) + " " + args;
}

// Runs git in dir; fails the test unless it succeeds. Returns its output
// without the last newline.
inline std::string Git(const std::string& dir, const std::string& args) {
  Output o = Sh(GitCommand(dir, args));
  EXPECT_EQ(o.status, 0) << "git -C " << dir << " " << args << ":\n" << o.out;
  if (!o.out.empty() && o.out.back() == '\n') o.out.pop_back();
  return o.out;
}

inline void WriteText(const std::string& path, const std::string& data) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A non-bare origin repository at dir, on branch main.
inline void InitRepo(const std::string& dir) {
  std::filesystem::create_directories(dir);
  Git(dir, "init -q");
}

// Stages everything in dir and commits; returns the new commit's sha.
inline std::string CommitAll(const std::string& dir, const std::string& message) {
  Git(dir, "add -A");
  Git(dir, "commit -q --allow-empty -m " + ShQuote(message));
  return Git(dir, "rev-parse HEAD");
}

inline bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Entry names of a directory, sorted.
inline std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace kiln::git::testing
