#!/usr/bin/env bash
# Runs kiln's default test suite on a fresh Debian 12 machine:
#   1. installs the Debian packages it needs (scripts/install-deps.sh);
#   2. checks formatting, then builds and runs every CTest suite (unit,
#      integration, escape) except those labelled "slow".
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
ctest --test-dir build --output-on-failure -j "$(nproc)" -LE slow --timeout 600

stage_done "all tests passed"
