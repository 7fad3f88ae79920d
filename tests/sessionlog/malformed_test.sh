#!/usr/bin/env bash
# Malformed input gets a clear finding and exit 1 — never a crash — and a
# 1 GiB line is measured, not buffered: verify runs under a 256 MiB address
# space limit.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"

check() {
  local what=$1 file=$2 pattern=$3
  verify "$file"
  ((RC == 1)) || fail "$what: exit $RC, want 1 (output: $OUT)"
  [[ -n $OUT ]] || fail "$what: no finding printed"
  printf '%s\n' "$OUT" | grep -qE -- "$pattern" || fail "$what: no finding matching /$pattern/: $OUT"
  note "$what: $(printf '%s\n' "$OUT" | head -n 1)"
}

printf 'this is not json\n' >"$WORK/notjson"
check "not JSON" "$WORK/notjson" '^seq 0: malformed: .*a record must be a JSON object'
: >"$WORK/empty"
check "empty file" "$WORK/empty" '^seq 0: truncated: the log has no intact records'
printf '{"payload":{},"seq":0}\n' >"$WORK/missing"
check "missing members" "$WORK/missing" "malformed: .*missing member 'prev'"
printf '{"payload":{},"prev":"%064d","seq":"0","ts":"x","type":"run.start"}\n' 0 >"$WORK/types"
check "wrong types" "$WORK/types" "malformed: .*member 'seq': expected a number"
printf '\x00\x01\xff\n' >"$WORK/binary"
check "binary" "$WORK/binary" 'malformed'
python3 -c 'print("[" * 100000)' >"$WORK/deep"
check "deep nesting" "$WORK/deep" 'malformed'

# A 1 GiB line (sparse: no disk needed) after a valid start, without a newline.
demo_log "$WORK/run/session.jsonl" --records 20
head -n 5 "$WORK/run/session.jsonl" >"$WORK/huge"
truncate -s +1G "$WORK/huge"
set +e
OUT=$(ulimit -v 262144; "$KILN" log verify "$WORK/huge" --key-dir "$KEYS" 2>"$WORK/huge.err")
RC=$?
set -e
((RC == 1)) || fail "1 GiB line: exit $RC, want 1 (stderr: $(cat "$WORK/huge.err"))"
printf '%s\n' "$OUT" | grep -q '^seq 5: truncated: .*torn: 1073741824 bytes' ||
  fail "1 GiB line: want a truncation at seq 5 naming the torn 1 GiB line: $OUT"
note "1 GiB torn line under a 256 MiB address-space limit: $OUT"
# ... and the same line, ended by a newline, in place of record seq 5.
printf '\n' >>"$WORK/huge"
tail -n +7 "$WORK/run/session.jsonl" >>"$WORK/huge"
set +e
OUT=$(ulimit -v 262144; "$KILN" log verify "$WORK/huge" --key-dir "$KEYS" 2>"$WORK/huge.err")
RC=$?
set -e
((RC == 1)) || fail "1 GiB middle line: exit $RC, want 1"
printf '%s\n' "$OUT" | grep -q '^seq 5: modified: .*over the 16777216-byte limit' ||
  fail "1 GiB middle line: want 'seq 5: modified: ... over the limit': $OUT"

# Millions of junk lines cost no memory per line: 8 Mi empty lines under the
# same 256 MiB limit (about 100 bytes each if they were kept).
head -c 8388608 /dev/zero | tr '\0' '\n' >"$WORK/junk"
set +e
OUT=$(ulimit -v 262144; "$KILN" log verify "$WORK/junk" --key-dir "$KEYS" 2>"$WORK/junk.err")
RC=$?
set -e
((RC == 1)) || fail "8 Mi empty lines: exit $RC, want 1 (stderr: $(cat "$WORK/junk.err"))"
printf '%s\n' "$OUT" | grep -q '^seq 0: malformed: .*nor are the 8388607 lines after it' ||
  fail "8 Mi empty lines: want one malformed finding covering them all: $OUT"
note "8 Mi junk lines: one finding, within 256 MiB"

# Not a log at all: exit 2 with the path in the message.
set +e
kiln log verify "$WORK" --key-dir "$KEYS" 2>"$WORK/err"; rc=$?
set -e
if ((rc != 2)) || ! grep -q "is a directory" "$WORK/err"; then
  fail "directory: exit $rc: $(cat "$WORK/err")"
fi
echo "PASS $TEST_NAME"
