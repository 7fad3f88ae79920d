// The fixture of the suites that drive the factory end to end (the pipeline,
// the improver): the real kiln binary, the local forge holding the demo's
// sample repository, the real skills, the scripted model server.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/support/factory_test.h"

namespace kiln::testing {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kRepo[] = "acme/stats";

class PipelineTest : public FactoryTest {
 protected:
  // The scripted model server with script, a configuration, and a forge
  // holding the demo's sample repository.
  void Setup(const std::string& script_path, const std::string& extra_config = "") {
    Configure(script_path, "pipeline: {api_listen: \"\"}\n" + extra_config);
    // The forge's repositories live under the state directory, which this
    // test process shares: a per-test repository name keeps them apart.
    repo_ = std::string(kRepo) + "-" + fs::path(root_).filename().string().substr(10);
    Ok({"forge", "init", repo_, "--from", std::string(KILN_SOURCE_DIR) + "/demo/sample",
        "--maintainer", "maintainer"});
  }

  Outcome Kiln(std::vector<std::string> args) {
    args.insert(args.begin(), KilnBinary());
    args.push_back("--config");
    args.push_back(config_);
    RunOptions o;
    o.timeout_seconds = 400;
    return kiln::testing::Run(args, o);
  }

  std::string Ok(std::vector<std::string> args) {
    Outcome o = Kiln(args);
    std::string cmd;
    for (const auto& a : args) cmd += a + " ";
    EXPECT_EQ(o.status, 0) << cmd << "\n" << o.out << o.err;
    return o.out;
  }

  json Json(std::vector<std::string> args) {
    args.push_back("--json");
    std::string out = Ok(args);
    json j = json::parse(out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << out;
    return j;
  }

  void Drive() { Ok({"serve", "--until-idle"}); }

  json Issue(int n) { return Json({"issue", "show", "--repo", repo_, std::to_string(n)}); }
  json Pull(int n) { return Json({"pr", "show", "--repo", repo_, std::to_string(n)}); }

  // The open pull request whose head is branch (0: none).
  int PullFor(const std::string& branch) {
    for (const auto& p : Json({"pr", "list", "--repo", repo_})) {
      if (p["head"]["ref"] == branch) return p["number"];
    }
    return 0;
  }

  std::vector<std::string> Labels(const json& issue) {
    std::vector<std::string> out;
    for (const auto& l : issue["labels"]) out.push_back(l["name"]);
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<json> LogRecords(const std::string& run_id) {
    json run = Json({"runs", "show", run_id});
    std::vector<json> out;
    std::ifstream in(run["log_path"].get<std::string>());
    std::string line;
    while (std::getline(in, line)) out.push_back(json::parse(line));
    return out;
  }

  std::vector<std::string> Refusals(const std::string& run_id) {
    std::vector<std::string> out;
    for (const auto& r : LogRecords(run_id)) {
      if (r["type"] == "controller" && r["payload"].value("event", "") == "refused") {
        out.push_back(r["payload"]["message"]);
      }
    }
    return out;
  }

  // Runs of a role, oldest first.
  std::vector<json> Runs(const std::string& role) {
    std::vector<json> out;
    for (const auto& r : Json({"runs", "list"})) {
      if (r["role"] == role) out.insert(out.begin(), r);
    }
    return out;
  }

  // The forge's bare repository of repo_.
  std::string ForgeGitDir() {
    for (const auto& r : Json({"forge", "repos"})) {
      if (r["full_name"] == repo_) return r["clone_url"];
    }
    ADD_FAILURE() << "no repository " << repo_ << " in `kiln forge repos`";
    return "";
  }

  // A person's pull request, opened by the maintainer: a README change (a
  // ninth line) pushed with plain git to branch docs. Returns its number.
  int OpenDocsPull() {
    std::string clone = root_ + "/clone";
    Outcome c = kiln::testing::Run(
        {"/bin/sh", "-c",
         "git clone -q " + ForgeGitDir() + " " + clone + " && cd " + clone +
             " && git checkout -q -b docs && printf 'more\\n' >> README.md && git -c user.name=p "
             "-c user.email=p@p commit -qam docs && git push -q origin docs"});
    EXPECT_EQ(c.status, 0) << c.out << c.err;
    Ok({"pr", "new", "--repo", repo_, "--head", "docs", "--title", "More docs", "--as",
        "maintainer"});
    return PullFor("docs");
  }

  std::string repo_;
};

}  // namespace kiln::testing
