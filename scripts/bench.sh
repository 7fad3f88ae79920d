#!/usr/bin/env bash
# Runs every benchmark in tests/bench/ against a release build, each printing
# its own table with ratios against its anchor. Usage: scripts/bench.sh
# Environment: KILN_BENCH_RUNS (repetitions where a benchmark repeats).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
"$root/scripts/build.sh" build-bench -DCMAKE_BUILD_TYPE=Release
for bench in "$root"/tests/bench/*.sh; do
  echo "### $(basename "$bench")"
  "$bench" "$root/build-bench"
  echo
done
