#!/usr/bin/env bash
# Runs kiln's whole default test suite on a fresh Debian 12 machine:
#   1. installs the Debian packages it needs (scripts/install-deps.sh);
#   2. checks formatting, then builds and runs every CTest suite (unit,
#      integration, escape);
#   3. builds the unit tests again under ASan+UBSan and runs them;
#   4. runs the fuzz targets for a bounded time (scripts/fuzz.sh), if present.
# Suites labelled "slow" are left out of this run (there are none yet).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
"$root/scripts/install-deps.sh"

jobs=$(nproc)

echo "=== format"
"$root/scripts/check-format.sh"

echo "=== build (RelWithDebInfo)"
"$root/scripts/build.sh" build
echo "=== tests"
ctest --test-dir build --output-on-failure -j "$jobs" -LE slow --timeout 600

echo "=== unit tests under ASan+UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=ON >/dev/null
ninja -C build-asan unit_tests
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" -L unit --timeout 600

if [[ -x "$root/scripts/fuzz.sh" ]]; then
  echo "=== fuzzing (bounded)"
  "$root/scripts/fuzz.sh"
fi
echo "=== all tests passed"
