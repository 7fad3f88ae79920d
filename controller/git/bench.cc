// Benchmark driver for tests/bench/workspace.sh: provisions a run's workspace
// the way the controller does (Resolve, Tree, MountWorkspace) and prints the
// time of each step as one JSON object per run, then tears the workspace down
// (timed apart, not part of provisioning).
//
//   kiln-workspace-bench --root CACHE --url URL --rev REV --run-dir DIR
//                        [--uid 200001000] [--gid 200001000] [--runs 1]
//                        [--collect [--modify PATH]...]
//
// --collect also times Collect on the fresh (unchanged) workspace, walking
// every file (the cost of a workspace without an upper directory) and
// guided by the overlay's upper directory (the runner's way); then, when
// --modify names files, appends a line to each through the overlay and times
// both walks again: the cost of reading a small change in a large tree.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "controller/git/git.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

int Die(const kiln::Error& e) {
  std::fprintf(stderr, "kiln-workspace-bench: %s\n", e.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times the provisioning of a run's workspace"};
  std::string root, url, rev, run_dir;
  uid_t uid = 200001000;
  gid_t gid = 200001000;
  int runs = 1;
  bool collect = false;
  std::vector<std::string> modify;
  app.add_option("--root", root, "cache root")->required();
  app.add_option("--url", url, "repository URL or path")->required();
  app.add_option("--rev", rev, "revision")->required();
  app.add_option("--run-dir", run_dir, "run directory (upper, work, workspace)")->required();
  app.add_option("--uid", uid, "owner of the tree (host uid)");
  app.add_option("--gid", gid, "group of the tree (host gid)");
  app.add_option("--runs", runs, "runs, one after the other");
  app.add_flag("--collect", collect, "also time Collect on the fresh workspace");
  app.add_option("--modify", modify, "with --collect: change these files, collect again");
  CLI11_PARSE(app, argc, argv);

  kiln::git::Cache cache(root);
  for (int i = 0; i < runs; ++i) {
    auto t0 = Clock::now();
    auto resolved = cache.Resolve(url, rev);
    if (!resolved) return Die(resolved.error());
    double resolve_ms = Ms(t0);
    auto t1 = Clock::now();
    auto tree = cache.Tree(*resolved, uid, gid);
    if (!tree) return Die(tree.error());
    double tree_ms = Ms(t1);
    auto t2 = Clock::now();
    auto ws = kiln::git::MountWorkspace(*tree, run_dir, uid, gid);
    if (!ws) return Die(ws.error());
    double mount_ms = Ms(t2);
    double total_ms = Ms(t0);
    std::string extra;
    // Times Collect, guided by the upper directory or not, as ",NAME_ms":T,
    // ",NAME_files":N.
    auto time_collect = [&](const std::string& name, bool guided) -> kiln::Status {
      kiln::git::DiffOptions options;
      if (guided) options.upper = ws->upper;
      auto t = Clock::now();
      auto diff = kiln::git::Collect(resolved->mirror_path, resolved->commit, ws->merged, options);
      if (!diff) return diff.error();
      extra += ",\"" + name + "_ms\":" + std::to_string(Ms(t)) + ",\"" + name +
               "_files\":" + std::to_string(diff->files_total);
      return kiln::Ok();
    };
    if (collect) {
      if (auto s = time_collect("collect", false); !s) return Die(s.error());
      if (auto s = time_collect("collect_upper", true); !s) return Die(s.error());
      if (!modify.empty()) {
        for (const std::string& path : modify) {
          std::ofstream(ws->merged + "/" + path, std::ios::app) << "changed\n";
        }
        if (auto s = time_collect("changed_upper", true); !s) return Die(s.error());
        if (auto s = time_collect("changed", false); !s) return Die(s.error());
      }
    }
    auto t4 = Clock::now();
    if (auto s = kiln::git::RemoveWorkspace(run_dir); !s) return Die(s.error());
    std::printf(
        "{\"run\":%d,\"commit\":\"%s\",\"fetched\":%s,\"resolve_ms\":%.3f,\"tree_ms\":%.3f,"
        "\"mount_ms\":%.3f,\"total_ms\":%.3f,\"remove_ms\":%.3f%s}\n",
        i, resolved->commit.c_str(), resolved->fetched ? "true" : "false", resolve_ms, tree_ms,
        mount_ms, total_ms, Ms(t4), extra.c_str());
  }
  return 0;
}
