#!/usr/bin/env bash
# A crash: the writer stops without run.end and its last write is torn.
# verify calls it truncation; `kiln log recover` acknowledges the torn bytes
# without rewriting anything, and the log then verifies.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"

LOG="$WORK/run/session.jsonl"
demo_log "$LOG" --records 30 --no-close
torn='{"payload":{"output":"half a rec'
printf '%s' "$torn" >>"$LOG"  # the torn write
N=$(line_count "$LOG")
cp "$LOG" "$WORK/before"

verify "$LOG"
expect_only truncated "$N" "crashed log"
[[ $OUT == *"torn"* ]] || fail "the truncation should mention the torn line: $OUT"

kiln log recover "$LOG" --key-dir "$KEYS" 2>"$WORK/recover.err" ||
  fail "recover failed: $(cat "$WORK/recover.err")"
cmp -s -n "$(stat -c %s "$WORK/before")" "$WORK/before" "$LOG" ||
  fail "recover rewrote bytes that were already in the log"
verify "$LOG"
expect_intact "recovered log"
grep -q "note: .*torn write of ${#torn} bytes .* acknowledged" "$WORK/verify.err" ||
  fail "no note about the acknowledged torn write: $(cat "$WORK/verify.err")"
[[ $(tail -n 2 "$LOG" | jq -r .type | tr '\n' ' ') == "recovery run.end " ]] ||
  fail "the log should end with recovery, run.end"
[[ $(tail -n 1 "$LOG" | jq -r .payload.status) == crashed ]] || fail "run.end status"

# Recovery refuses a complete log, and one that was tampered with.
kiln log recover "$LOG" --key-dir "$KEYS" 2>"$WORK/err" && fail "recovered a complete log"
grep -q "already ends with run.end" "$WORK/err" || fail "complete log: $(cat "$WORK/err")"
demo_log "$WORK/t/session.jsonl" --records 30 --no-close
sed -i '7d' "$WORK/t/session.jsonl"
kiln log recover "$WORK/t/session.jsonl" --key-dir "$KEYS" 2>"$WORK/err" && fail "recovered a tampered log"
grep -q "damaged.*deleted" "$WORK/err" || fail "tampered log: $(cat "$WORK/err")"
echo "PASS $TEST_NAME"
