#!/usr/bin/env bash
# `kiln log verify` on the real binary: exit 0 only for an intact log, and
# every kind of damage named at the right seq, one line per finding.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"

LOG="$WORK/run/session.jsonl"
demo_log "$LOG" --records 50
N=$(line_count "$LOG")
verify "$LOG"
expect_intact "intact log"
grep -q "intact: $N records" "$WORK/verify.err" || fail "no summary on stderr: $(cat "$WORK/verify.err")"

# case NAME EDIT...: copy the run, apply EDIT to the copy's log, verify it.
fresh() {
  rm -rf "$WORK/c" && cp -r "$WORK/run" "$WORK/c"
  C="$WORK/c/session.jsonl"
}
seq_of_line() { sed -n "${1}p" "$LOG" | jq -r .seq; }

# A flipped byte in each member of a middle record (line 21 = seq 20).
line21=$(sed -n 21p "$LOG")
[[ $(jq -r 'has("sig")' <<<"$line21") == false ]] || fail "line 21 should be an ordinary record"
for member in payload prev seq ts type; do
  fresh
  # Flip the 3rd byte of the member's value.
  at=$(($(offset_of "$line21" "\"$member\":") + ${#member} + 3 + 2))
  flip_byte "$C" 21 "$at"
  verify "$C"
  expect_only modified 20 "flipped byte in $member"
done
note "modified: a flipped byte in payload, prev, seq, ts and type is 'seq 20: modified'"

fresh; sed -i '31d' "$C"; verify "$C"; expect_only deleted 30 "deleted line 31"
fresh; sed -i '31{h;p}' "$C"; verify "$C"; expect_only inserted 30 "duplicated line 31"
fresh; sed -i '31{h;d};32{G}' "$C"; verify "$C"; expect_only reordered 31 "swapped lines 31 and 32"
# The first checkpoint, removed.
cp_line=$(grep -n '"type":"checkpoint"' "$LOG" | head -n 1 | cut -d: -f1)
fresh; sed -i "${cp_line}d" "$C"; verify "$C"
expect_only deleted "$(seq_of_line "$cp_line")" "removed checkpoint"
note "deleted, inserted, reordered, removed checkpoint: named at their seq"

# Truncation at every byte of the last record.
size=$(stat -c %s "$LOG")
last_len=$(tail -n 1 "$LOG" | wc -c)
for ((cut = size - last_len; cut < size; cut++)); do
  fresh; truncate -s "$cut" "$C"; verify "$C"
  expect_only truncated $((N - 1)) "truncated to $cut bytes"
done
note "truncated: every cut inside the last record is 'seq $((N - 1)): truncated'"

# Signatures: a flipped signature byte, and the wrong key.
fresh
flip_byte "$C" "$N" $(($(offset_of "$(tail -n 1 "$LOG")" '"value":"') + 20))
verify "$C"; expect_only bad-signature $((N - 1)) "flipped run.end signature"
kiln log pubkey --key-dir "$WORK/other-keys" >"$WORK/other.pem"
verify "$LOG" --pubkey "$WORK/other.pem"
[[ $RC == 1 ]] || fail "wrong key: exit $RC"
signed=$(grep -c '"sig":' "$LOG")
[[ $(printf '%s\n' "$OUT" | grep -c ': unknown-key: ') == "$signed" ]] ||
  fail "wrong key: want $signed unknown-key findings: $OUT"
kiln log pubkey --key-dir "$KEYS" >"$WORK/pub.pem"
verify "$LOG" --pubkey "$WORK/other.pem" --pubkey "$WORK/pub.pem"
expect_intact "rotated keys: both trusted"
note "bad-signature and unknown-key: named at their seq"

# Blobs.
blob_line=$(grep -n '"blob":' "$LOG" | head -n 1 | cut -d: -f1)
blob_seq=$(seq_of_line "$blob_line")
fresh; rm "$WORK/c/blobs/"*; verify "$C"; expect_only blob-missing "$blob_seq" "removed blob"
fresh; printf 'x' >>"$(ls "$WORK"/c/blobs/*)"; verify "$C"; expect_only blob-altered "$blob_seq" "altered blob"
note "blob-missing and blob-altered: named at their seq"

# Exit 2 for what is not a verification result.
set +e
kiln log verify "$WORK/nope.jsonl" --key-dir "$KEYS" 2>"$WORK/err"; rc=$?
set -e
[[ $rc == 2 ]] || fail "missing file: exit $rc, want 2"
grep -q "nope.jsonl" "$WORK/err" || fail "missing file: the error does not name it"

# --json for scripts.
fresh; sed -i '31d' "$C"
set +e; kiln log verify "$C" --key-dir "$KEYS" --json >"$WORK/report.json"; set -e
[[ $(jq -r '.ok, .findings[0].kind, .findings[0].seq' "$WORK/report.json" | tr '\n' ' ') == "false deleted 30 " ]] ||
  fail "--json report: $(cat "$WORK/report.json")"
echo "PASS $TEST_NAME"
