#!/usr/bin/env bash
# No scoped secret value, in any encoding the writer knows, appears in the raw
# bytes of a log or its blobs, although the run leaked every form of it.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"

S1='ghp_Zx9Y8w7V6u5T4s3R2q1P0o'
S2='pa$$ w0rd/with+symbols&='
LOG="$WORK/run/session.jsonl"
demo_log "$LOG" --records 30 --secret "GITHUB_TOKEN=$S1" --secret "DB_PASSWORD=$S2"
[[ -n $(ls "$WORK/run/blobs") ]] || fail "the demo log should have a blob"

forms() {
  local v=$1
  printf '%s\n' "$v"
  printf '%s' "$v" | base64 -w0; echo
  printf '%s' "$v" | base64 -w0 | tr '+/' '-_' | tr -d '='; echo
  printf '%s' "$v" | od -An -tx1 | tr -d ' \n'; echo
  printf '%s' "$v" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; echo
  jq -rn --arg v "$v" '$v | @uri'
  # Inside HTTP Basic credentials: the middle of base64("user:" + value).
  printf 'user:%s' "$v" | base64 -w0 | cut -c9-20
}

count=0
while IFS= read -r form; do
  [[ -n $form ]] || continue
  if grep -rqaF -- "$form" "$LOG" "$WORK/run/blobs"; then
    fail "secret form '$form' found in the log or its blobs"
  fi
  count=$((count + 1))
done < <(forms "$S1"; forms "$S2")
note "$count encoded forms of 2 secrets: none in the log or the blobs"

grep -qaF '[secret:GITHUB_TOKEN]' "$LOG" || fail "no [secret:GITHUB_TOKEN] marker in the log"
grep -qaF '[secret:DB_PASSWORD]' "$LOG" || fail "no [secret:DB_PASSWORD] marker in the log"
grep -rqaF '[secret:GITHUB_TOKEN]' "$WORK/run/blobs" || fail "no marker in the blob"
verify "$LOG"
expect_intact "redacted log"
echo "PASS $TEST_NAME"
