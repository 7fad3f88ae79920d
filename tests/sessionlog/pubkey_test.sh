#!/usr/bin/env bash
# The host signing key: created on first use (0700 directory, 0600 key),
# printed by `kiln log pubkey`, its id the one openssl derives.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh" "$@"

D="$WORK/state/kiln/keys"
kiln log pubkey --key-dir "$D" >"$WORK/pub1.pem" || fail "pubkey failed"
[[ $(stat -c %a "$D") == 700 ]] || fail "key directory mode $(stat -c %a "$D"), want 700"
[[ $(stat -c %a "$D/session-signing.key") == 600 ]] || fail "key mode, want 600"
openssl pkey -pubin -in "$WORK/pub1.pem" -noout 2>/dev/null || fail "not a PEM public key"
kiln log pubkey --key-dir "$D" >"$WORK/pub2.pem"
cmp -s "$WORK/pub1.pem" "$WORK/pub2.pem" || fail "the key changed between calls"
want=$(openssl pkey -pubin -in "$WORK/pub1.pem" -outform DER | tail -c 32 | sha256sum | cut -c1-32)
[[ $(kiln log pubkey --key-dir "$D" --id) == "$want" ]] || fail "key id differs from openssl's"

chmod 644 "$D/session-signing.key"
kiln log demo "$WORK/x.jsonl" --key-dir "$D" 2>"$WORK/err" && fail "used a world-readable key"
grep -q "mode 0644" "$WORK/err" || fail "no clear error for a readable key: $(cat "$WORK/err")"

# The default directory for a non-root user is under XDG_STATE_HOME.
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
  mkdir -p "$WORK/xdg" && chmod 777 "$WORK" "$WORK/xdg"
  setpriv --reuid=65534 --regid=65534 --clear-groups env XDG_STATE_HOME="$WORK/xdg" \
    "$KILN" log pubkey >/dev/null || fail "pubkey as an unprivileged user"
  [[ -f $WORK/xdg/kiln/keys/session-signing.key ]] || fail "no key under XDG_STATE_HOME"
  [[ $(stat -c %u "$WORK/xdg/kiln/keys/session-signing.key") == 65534 ]] || fail "key owner"
fi
echo "PASS $TEST_NAME"
