#!/usr/bin/env bash
# Agent runtime benchmark (issue: kiln-runtime). Usage: tests/bench/runtime.sh BUILD_DIR
#
# With a zero-latency scripted model on loopback (tests/modelserver), the
# loop's cost per turn (turns/s) with an in-process tool (read) and with the
# shell tool running `true`, against spawning `bash -c true` directly, in one
# run; prints the ratios. Goal (issue): under 2 ms per turn beyond the model
# and the command. Environment: KILN_BENCH_TURNS (default 200),
# KILN_BENCH_RUNS (repetitions, default 5).
set -euo pipefail
build=$(realpath "${1:-build}")
bench=$build/tests/modelserver/kiln-runtime-bench
[[ -x $bench ]] || { echo "runtime bench: $bench not built (ninja kiln-runtime-bench)" >&2; exit 1; }
"$bench" "${KILN_BENCH_TURNS:-200}" "${KILN_BENCH_RUNS:-5}"
