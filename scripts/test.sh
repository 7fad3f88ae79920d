#!/usr/bin/env bash
# Runs kiln's default test suite on a fresh Debian 12 machine:
#   1. installs the Debian packages it needs (scripts/install-deps.sh);
#   2. checks formatting, then builds and runs every CTest suite (unit,
#      integration, escape) except those labelled "slow";
#   3. prints what ran, was stopped and was skipped on this host, and why.
# The unit tests under ASan+UBSan and the bounded fuzzing have their own
# script, scripts/test-sanitizers.sh; .ci/run runs both.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source "$root/scripts/stage.sh"
"$root/scripts/install-deps.sh"

stage "format"
"$root/scripts/check-format.sh"

stage "build (RelWithDebInfo)"
"$root/scripts/build.sh" build

stage "tests"
status=0
ctest --test-dir build --output-on-failure -j "$(nproc)" -LE slow --timeout 600 || status=$?

# What ran, was stopped and was skipped on this host, and why (written by the
# CTest fixture's cleanup, kiln-test-summary).
stage "what this host tested"
cat build/test-results/summary.txt 2>/dev/null || echo "no summary: the test run did not finish"
if ((status != 0)); then
  echo "=== tests failed (ctest exit $status)"
  exit "$status"
fi

stage_done "all tests passed"
