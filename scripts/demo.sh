#!/usr/bin/env bash
# kiln's main job on a fresh Debian 12 machine. Installs what it needs, builds
# kiln, and — until the issue-to-pull-request pipeline lands — shows the
# sandbox at work: a hostile command tries its usual tricks and is stopped,
# and the host is left as it was. Run as root (cgroups need it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
"$root/scripts/install-deps.sh"
echo "== building kiln"
"$root/scripts/build.sh" build >/dev/null
kiln=$root/build/controller/kiln
state=$(mktemp -d /tmp/kiln-demo-XXXXXX)
trap 'rm -rf "$state"' EXIT
run() { "$kiln" sandbox run --state-dir "$state" "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "who and where am I inside? (own pid, uts, net, user namespaces; no capabilities)"
run --hostname demo -- sh -c 'echo "hostname=$(hostname) pid=$$ uid=$(id -u)"; ls /sys/class/net;
  grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status'

step "the host's secrets are not there, its /usr is read-only"
run -- sh -c 'ls /etc/shadow 2>&1; touch /usr/bin/evil 2>&1; true'

step "privileged system calls fail (seccomp and no capabilities); --seccomp-log shows them"
run --seccomp-log -- sh -c 'unshare --user --map-root-user true 2>&1; mount -t tmpfs x /mnt 2>&1; true'

step "a memory bomb is OOM-killed inside the sandbox only (report excerpt)"
run --memory 64M --report "$state/oom.json" -- python3 -c 'x = bytearray(1 << 30)' || true
jq -c '{status, oom_killed, memory_peak_bytes}' "$state/oom.json"

step "a fork bomb hits the pids limit; the timeout ends it"
run --pids 64 --timeout 2s --report "$state/fork.json" -- sh -c 'bomb() { bomb | bomb & }; bomb; sleep 60' 2>/dev/null || true
jq -c '{status, timed_out, pids_peak}' "$state/fork.json"

step "a workspace is the only writable host directory"
ws=$(mktemp -d /tmp/kiln-demo-ws-XXXXXX); chmod 777 "$ws"
run --workspace "$ws" -- sh -c 'echo "written inside" > result.txt; pwd'
echo "host sees: $(cat "$ws/result.txt")"; rm -rf "$ws"

step "nothing left behind"
echo "sandbox state dirs: $(ls "$state/run" | wc -l); kiln cgroups: $(ls -d /sys/fs/cgroup/*/kiln/*/ 2>/dev/null | wc -l)"
