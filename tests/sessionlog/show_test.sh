#!/usr/bin/env bash
# `kiln log show`: the readable view of a run and the raw records for scripts.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"

LOG="$WORK/run/session.jsonl"
demo_log "$LOG" --records 40
kiln log show "$LOG" >"$WORK/view" || fail "show failed"
[[ $(wc -l <"$WORK/view") == $(line_count "$LOG") ]] || fail "one line per record expected"
for want in ' run.start .*run demo-run \| role implement \| image sha256:' \
  ' model.response .*tokens 1201 in / 300 out \| 850 ms' \
  ' tool.call .*shell call-1 \| make test' \
  ' tool.result .*exit 1 \| 1490 ms' \
  ' proxy.request .*DENIED GET pypi.org/simple' \
  ' steer .*from alice \| Please also update the changelog' \
  ' result .*submitted' \
  ' checkpoint .*\[signed ' \
  ' run.end .*status succeeded'; do
  grep -qE -- "$want" "$WORK/view" || fail "the view has no line matching /$want/"
done
grep -qE ' tool.result .*\[blob [0-9a-f]{12}\]' "$WORK/view" || fail "the blob payload is not shown"

kiln log show "$LOG" --type tool,steer --since 10 >"$WORK/some"
[[ -s $WORK/some ]] || fail "--type/--since showed nothing"
awk '{ if ($1 < 10 || ($3 !~ /^tool\./ && $3 != "steer")) { print; exit 1 } }' "$WORK/some" ||
  fail "--type tool,steer --since 10 let other records through"

kiln log show "$LOG" --json --type model.response >"$WORK/raw"
jq -c 'select(.type == "model.response")' "$LOG" | cmp -s - "$WORK/raw" ||
  fail "--json should print the raw record lines"
kiln log show "$LOG" --json | cmp -s - "$LOG" || fail "--json without filters should print the log"

# A damaged line: reported on stderr, exit 1, the rest still shown.
sed -i '5s/.*/garbage/' "$LOG"
set +e; kiln log show "$LOG" >"$WORK/view2" 2>"$WORK/err"; rc=$?; set -e
((rc == 1)) || fail "damaged log: exit $rc, want 1"
grep -q ':5: not a record' "$WORK/err" || fail "damaged line not reported: $(cat "$WORK/err")"
[[ $(wc -l <"$WORK/view2") == $(($(line_count "$LOG") - 1)) ]] || fail "other records not shown"
echo "PASS $TEST_NAME"
