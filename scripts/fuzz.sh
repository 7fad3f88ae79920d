#!/usr/bin/env bash
# Builds every libFuzzer target (CMake targets named *_fuzz) with clang in a
# separate build directory and runs each for a bounded time. Exits non-zero if
# a target fails to build or finds a crash, leak or sanitizer error.
#
#   scripts/fuzz.sh                 # 30 s per target
#   KILN_FUZZ_SECONDS=300 scripts/fuzz.sh
#   KILN_FUZZ_TARGETS="sessionlog_verify_fuzz" scripts/fuzz.sh
#
# Corpora persist in $BUILD/corpus/<target>; crash inputs land in
# $BUILD/crashes/<target>/. Inputs that once crashed a target are kept in
# tests/fuzz-regressions/<target>/ and run first, every time.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER_TARGET=${KILN_FUZZ_SECONDS:-30}
BUILD=${KILN_FUZZ_BUILD_DIR:-build-fuzz}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi

mkdir -p "$BUILD"
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DKILN_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/configure.log" 2>&1 || {
  cat "$BUILD/configure.log" >&2
  echo "fuzz: configuring $BUILD with clang failed" >&2
  exit 1
}

# Every executable target named *_fuzz, as "path/in/build/name".
mapfile -t all < <(ninja -C "$BUILD" -t targets all |
  sed -n 's/^\([^ ]*_fuzz\): CXX_EXECUTABLE_LINKER.*/\1/p' | sort -u)
if [[ -n "${KILN_FUZZ_TARGETS:-}" ]]; then
  read -r -a wanted <<<"$KILN_FUZZ_TARGETS"
  paths=()
  for w in "${wanted[@]}"; do
    p=$(printf '%s\n' "${all[@]}" | grep -E "(^|/)$w\$" || true)
    [[ -n $p ]] || { echo "fuzz: no fuzz target named $w" >&2; exit 1; }
    paths+=("$p")
  done
else
  paths=("${all[@]}")
fi
if ((${#paths[@]} == 0)); then
  echo "fuzz: no *_fuzz targets found" >&2
  exit 1
fi
targets=()
for p in "${paths[@]}"; do targets+=("$(basename "$p")"); done

ninja -C "$BUILD" "${targets[@]}"

failed=()
for p in "${paths[@]}"; do
  t=$(basename "$p")
  bin="$BUILD/$p"
  corpus="$BUILD/corpus/$t"
  crashes="$BUILD/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  regressions="tests/fuzz-regressions/$t"
  if [[ -d $regressions ]]; then
    echo "fuzz: $t: the inputs that once crashed it ($regressions)"
    if ! "$bin" -timeout=10 -rss_limit_mb=2048 "$regressions"/* >"$BUILD/$t.regressions.log" 2>&1; then
      tail -n 40 "$BUILD/$t.regressions.log" >&2
      echo "fuzz: $t FAILED on an input in $regressions; log in $BUILD/$t.regressions.log" >&2
      failed+=("$t")
      continue
    fi
  fi
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
  if ! "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" >"$BUILD/$t.log" 2>&1; then
    tail -n 40 "$BUILD/$t.log" >&2
    echo "fuzz: $t FAILED; inputs in $crashes/, log in $BUILD/$t.log" >&2
    failed+=("$t")
  else
    grep -E '^stat::number_of_executed_units|^Done' "$BUILD/$t.log" | tail -n 1
  fi
done

if ((${#failed[@]} > 0)); then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} target(s) ran ${SECONDS_PER_TARGET}s each without a finding"
