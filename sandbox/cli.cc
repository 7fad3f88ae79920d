#include "sandbox/cli.h"

#include <CLI/CLI.hpp>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <memory>

#include "base/fd.h"
#include "base/strings.h"
#include "sandbox/check.h"
#include "sandbox/state.h"
#include "sandbox/supervisor.h"

namespace kiln::sandbox::cli {

namespace {

constexpr int kUsage = 2;
constexpr int kSetupFailed = 125;

// Raw option values; parsed after CLI11 so that errors name the option.
struct RunOptions {
  Spec spec;
  std::vector<std::string> binds, tmpfs, env;
  std::string workspace, memory, pids, cpus, nofile, fsize, timeout, grace, rootfs_size, report;
  bool no_cgroup = false;
};

// "max" (or "none") turns a cgroup limit off.
Result<std::optional<uint64_t>> Limit(const std::string& text, std::string_view what, bool size) {
  if (text == "max" || text == "none") return std::optional<uint64_t>();
  if (size) {
    KILN_ASSIGN_OR_RETURN(uint64_t v, ParseSize(text, what));
    return std::optional<uint64_t>(v);
  }
  KILN_ASSIGN_OR_RETURN(uint64_t v, ParseUint(text, what));
  return std::optional<uint64_t>(v);
}

Status Complete(RunOptions& o) {
  Spec& s = o.spec;
  for (const auto& b : o.binds) {
    KILN_ASSIGN_OR_RETURN(BindMount m, ParseBind(b));
    s.binds.push_back(m);
  }
  for (const auto& t : o.tmpfs) {
    KILN_ASSIGN_OR_RETURN(TmpfsMount m, ParseTmpfs(t));
    s.tmpfs.push_back(m);
  }
  for (const auto& e : o.env) {
    KILN_ASSIGN_OR_RETURN(std::string kv, ParseEnv(e));
    s.env.push_back(kv);
  }
  if (!o.workspace.empty()) s.workspace = o.workspace;
  bool explicit_limits = !o.memory.empty() || !o.pids.empty() || !o.cpus.empty();
  if (!o.memory.empty()) {
    KILN_ASSIGN_OR_RETURN(s.limits.memory_bytes, Limit(o.memory, "--memory", true));
  }
  if (!o.pids.empty()) {
    KILN_ASSIGN_OR_RETURN(s.limits.pids, Limit(o.pids, "--pids", false));
  }
  if (!o.cpus.empty() && o.cpus != "max" && o.cpus != "none") {
    try {
      size_t used = 0;
      double v = std::stod(o.cpus, &used);
      if (used != o.cpus.size()) throw std::invalid_argument("trailing characters");
      s.limits.cpus = v;
    } catch (const std::exception&) {
      return Error::Invalid("--cpus: cannot parse " + Quote(o.cpus) +
                            " (expected a number of cores such as 1.5, or max)");
    }
  }
  if (!o.nofile.empty()) {
    KILN_ASSIGN_OR_RETURN(s.limits.nofile, ParseUint(o.nofile, "--nofile"));
  }
  if (!o.fsize.empty()) {
    KILN_ASSIGN_OR_RETURN(s.limits.fsize_bytes, ParseSize(o.fsize, "--fsize"));
  }
  if (!o.timeout.empty()) {
    KILN_ASSIGN_OR_RETURN(s.limits.timeout_ms, ParseDurationMs(o.timeout, "--timeout"));
  }
  if (!o.grace.empty()) {
    KILN_ASSIGN_OR_RETURN(s.limits.grace_ms, ParseDurationMs(o.grace, "--grace"));
  }
  if (!o.rootfs_size.empty()) {
    KILN_ASSIGN_OR_RETURN(s.limits.rootfs_bytes, ParseSize(o.rootfs_size, "--rootfs-size"));
  }
  if (o.no_cgroup || (::geteuid() != 0 && !explicit_limits)) {
    // Unprivileged users rarely own a cgroup; without one the pid namespace,
    // rlimits and RLIMIT_NPROC still hold, but memory is not capped.
    if (!o.no_cgroup) {
      spdlog::info(
          "running without cgroup limits: memory is not capped, processes are capped by "
          "RLIMIT_NPROC (unprivileged; pass --memory/--pids/--cpus with --cgroup-parent to "
          "use a delegated cgroup)");
    }
    if (o.memory.empty()) s.limits.memory_bytes.reset();
    if (o.cpus.empty()) s.limits.cpus.reset();
    s.use_cgroup = false;
  }
  return Ok();
}

void WriteReport(const std::string& path, const std::string& json) {
  if (path.empty()) return;
  if (auto s = WriteFileAtomic(path, json, 0644); !s)
    spdlog::error("--report: {}", s.error().message());
}

int DoRun(RunOptions& o) {
  if (auto s = Complete(o); !s) {
    spdlog::error("{}", s.error().message());
    return kUsage;
  }
  auto report = Run(o.spec);
  if (!report) {
    spdlog::error("{}", report.error().message());
    Report failed;
    failed.status = report.error().code() == Error::Code::kInvalidArgument ? kUsage : kSetupFailed;
    failed.error = report.error().message();
    WriteReport(o.report, ReportJson(failed));
    return failed.status;
  }
  if (!report->error.empty()) spdlog::error("{}", report->error);
  if (report->timed_out) spdlog::warn("timed out after {} ms", o.spec.limits.timeout_ms);
  if (report->oom_killed) spdlog::warn("out of memory: the kernel killed a process in the sandbox");
  WriteReport(o.report, ReportJson(*report));
  return report->status;
}

struct GcOptions {
  std::string state_dir, cgroup_root = "/sys/fs/cgroup", cgroup_parent = "kiln";
};

int DoGc(const GcOptions& o) {
  auto result = state::Gc(o.state_dir.empty() ? state::DefaultDir() : o.state_dir, o.cgroup_root,
                          o.cgroup_parent);
  for (const auto& id : result.removed) std::printf("removed %s\n", id.c_str());
  for (const auto& id : result.alive) std::printf("running %s\n", id.c_str());
  for (const auto& e : result.errors) spdlog::error("gc: {}", e);
  return result.errors.empty() ? 0 : 1;
}

struct CheckOptions {
  check::Options check;
  bool json = false;
  int inside_fd = -1;  // the trial's command: report to this descriptor
};

// 0 when kiln can isolate here (cgroup limits may still be missing), 1 when
// it cannot: a layer other than the cgroup's is not in force.
int DoCheck(const CheckOptions& o) {
  if (o.inside_fd >= 0) {
    Status st = WriteAll(o.inside_fd, check::InsideReport());
    return st.ok() ? 0 : 1;
  }
  check::Facts facts = check::Gather(o.check);
  check::Assessment a = check::Assess(facts);
  std::string out = o.json ? check::Json(facts, a) : check::Text(facts, a);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return a.can_isolate ? 0 : 1;
}

// `sandbox run` and its options, read into o.
CLI::App* AddRun(CLI::App& sandbox, const std::shared_ptr<RunOptions>& o) {
  auto* run = sandbox.add_subcommand(
      "run", "Run a command in a fresh sandbox: kiln sandbox run [options] -- CMD ARGS...");
  run->add_option("--image", o->spec.image,
                  "'host' (read-only host /usr, filtered /etc) or a root filesystem directory")
      ->capture_default_str();
  run->add_option("--layer", o->spec.layers,
                  "instead of --image: an image layer directory, bottom first (repeatable; "
                  "stacked as the overlay's lower layers)")
      ->allow_extra_args(false);
  run->add_option("--bind", o->binds, "SRC:DST[:ro] bind mount (repeatable)")
      ->allow_extra_args(false);
  run->add_option("--tmpfs", o->tmpfs, "DST[:SIZE] tmpfs mount (repeatable, default size 64M)")
      ->allow_extra_args(false);
  run->add_option("--workspace", o->workspace, "host directory mounted read-write at /workspace");
  run->add_option("--env", o->env, "NAME=VALUE, or NAME to copy kiln's value (repeatable)")
      ->allow_extra_args(false);
  run->add_option("--workdir", o->spec.workdir,
                  "working directory inside (default /workspace or /)");
  run->add_option("--hostname", o->spec.hostname, "hostname inside")->capture_default_str();
  run->add_option("--uid", o->spec.uid, "uid of the command inside")->capture_default_str();
  run->add_option("--gid", o->spec.gid, "gid of the command inside")->capture_default_str();
  run->add_option("--memory", o->memory, "memory limit, swap off (default 2G; 'max' for none)");
  run->add_option("--pids", o->pids, "process limit (default 1024; 'max' for none)");
  run->add_option("--cpus", o->cpus, "CPU quota in cores, e.g. 1.5 (default none)");
  run->add_option("--nofile", o->nofile, "RLIMIT_NOFILE (default 1024)");
  run->add_option("--fsize", o->fsize, "largest file the command may write (default 1G)");
  run->add_option("--timeout", o->timeout, "wall-clock limit, e.g. 30s (default none)");
  run->add_option("--grace", o->grace,
                  "time between SIGTERM and SIGKILL after the timeout (default 2s)");
  run->add_option("--rootfs-size", o->rootfs_size,
                  "size of the tmpfs holding the root's writable layer (default 1G)");
  run->add_flag("--no-cgroup", o->no_cgroup, "no cgroup: namespaces, rlimits and seccomp only");
  run->add_option("--seccomp-policy", o->spec.seccomp_policy,
                  "seccomp policy file (default: built-in)");
  run->add_flag("--seccomp-log", o->spec.seccomp_log, "print every denied system call");
  run->add_option("--pass-fd", o->spec.pass_fds,
                  "pass this open descriptor to the command (repeatable)")
      ->allow_extra_args(false);
  run->add_option("--state-dir", o->spec.state_dir,
                  "state directory (default /var/lib/kiln as root)");
  run->add_option("--cgroup-root", o->spec.cgroup_root, "where the cgroup hierarchies are mounted")
      ->capture_default_str();
  run->add_option("--cgroup-parent", o->spec.cgroup_parent,
                  "cgroup parent, relative to each hierarchy's root")
      ->capture_default_str();
  run->add_option("--id", o->spec.id, "sandbox id (default: random)");
  run->add_option("--report", o->report, "write a JSON report of the run to this file");
  run->add_option("command", o->spec.argv, "the command and its arguments, after --")->required();
  return run;
}

}  // namespace

void Register(CLI::App& app, int* exit_code,
              std::function<int(const std::string& state_dir)> extra_gc) {
  auto* sandbox = app.add_subcommand("sandbox", "Run commands in kiln's per-run containers");
  sandbox->require_subcommand(1);

  auto o = std::make_shared<RunOptions>();
  auto* run = AddRun(*sandbox, o);
  run->callback([o, exit_code]() { *exit_code = DoRun(*o); });

  auto c = std::make_shared<CheckOptions>();
  auto* chk = sandbox->add_subcommand(
      "check",
      "Report what this host gives kiln's isolation, layer by layer, with the fix for each that "
      "is missing; exits 1 when kiln cannot isolate here");
  chk->add_flag("--json", c->json, "print the report as JSON");
  chk->add_option("--state-dir", c->check.state_dir,
                  "state directory for the trial sandbox (default /var/lib/kiln as root)");
  chk->add_option("--cgroup-root", c->check.cgroup_root, "where the cgroup hierarchies are mounted")
      ->capture_default_str();
  chk->add_option("--cgroup-parent", c->check.cgroup_parent, "cgroup parent for the trial sandbox")
      ->capture_default_str();
  chk->add_option("--inside-fd", c->inside_fd,
                  "(kiln's own) report what this process sees of its isolation to this fd")
      ->group("");
  chk->callback([c, exit_code]() { *exit_code = DoCheck(*c); });

  auto g = std::make_shared<GcOptions>();
  auto* gc =
      sandbox->add_subcommand("gc", "Remove what sandboxes whose supervisor died left behind");
  gc->add_option("--state-dir", g->state_dir, "state directory (default /var/lib/kiln as root)");
  gc->add_option("--cgroup-root", g->cgroup_root, "where the cgroup hierarchies are mounted")
      ->capture_default_str();
  gc->add_option("--cgroup-parent", g->cgroup_parent, "cgroup parent to scan")
      ->capture_default_str();
  gc->callback([g, exit_code, extra_gc]() {
    *exit_code = DoGc(*g);
    if (extra_gc) *exit_code = std::max(*exit_code, extra_gc(g->state_dir));
  });
}

std::vector<std::string> RunArgs(const Spec& spec, const std::string& report_path) {
  std::vector<std::string> a = {"sandbox", "run"};
  auto opt = [&](const char* name, const std::string& value) {
    a.push_back(name);
    a.push_back(value);
  };
  opt("--id", spec.id);
  if (spec.layers.empty()) opt("--image", spec.image);
  for (const std::string& l : spec.layers) opt("--layer", l);
  if (!spec.state_dir.empty()) opt("--state-dir", spec.state_dir);
  opt("--cgroup-root", spec.cgroup_root);
  opt("--cgroup-parent", spec.cgroup_parent);
  if (!report_path.empty()) opt("--report", report_path);
  if (spec.workspace) opt("--workspace", *spec.workspace);
  for (const auto& b : spec.binds) {
    opt("--bind", b.source + ":" + b.dest + (b.read_only ? ":ro" : ":rw"));
  }
  for (const auto& t : spec.tmpfs) opt("--tmpfs", t.dest + ":" + std::to_string(t.size_bytes));
  for (const auto& e : spec.env) opt("--env", e);
  if (!spec.workdir.empty()) opt("--workdir", spec.workdir);
  opt("--hostname", spec.hostname);
  opt("--uid", std::to_string(spec.uid));
  opt("--gid", std::to_string(spec.gid));
  const auto& l = spec.limits;
  opt("--pids", l.pids ? std::to_string(*l.pids) : "max");  // RLIMIT_NPROC without a cgroup
  if (!spec.use_cgroup) {
    a.push_back("--no-cgroup");
  } else {
    opt("--memory", l.memory_bytes ? std::to_string(*l.memory_bytes) : "max");
    if (l.cpus) {
      char buf[32];
      auto end = std::to_chars(buf, buf + sizeof buf, *l.cpus).ptr;  // shortest exact form
      opt("--cpus", std::string(buf, end));
    }
  }
  opt("--nofile", std::to_string(l.nofile));
  opt("--fsize", std::to_string(l.fsize_bytes));
  if (l.timeout_ms > 0) opt("--timeout", std::to_string(l.timeout_ms) + "ms");
  opt("--grace", std::to_string(l.grace_ms) + "ms");
  opt("--rootfs-size", std::to_string(l.rootfs_bytes));
  if (!spec.seccomp_policy.empty()) opt("--seccomp-policy", spec.seccomp_policy);
  if (spec.seccomp_log) a.push_back("--seccomp-log");
  for (int fd : spec.pass_fds) opt("--pass-fd", std::to_string(fd));
  a.push_back("--");
  a.insert(a.end(), spec.argv.begin(), spec.argv.end());
  return a;
}

Result<Spec> ParseRunArgs(std::vector<std::string> args, std::string* report_path) {
  CLI::App app("kiln");
  auto* sandbox = app.add_subcommand("sandbox");
  auto o = std::make_shared<RunOptions>();
  AddRun(*sandbox, o);
  std::reverse(args.begin(), args.end());  // CLI11 takes the vector last argument first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return Error::Invalid(std::string("sandbox run: ") + e.what());
  }
  KILN_TRY(Complete(*o));
  if (report_path != nullptr) *report_path = o->report;
  return o->spec;
}

}  // namespace kiln::sandbox::cli
