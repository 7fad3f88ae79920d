#!/usr/bin/env bash
# A run's own cost, phase by phase (issue: a run's own cost). Usage:
# tests/bench/run.sh BUILD_DIR
#
# `kiln run` with a no-op agent (the scripted model's first reply is submit)
# by commit sha, on two repositories whose trees are already cached: the
# demo's (3 files) and the 50,000-file one of the workspace benchmark.
# KILN_BENCH_RUNS (default 50) runs each. Prints the median of every phase
# from the runs' `timings` (docs/controller.md), kiln's own cost (every phase
# but the sandbox's start and exit and the agent's time; goal <= 20 ms on
# both), the whole `kiln run` process, and the anchor measured in the same
# run: a bare `kiln sandbox run -- true`, start to exit (hyperfine). Then the
# same runs through one daemon, as a host runs them: KILN_BENCH_RUNS runs
# submitted, then `kiln serve --until-idle` with one run at a time; its wall
# time per run, and the median own cost of those runs.
set -euo pipefail
build=$(realpath "${1:-build}")
kiln=$build/controller/kiln
runs=${KILN_BENCH_RUNS:-50}
[[ $(id -u) -eq 0 ]] || { echo "run bench: run as root" >&2; exit 1; }
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
# shellcheck source=tests/bench/lib/repo.sh
source "$(dirname "$0")/lib/repo.sh"
# shellcheck source=tests/bench/lib/controller.sh
source "$(dirname "$0")/lib/controller.sh"
large=$(bench_repo 50000 1000)
tmp=$(mktemp -d /tmp/kiln-bench-run-XXXXXX)
chmod 755 "$tmp"
trap 'bench_cleanup "$build" "$tmp"' EXIT
mkdir -p "$tmp/skills/noop"
printf -- '---\nname: noop\ndescription: submits at once\n---\nSubmit.\n' >"$tmp/skills/noop/SKILL.md"
echo 'default: {tool_calls: [{name: submit, input: {summary: done}}]}' >"$tmp/script.yaml"
bench_controller "$build" "$tmp" "$tmp/script.yaml"

# measure NAME REPO: KILN_BENCH_RUNS runs by sha; one timings object per line
# in $tmp/NAME.jsonl, with the process's wall time added as process_us.
measure() {
  local name=$1 repo=$2 commit
  commit=$(git -C "$repo" rev-parse main)
  local run=("$kiln" run --config "$tmp/kiln.yaml" --repo "$repo" --commit "$commit"
    --role noop --task t --json)
  "${run[@]}" >"$tmp/warm.json" 2>"$tmp/warm.err" ||
    { echo "run bench: the warm-up run on $name failed:" >&2; cat "$tmp/warm.err" >&2; exit 1; }
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s%N)
    "${run[@]}" >"$tmp/one.json" 2>/dev/null
    t1=$(date +%s%N)
    jq -c --argjson p $(((t1 - t0) / 1000)) \
      'if .status == "succeeded" then .result.timings + {process_us: $p}
       else error("run \(.id) \(.status): \(.error)") end' "$tmp/one.json"
  done >"$tmp/$name.jsonl"
}
# measure_serve NAME REPO: the same runs through `kiln serve`, one at a
# time; timings in $tmp/serve-NAME.jsonl, serve's wall time per run (us) in
# $tmp/serve-NAME.wall.
measure_serve() {
  local name=$1 repo=$2 commit ids=() t0 t1
  commit=$(git -C "$repo" rev-parse main)
  for _ in $(seq "$runs"); do
    ids+=("$("$kiln" runs submit --config "$tmp/serve.yaml" --repo "$repo" --commit "$commit" \
      --role noop --task t)")
  done
  t0=$(date +%s%N)
  "$kiln" serve --config "$tmp/serve.yaml" --until-idle >"$tmp/serve.log" 2>&1 ||
    { echo "run bench: kiln serve failed:" >&2; tail -20 "$tmp/serve.log" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000 / runs)) >"$tmp/serve-$name.wall"
  for id in "${ids[@]}"; do
    "$kiln" runs show --config "$tmp/serve.yaml" --json "$id" | jq -c \
      'if .status == "succeeded" then .result.timings
       else error("run \(.id) \(.status): \(.error)") end'
  done >"$tmp/serve-$name.jsonl"
}
measure demo "$tmp/demo"
measure large "$large"
{ cat "$tmp/kiln.yaml"; echo "concurrency: {max_runs: 1}"; } >"$tmp/serve.yaml"
measure_serve demo "$tmp/demo"
measure_serve large "$large"
"$kiln" sandbox run --state-dir "$tmp/state" -- true
hyperfine -N --style basic --warmup 5 --runs "$runs" --export-json "$tmp/sandbox.json" \
  "$kiln sandbox run --state-dir $tmp/state -- true" >"$tmp/hyperfine.log" 2>&1 ||
  { cat "$tmp/hyperfine.log"; exit 1; }
anchor_us=$(jq '.results[0].median * 1e6 | round' "$tmp/sandbox.json")

python3 - "$tmp" "$anchor_us" "$runs" <<'PY'
import json, statistics, sys
tmp, anchor, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(name):
    return [json.loads(l) for l in open(f"{tmp}/{name}.jsonl")]
demo, large = load("demo"), load("large")
sandbox = {"sandbox_start", "agent", "sandbox_exit"}
def med(rows, key):
    return statistics.median(r["phases_us"].get(key, 0) for r in rows)
order = [p for p in demo[0]["phases_us"]]
for p in large[0]["phases_us"]:
    if p not in order: order.append(p)
print(f"Median of {runs} runs, microseconds; no-op agent, warm mirror and tree cache")
print(f"{'phase':<24}{'demo (3 files)':>16}{'50,000 files':>16}")
for p in sorted(order, key=lambda p: -med(large, p)):
    mark = "  (sandbox/agent)" if p in sandbox else ""
    print(f"{p:<24}{med(demo, p):>16.0f}{med(large, p):>16.0f}{mark}")
def row(label, f):
    print(f"{label:<24}{statistics.median(f(r) for r in demo):>16.0f}"
          f"{statistics.median(f(r) for r in large):>16.0f}")
row("log fsyncs (of which)", lambda r: r["log_fsync_us"])
row("first model request at", lambda r: r.get("first_model_request_us") or 0)
row("kiln's own cost", lambda r: r["own_us"])
row("kiln run, whole process", lambda r: r["process_us"])
print(f"{'anchor: kiln sandbox run true':<24}{anchor:>16}{anchor:>16}")
for name, rows in (("demo", demo), ("50,000 files", large)):
    own = statistics.median(r["own_us"] for r in rows)
    verdict = "meets" if own <= 20000 else "MISSES"
    print(f"{name}: own cost {own / 1000:.2f} ms ({verdict} goal <= 20 ms); "
          f"own / sandbox start-to-exit {own / anchor:.2f}")
print("Through one `kiln serve`, one run at a time:")
for name, label in (("demo", "demo"), ("large", "50,000 files")):
    own = statistics.median(r["own_us"] for r in load(f"serve-{name}"))
    wall = int(open(f"{tmp}/serve-{name}.wall").read())
    print(f"{label}: own cost {own / 1000:.2f} ms; serve's wall time per run {wall / 1000:.2f} ms "
          f"({wall / anchor:.2f} x the bare sandbox)")
PY
