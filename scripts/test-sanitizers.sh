#!/usr/bin/env bash
# The longer checks, apart from the default suite (scripts/test.sh):
#   1. the unit tests built again under ASan+UBSan (build-asan/) and run;
#   2. every fuzz target for a bounded time (scripts/fuzz.sh; clang).
# Installs what it needs first. .ci/run runs it after scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source "$root/scripts/stage.sh"
"$root/scripts/install-deps.sh"

stage "unit tests under ASan+UBSan"
# clang, as the fuzz build: it compiles this tree at -O0 about four times as
# fast as GCC at -O1 (docs/BENCHMARKS.md). A tree configured with another
# compiler is started afresh, since CMake cannot switch one in place.
if [[ -f build-asan/CMakeCache.txt ]] &&
  ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++' build-asan/CMakeCache.txt; then
  rm -rf build-asan
fi
CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKILN_SANITIZE=ON >/dev/null
ninja -C build-asan unit_tests
status=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$(nproc)" -L unit --timeout 600 || status=$?
cat build-asan/test-results/summary.txt 2>/dev/null || echo "no summary: the test run did not finish"
if ((status != 0)); then
  echo "=== unit tests under ASan+UBSan failed (ctest exit $status)"
  exit "$status"
fi

stage "fuzzing (bounded)"
"$root/scripts/fuzz.sh"

stage_done "sanitizer and fuzz checks passed"
