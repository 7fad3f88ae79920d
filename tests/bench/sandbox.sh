#!/usr/bin/env bash
# Sandbox benchmark (issue: kiln sandbox). Usage: tests/bench/sandbox.sh BUILD_DIR
#
# 1. Start-to-exit of `true`, median of KILN_BENCH_RUNS (default 200) runs
#    each, in one hyperfine run: kiln with full isolation (overlay rootfs,
#    cgroup, seccomp, all namespaces) against Debian's bubblewrap and
#    util-linux unshare(1). Prints the ratios.
# 2. 50 sandboxes that sleep, started at once: time until all 50 run, and the
#    host memory they take (drop of MemAvailable, and the PSS of every process
#    involved), for kiln and for bubblewrap.
set -euo pipefail
build=$(realpath "${1:-build}")
kiln=$build/controller/kiln
runs=${KILN_BENCH_RUNS:-200}
count=${KILN_BENCH_SANDBOXES:-50}
[[ $(id -u) -eq 0 ]] || { echo "sandbox bench: run as root (cgroups)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/kiln-bench-XXXXXX)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
state=$tmp/state

bwrap_args=(--unshare-all --die-with-parent --ro-bind / / --proc /proc --dev /dev)
"$kiln" sandbox run --state-dir "$state" -- true  # warm the host image and filter cache

echo "== start-to-exit of true, median of $runs runs (hyperfine)"
hyperfine -N --style basic --warmup 20 --runs "$runs" --export-json "$tmp/start.json" \
  -n kiln "$kiln sandbox run --state-dir $state -- true" \
  -n bwrap "bwrap ${bwrap_args[*]} true" \
  -n unshare "unshare -mpnuif true" >"$tmp/hyperfine.log" 2>&1 || { cat "$tmp/hyperfine.log"; exit 1; }
jq -r '.results | map({(.command): .median}) | add |
  "kiln     \(.kiln*1000 | . * 100 | round / 100) ms\n" +
  "bwrap    \(.bwrap*1000 | . * 100 | round / 100) ms\n" +
  "unshare  \(.unshare*1000 | . * 100 | round / 100) ms\n" +
  "ratio kiln/bwrap   \(.kiln/.bwrap | . * 100 | round / 100)\n" +
  "ratio kiln/unshare \(.kiln/.unshare | . * 100 | round / 100)"' "$tmp/start.json"

echo "== $count sleeping sandboxes started at once"
python3 - "$kiln" "$state" "$tmp" "$count" "${bwrap_args[@]}" <<'PY'
import os, signal, subprocess, sys, time
kiln, state, tmp, count, bwrap_args = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]

def mem_available():
    for line in open('/proc/meminfo'):
        if line.startswith('MemAvailable:'):
            return int(line.split()[1]) * 1024

def pss_of_tree(roots):
    """PSS of the given processes and all their descendants (host pids)."""
    children = {}
    for p in os.listdir('/proc'):
        if not p.isdigit(): continue
        try:
            ppid = int(open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(p))
    total, stack = 0, list(roots)
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            for line in open(f'/proc/{pid}/smaps_rollup'):
                if line.startswith('Pss:'):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total

def run(name, make_cmd):
    ws = os.path.join(tmp, f'ws-{name}')
    os.mkdir(ws); os.chmod(ws, 0o777)
    before = mem_available()
    t0 = time.monotonic()
    procs = [subprocess.Popen(make_cmd(ws, i), stdin=subprocess.DEVNULL) for i in range(count)]
    while len(os.listdir(ws)) < count:
        if time.monotonic() - t0 > 60 or any(p.poll() is not None for p in procs):
            raise SystemExit(f'{name}: sandboxes did not all start')
        time.sleep(0.002)
    elapsed = time.monotonic() - t0
    time.sleep(0.3)  # let page cache and slabs settle before measuring
    taken = before - mem_available()
    pss = pss_of_tree([p.pid for p in procs])
    for p in procs: p.send_signal(signal.SIGTERM)
    for p in procs: p.wait(timeout=30)
    print(f'{name:6} all {count} running after {elapsed*1000:7.1f} ms; '
          f'MemAvailable drop {taken/2**20:7.1f} MiB ({taken/count/2**20:5.2f} MiB each); '
          f'PSS {pss/2**20:6.1f} MiB ({pss/count/2**20:5.2f} MiB each)')
    return elapsed, pss

script = 'touch "$DIR/ready.$N"; exec sleep 300'
k = run('kiln', lambda ws, i: [kiln, 'sandbox', 'run', '--state-dir', state, '--workspace', ws,
                                '--env', f'N={i}', '--env', 'DIR=/workspace', '--', 'sh', '-c', script])
# bwrap's root is the host's, read-only: bind the directory over an existing one.
b = run('bwrap', lambda ws, i: ['bwrap', *bwrap_args, '--bind', ws, '/mnt', '--setenv', 'N', str(i),
                                 '--setenv', 'DIR', '/mnt', 'sh', '-c', script])
print(f'ratio kiln/bwrap: time to all running {k[0]/b[0]:.2f}, PSS {k[1]/b[1]:.2f}')
PY
