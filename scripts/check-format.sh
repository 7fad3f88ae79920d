#!/usr/bin/env bash
# Fails when a C++ file differs from what clang-format (the committed
# .clang-format) would make of it. Usage: scripts/check-format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
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
