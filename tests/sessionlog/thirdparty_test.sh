#!/usr/bin/env bash
# The auditor's check, without kiln: canonical form with jq, the hash chain
# with sha256sum, signatures and key ids with openssl, blobs with sha256sum —
# exactly as docs/session-log.md describes. It must pass an intact log and
# fail a tampered one.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"

# thirdparty_verify LOG PUBKEY_PEM: 0 if intact, 1 (with a reason) if not.
thirdparty_verify() {
  local log=$1 pub=$2 dir
  dir=$(dirname "$log")
  local t="$WORK/tp"
  mkdir -p "$t"

  # 1. Every line is exactly what `jq -cS .` prints for it.
  jq -cS . "$log" >"$t/canon" 2>/dev/null || { echo "not JSON lines"; return 1; }
  cmp -s "$t/canon" "$log" || { echo "not canonical"; return 1; }

  # 2. The key id: first 16 bytes of SHA-256 over the raw 32-byte key.
  local kid run
  kid=$(openssl pkey -pubin -in "$pub" -outform DER | tail -c 32 | sha256sum | cut -c1-32)
  run=$(head -n 1 "$log" | jq -r '.payload.log.run_id')
  [[ $(head -n 1 "$log" | jq -r '.payload.log.key_id') == "$kid" ]] ||
    { echo "run.start names another key"; return 1; }

  # 3. The chain: record 0's prev is the genesis hash, every other prev is
  #    sha256sum of the line before (newline included); seq counts from 0.
  local prev seq=0 n=0 s p kid_s sig blob size hash head
  prev=$(printf 'kiln-session-log/1 genesis\nrun_id %s\nkey_id %s\n' "$run" "$kid" |
    sha256sum | cut -d' ' -f1)
  jq -r '[.seq, .prev, (.sig.key_id // "-"), (.sig.value // "-"), (.blob.sha256 // "-"),
          (.blob.size // "-")] | @tsv' "$log" >"$t/fields"
  while IFS= read -r line; do printf '%s\n' "$line" | sha256sum | cut -c1-64; done <"$log" >"$t/hashes"
  while IFS=$'\t' read -r s p kid_s sig blob size hash; do
    n=$((n + 1))
    [[ $s == "$seq" ]] || { echo "seq gap at $seq"; return 1; }
    [[ $p == "$prev" ]] || { echo "chain broken at seq $seq"; return 1; }
    prev=$hash

    # 4. Signed records: Ed25519 over the documented statement, whose head is
    #    the SHA-256 of the record without its sig member.
    if [[ $kid_s != - ]]; then
      [[ $kid_s == "$kid" ]] || { echo "unknown key at $seq"; return 1; }
      head=$(sed -n "${n}p" "$log" | jq -cS 'del(.sig)' | sha256sum | cut -d' ' -f1)
      printf 'kiln-session-log/1 signature\nrun_id %s\nseq %s\ncount %s\nhead %s\n' \
        "$run" "$seq" "$((seq + 1))" "$head" >"$t/msg"
      printf '%s' "$sig" | base64 -d >"$t/sig"
      openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in "$t/msg" -sigfile "$t/sig" \
        >/dev/null 2>&1 || { echo "bad signature at seq $seq"; return 1; }
    fi

    # 5. Blobs: the file named by the SHA-256 has that SHA-256 and size.
    if [[ $blob != - ]]; then
      [[ -f $dir/blobs/$blob ]] || { echo "blob $blob missing"; return 1; }
      [[ $(sha256sum <"$dir/blobs/$blob" | cut -d' ' -f1) == "$blob" ]] ||
        { echo "blob $blob altered"; return 1; }
      [[ $(stat -c %s "$dir/blobs/$blob") == "$size" ]] || { echo "blob $blob size"; return 1; }
    fi
    seq=$((seq + 1))
  done < <(paste "$t/fields" "$t/hashes")

  # 6. Complete: the last record is the signed run.end.
  [[ $(tail -n 1 "$log" | jq -r '.type + " " + (has("sig") | tostring)') == "run.end true" ]] ||
    { echo "no signed run.end"; return 1; }
  [[ $(tail -c 1 "$log" | od -An -c | tr -d ' ') == '\n' ]] || { echo "torn last line"; return 1; }
  return 0
}

LOG="$WORK/run/session.jsonl"
demo_log "$LOG" --records 60 --secret TOKEN=tp-secret-123456
kiln log pubkey --key-dir "$KEYS" >"$WORK/pub.pem"
[[ -n $(ls "$WORK/run/blobs") ]] || fail "the demo log has no blob to check"
grep -q '"sig":' "$LOG" || fail "the demo log has no signed record"

why=$(thirdparty_verify "$LOG" "$WORK/pub.pem") || fail "intact log rejected by the third-party check: $why"
note "intact log: third-party check passes"

# Tampered copies must fail the same check.
tamper() {
  local what=$1
  shift
  rm -rf "$WORK/t" && cp -r "$WORK/run" "$WORK/t"
  "$@" "$WORK/t/session.jsonl"
  if why=$(thirdparty_verify "$WORK/t/session.jsonl" "$WORK/pub.pem"); then
    fail "third-party check accepted a log with $what"
  fi
  note "$what: third-party check fails ($why)"
}
tamper "a changed payload" sed -i '7s/"turn":2/"turn":3/'
tamper "a deleted record" sed -i '12d'
# shellcheck disable=SC2016  # sed and bash expand these, not this shell
tamper "a changed run.end" sed -i '$s/"status":"succeeded"/"status":"failed"/'
# shellcheck disable=SC2016
tamper "an altered blob" bash -c 'f=$(ls "$(dirname "$0")"/blobs/*); printf x >>"$f"'
other="$WORK/other-keys"
kiln log pubkey --key-dir "$other" >"$WORK/other.pem"
if thirdparty_verify "$LOG" "$WORK/other.pem" >/dev/null; then
  fail "third-party check accepted the log with another key"
fi

# And kiln agrees with the auditor on the intact log.
verify "$LOG"
expect_intact "kiln log verify on the demo log"
echo "PASS $TEST_NAME"
