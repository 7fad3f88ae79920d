#!/usr/bin/env bash
# Controller overhead benchmark (issue: the controller). Usage:
# tests/bench/controller.sh BUILD_DIR
#
# A run with a trivial agent (the scripted model's first reply is submit) on
# a small repository's commit whose tree is already cached,
# KILN_BENCH_RUNS (default 30) times, through `kiln run`: queue, plan,
# repository, workspace, session log, proxy endpoint, sandbox, kiln-runtime,
# result, teardown. Against the anchor in the same run: a bare
# `kiln sandbox run -- true`. Prints medians, the controller's own time per
# run (provisioning + result and teardown, from the run's timings) and the
# ratios.
set -euo pipefail
build=$(realpath "${1:-build}")
kiln=$build/controller/kiln
runs=${KILN_BENCH_RUNS:-30}
[[ $(id -u) -eq 0 ]] || { echo "controller bench: run as root" >&2; exit 1; }
tmp=$(mktemp -d /tmp/kiln-bench-ctl-XXXXXX)
chmod 755 "$tmp"
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
  "$kiln" sandbox gc --state-dir "$tmp/state" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

git init -q -b main "$tmp/repo"
echo hello >"$tmp/repo/README.md"
git -C "$tmp/repo" add -A
git -C "$tmp/repo" -c user.name=b -c user.email=b@b commit -q -m initial
mkdir -p "$tmp/skills/noop"
printf -- '---\nname: noop\ndescription: submits at once\n---\nSubmit.\n' >"$tmp/skills/noop/SKILL.md"
echo 'default: {tool_calls: [{name: submit, input: {summary: done}}]}' >"$tmp/script.yaml"
"$build/tests/modelserver/kiln-model-server" --script "$tmp/script.yaml" >"$tmp/port" &
server_pid=$!
for _ in $(seq 50); do [[ -s $tmp/port ]] && break; sleep 0.1; done
port=$(head -1 "$tmp/port")
cat >"$tmp/kiln.yaml" <<EOF
state_dir: $tmp/state
skills_dir: $tmp/skills
runtime_binary: $build/runtime/kiln-runtime
forward_binary: $build/controller/proxy/kiln-proxy-forward
metrics_listen: ""
sandbox: {cgroup_parent: kiln-bench}
models: {anthropic: {upstream: "http://127.0.0.1:$port"}}
EOF
# By sha, as the pipeline passes commits: a branch name would be fetched
# first on every run (docs/workspace.md).
commit=$(git -C "$tmp/repo" rev-parse HEAD)
run=("$kiln" run --config "$tmp/kiln.yaml" --repo "$tmp/repo" --commit "$commit" --role noop
  --task t --json)
"${run[@]}" >/dev/null 2>&1  # warm: mirror, tree cache, host image, filter cache
"$kiln" sandbox run --state-dir "$tmp/state" -- true

echo "== a run with a trivial agent against a bare sandbox, median of $runs (hyperfine)"
hyperfine -N --style basic --warmup 3 --runs "$runs" --export-json "$tmp/h.json" \
  -n run "${run[*]}" \
  -n sandbox "$kiln sandbox run --state-dir $tmp/state -- true" >"$tmp/h.log" 2>&1 ||
  { cat "$tmp/h.log"; exit 1; }
for _ in $(seq "$runs"); do "${run[@]}" 2>/dev/null | jq -c '.result.timings'; done >"$tmp/timings"
jq -r '.results | map({(.command): .median}) | add |
  "kiln run (trivial agent)  \(.run*1000 | . * 10 | round / 10) ms\n" +
  "kiln sandbox run true     \(.sandbox*1000 | . * 10 | round / 10) ms\n" +
  "ratio run/sandbox         \(.run/.sandbox | . * 10 | round / 10)"' "$tmp/h.json"
jq -s -r 'def median: sort | .[length/2|floor];
  "controller time per run (median): provisioning \(map(.provision_ms) | median) ms, " +
  "result and teardown \(map(.result_and_teardown_ms) | median) ms; " +
  "sandbox with kiln-runtime \(map(.sandbox_ms) | median) ms"' "$tmp/timings"
