// Benchmark driver for tests/bench/workspace.sh: provisions a run's workspace
// the way the controller does (Resolve, Tree, MountWorkspace) and prints the
// time of each step as one JSON object per run, then tears the workspace down
// (timed apart, not part of provisioning).
//
//   kiln-workspace-bench --root CACHE --url URL --rev REV --run-dir DIR
//                        [--uid 200001000] [--gid 200001000] [--runs 1] [--collect]
//
// --collect also times Collect on the fresh (unchanged) workspace: the cost
// of reading a run's result when the run changed nothing, i.e. the walk and
// hashing of every file.
#include <chrono>
#include <cstdio>
#include <string>

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
  app.add_option("--root", root, "cache root")->required();
  app.add_option("--url", url, "repository URL or path")->required();
  app.add_option("--rev", rev, "revision")->required();
  app.add_option("--run-dir", run_dir, "run directory (upper, work, workspace)")->required();
  app.add_option("--uid", uid, "owner of the tree (host uid)");
  app.add_option("--gid", gid, "group of the tree (host gid)");
  app.add_option("--runs", runs, "runs, one after the other");
  app.add_flag("--collect", collect, "also time Collect on the fresh workspace");
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
    if (collect) {
      auto t3 = Clock::now();
      auto diff = kiln::git::Collect(resolved->mirror_path, resolved->commit, ws->merged);
      if (!diff) return Die(diff.error());
      extra = ",\"collect_ms\":" + std::to_string(Ms(t3)) +
              ",\"collect_files\":" + std::to_string(diff->files_total);
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
