# shellcheck shell=bash
# Shared helpers for the session log integration tests. Each test script is
# run by CTest as: bash TEST.sh /path/to/kiln
set -euo pipefail

KILN=${1:?usage: $0 /path/to/kiln}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiln-sessionlog-it.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
KEYS="$WORK/keys"
TEST_NAME=$(basename "$0" .sh)

fail() {
  echo "FAIL ($TEST_NAME): $*" >&2
  exit 1
}

note() { echo "-- $*"; }

kiln() { "$KILN" "$@"; }

# A sample run log (all record types, one blob) signed with the test key.
demo_log() {
  local file=$1
  shift
  mkdir -p "$(dirname "$file")"
  kiln log demo "$file" --key-dir "$KEYS" "$@" || fail "kiln log demo $file failed"
}

# verify FILE [args...]: runs kiln log verify, keeping stdout in $OUT and the
# exit status in $RC.
verify() {
  set +e
  OUT=$(kiln log verify "$@" --key-dir "$KEYS" 2>"$WORK/verify.err")
  RC=$?
  set -e
}

# expect_only KIND SEQ: the last verify printed exactly one finding.
expect_only() {
  local kind=$1 seq=$2 what=$3
  [[ $RC == 1 ]] || fail "$what: exit $RC, want 1; output: $OUT"
  local n
  n=$(printf '%s\n' "$OUT" | grep -c '^seq ' || true)
  [[ $n == 1 ]] || fail "$what: $n findings, want 1: $OUT"
  [[ $OUT == "seq $seq: $kind: "* ]] || fail "$what: want 'seq $seq: $kind: ...', got: $OUT"
}

expect_intact() {
  local what=$1
  [[ $RC == 0 && -z $OUT ]] || fail "$what: exit $RC, want 0 and no findings: $OUT"
}

# line_count FILE
line_count() { wc -l <"$1" | tr -d ' '; }

# flip_byte FILE LINE AT: XORs byte AT (0-based) of line LINE (1-based) with 0x01.
flip_byte() {
  local file=$1 line=$2 at=$3 start byte
  start=$(head -n $((line - 1)) "$file" | wc -c)
  byte=$(dd if="$file" bs=1 skip=$((start + at)) count=1 status=none | od -An -tu1 | tr -d ' ')
  # shellcheck disable=SC2059  # the format is the escaped byte itself
  printf "\\x$(printf %02x $((byte ^ 1)))" |
    dd of="$file" bs=1 seek=$((start + at)) conv=notrunc status=none
}

# offset_of LINE_TEXT NEEDLE: byte offset of the first NEEDLE in LINE_TEXT.
offset_of() { printf '%s' "$1" | grep -bo -F -- "$2" | head -n 1 | cut -d: -f1; }
