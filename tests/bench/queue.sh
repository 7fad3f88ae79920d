#!/usr/bin/env bash
# Queue benchmark (issue 22): claim throughput and submit-to-start latency of
# the run queue on PostgreSQL with 1 and 3 hosts, against the SQLite store on
# one host (the anchor), with runs that do nothing but start and end (no
# sandbox). Each host is a thread with its own connection, claiming and
# ending one run at a time as `kiln serve`'s loop does.
#
#   tests/bench/queue.sh BUILD_DIR
#
# The PostgreSQL server is Debian's, started for the benchmark in a temporary
# directory (scripts/postgres-test-server.sh) with fsync on, as a real server
# runs; the SQLite store runs as kiln runs it (WAL, synchronous NORMAL).
# Env: KILN_BENCH_QUEUE_RUNS (10000), KILN_BENCH_QUEUE_LATENCY_RUNS (2000),
# KILN_BENCH_QUEUE_RATE (200 a second), KILN_BENCH_QUEUE_POLL_MS (10).
set -euo pipefail

BUILD=${1:?usage: tests/bench/queue.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$(find "$BUILD" -type f -name kiln_queue_bench -perm -u+x | head -n 1)
[[ -n $bench ]] || { echo "queue bench: kiln_queue_bench not built in $BUILD" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-queue.XXXXXX")
cleanup() {
  "$root/scripts/postgres-test-server.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

runs=${KILN_BENCH_QUEUE_RUNS:-10000}
latency_runs=${KILN_BENCH_QUEUE_LATENCY_RUNS:-2000}
rate=${KILN_BENCH_QUEUE_RATE:-200}
poll=${KILN_BENCH_QUEUE_POLL_MS:-10}
mkdir -p "$work/pg"
KILN_POSTGRES_FSYNC=on "$root/scripts/postgres-test-server.sh" start "$work/pg" >/dev/null
if [[ -f $work/pg/skip ]]; then
  echo "queue bench: no PostgreSQL server: $(cat "$work/pg/skip")" >&2
  exit 1
fi
server=$(cat "$work/pg/url")
admin() { psql -qAt "$server" -c "$1" >/dev/null; }

one() {  # LABEL LOCATION HOSTS
  "$bench" "$2" "$3" "$runs" "$latency_runs" "$rate" "$poll"
}
sqlite=$(one sqlite "$work/kiln.db" 1)
admin "CREATE DATABASE kiln_bench_1"
pg1=$(one pg1 "${server%/*}/kiln_bench_1" 1)
admin "CREATE DATABASE kiln_bench_3"
pg3=$(one pg3 "${server%/*}/kiln_bench_3" 3)

ratio() { echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; }
anchor_rate=$(jq -r .burn_down.runs_per_s <<<"$sqlite")
anchor_p50=$(jq -r .latency.p50_ms <<<"$sqlite")
printf 'Run queue (%s, %s cpus; %s runs burnt down; %s more queued at %s/s, hosts polling every %s ms)\n' \
  "$(uname -m)" "$(nproc)" "$runs" "$latency_runs" "$rate" "$poll"
printf '%-26s %10s %10s %8s %9s %9s %9s %8s\n' "store" "enqueue/s" "runs/s" "ratio" \
  "p50 ms" "p99 ms" "max ms" "ratio"
for row in "SQLite, 1 host (anchor)|$sqlite" "PostgreSQL, 1 host|$pg1" "PostgreSQL, 3 hosts|$pg3"; do
  label=${row%%|*}
  j=${row#*|}
  rate_s=$(jq -r .burn_down.runs_per_s <<<"$j")
  p50=$(jq -r .latency.p50_ms <<<"$j")
  printf '%-26s %10.0f %10.0f %8s %9.2f %9.2f %9.2f %8s\n' "$label" \
    "$(jq -r .burn_down.enqueue_per_s <<<"$j")" "$rate_s" "$(ratio "$rate_s" "$anchor_rate")" \
    "$p50" "$(jq -r .latency.p99_ms <<<"$j")" "$(jq -r .latency.max_ms <<<"$j")" \
    "$(ratio "$p50" "$anchor_p50")"
done
echo "runs/s ratio: against the SQLite anchor's runs/s; latency ratio: p50 against the anchor's p50"
