# Sourced by the benchmarks that drive the controller (run.sh, replay.sh).
# bench_controller BUILD TMP SCRIPT: in TMP (made by the caller), a git copy
# of the demo's sample repository at TMP/demo, the scripted model server
# started with SCRIPT (its pid in $server_pid), and TMP/kiln.yaml: the state
# under TMP/state, skills under TMP/skills, the build's binaries, the model
# gateway on the scripted server. bench_cleanup BUILD TMP stops the server,
# collects what sandboxes left, and removes TMP unless KILN_BENCH_KEEP is set.
server_pid=
bench_controller() {
  local build=$1 tmp=$2 script=$3 source_dir port
  source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
  cp -r "$source_dir/demo/sample" "$tmp/demo"
  git init -q -b main "$tmp/demo"
  git -C "$tmp/demo" add -A
  git -C "$tmp/demo" -c user.name=b -c user.email=b@b commit -q -m initial
  "$build/tests/modelserver/kiln-model-server" --script "$script" >"$tmp/port" &
  server_pid=$!
  for _ in $(seq 50); do [[ -s $tmp/port ]] && break; sleep 0.1; done
  port=$(head -1 "$tmp/port")
  cat >"$tmp/kiln.yaml" <<YAML
state_dir: $tmp/state
skills_dir: $tmp/skills
runtime_binary: $build/runtime/kiln-runtime
forward_binary: $build/controller/proxy/kiln-proxy-forward
metrics_listen: ""
sandbox: {cgroup_parent: kiln-bench}
models: {anthropic: {upstream: "http://127.0.0.1:$port"}}
YAML
}

bench_cleanup() {
  local build=$1 tmp=$2
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
  "$build/controller/kiln" sandbox gc --state-dir "$tmp/state" >/dev/null 2>&1 || true
  [[ -n ${KILN_BENCH_KEEP:-} ]] || rm -rf "$tmp"
}
