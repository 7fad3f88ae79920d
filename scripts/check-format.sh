#!/usr/bin/env bash
# Fails when a C++ file differs from what clang-format (the committed
# .clang-format) would make of it. Usage: scripts/check-format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
# The tracked files in a checkout; every source file outside build trees in an
# export without .git (a check of nothing would pass anything).
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cc' '*.h')
else
  mapfile -t files < <(find . -path './build*' -prune -o \( -name '*.cc' -o -name '*.h' \) \
    -type f -print | sed 's|^\./||' | sort)
fi
if ((${#files[@]} == 0)); then
  echo "check-format: no source files found" >&2
  exit 1
fi
if [[ ${1:-} == --fix ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/kiln-format.log; then
  grep -E "^[^ ].*: (error|warning):" /tmp/kiln-format.log | cut -d: -f1 | sort -u | sed 's/^/needs clang-format: /'
  echo "run scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
