#!/usr/bin/env bash
# The Debian package, installed for real on this host, then purged:
#
#   tests/package/package_test.sh SOURCE_DIR BUILD_DIR
#
# Builds the package from BUILD_DIR (scripts/package.sh), installs it with
# dpkg -i, checks what an operator relies on (the binaries, the conffile and
# its mode, the kiln user, the unit, logrotate), starts the unit's own
# ExecStart as systemd would (no systemd runs here) with the installed
# configuration given free ports, and checks that kiln serve answers
# /healthz; a reinstall keeps a changed conffile; a purge leaves nothing.
# The host is put back as it was: the kiln user and group, if this test made
# them, go too. Skips (exit 77) where kiln is already installed.
set -euo pipefail
src=${1:?usage: package_test.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: package_test.sh SOURCE_DIR BUILD_DIR}
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
if [[ $(id -u) != 0 ]]; then
  echo "SKIP: installing a package needs root"
  exit 77
fi
if dpkg-query -W -f='${Status}' kiln 2>/dev/null | grep -q installed || [[ -e /usr/lib/kiln ]]; then
  echo "SKIP: kiln is already installed on this host; not touching it"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-package-test.XXXXXX")
had_user=0
getent passwd kiln >/dev/null && had_user=1
had_group=0
getent group kiln >/dev/null && had_group=1
serve=""
cleanup() {
  [[ -n $serve ]] && kill "$serve" 2>/dev/null && wait "$serve" 2>/dev/null
  dpkg --purge kiln >/dev/null 2>&1 || true
  ((had_user)) || deluser --system --quiet kiln >/dev/null 2>&1 || true
  ((had_group)) || delgroup --system --quiet kiln >/dev/null 2>&1 || true
  for h in /sys/fs/cgroup /sys/fs/cgroup/*; do rmdir "$h/kiln" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

deb=$("$src/scripts/package.sh" "$build" "$work")
[[ -f $deb ]] || fail "scripts/package.sh made no package"
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }

# What was installed.
[[ $(readlink -f /usr/bin/kiln) == /usr/lib/kiln/kiln ]] || fail "/usr/bin/kiln does not lead to /usr/lib/kiln/kiln"
for b in kiln kiln-controller kiln-runtime kiln-proxy-forward; do
  [[ -x /usr/lib/kiln/$b ]] || fail "/usr/lib/kiln/$b is missing"
done
[[ -f /usr/share/kiln/skills/triage/SKILL.md ]] || fail "the skills are not in /usr/share/kiln"
[[ -f /usr/share/kiln/images/base.yaml ]] || fail "the image recipes are not in /usr/share/kiln"
dpkg-query -W -f='${Conffiles}' kiln | grep -q '/etc/kiln/kiln.yaml' || fail "kiln.yaml is not a conffile"
[[ $(stat -c '%a %U %G' /etc/kiln/kiln.yaml) == "640 root kiln" ]] ||
  fail "/etc/kiln/kiln.yaml is $(stat -c '%a %U %G' /etc/kiln/kiln.yaml), not 640 root kiln"
uid=$(id -u kiln) || fail "no kiln user"
((uid < 1000)) || fail "the kiln user is not a system user (uid $uid)"
[[ $(stat -c '%a %U %G' /var/lib/kiln) == "750 root kiln" ]] || fail "/var/lib/kiln is not 750 root kiln"
grep -q '^ExecStart=/usr/bin/kiln serve --config /etc/kiln/kiln.yaml$' /lib/systemd/system/kiln.service ||
  fail "kiln.service does not start kiln serve with /etc/kiln/kiln.yaml"
grep -q '^Delegate=yes$' /lib/systemd/system/kiln.service || fail "kiln.service does not delegate cgroups"
if command -v logrotate >/dev/null; then
  logrotate -d /etc/logrotate.d/kiln >"$work/logrotate.log" 2>&1 || {
    cat "$work/logrotate.log"
    fail "logrotate refuses /etc/logrotate.d/kiln"
  }
fi
/usr/bin/kiln sandbox check >/dev/null 2>&1 || true  # the lean binary runs from its new home
/usr/bin/kiln runs list --config /etc/kiln/kiln.yaml >/dev/null ||
  fail "kiln runs list (kiln-controller beside kiln) failed"

# The unit's command, as systemd would run it, on free ports.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
metrics=$(free_port)
api=$(free_port)
sed -i "s/^metrics_listen: .*/metrics_listen: 127.0.0.1:$metrics/" /etc/kiln/kiln.yaml
printf 'pipeline: {api_listen: "127.0.0.1:%s"}\n' "$api" >>/etc/kiln/kiln.yaml
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/kiln.service)
# shellcheck disable=SC2086 # the unit's command line, split as systemd splits it
$exec_start >>/var/log/kiln/serve.log 2>&1 &
serve=$!
healthy=""
for _ in $(seq 1 100); do
  healthy=$(curl -sf --noproxy '*' "http://127.0.0.1:$metrics/healthz" 2>/dev/null) && break
  kill -0 "$serve" 2>/dev/null || break
  sleep 0.2
done
[[ -n $healthy ]] || { cat /var/log/kiln/serve.log; fail "kiln serve did not answer /healthz"; }
curl -sf --noproxy '*' "http://127.0.0.1:$api/healthz" >/dev/null ||
  { cat /var/log/kiln/serve.log; fail "the web listener did not answer /healthz"; }
kill -TERM "$serve"
wait "$serve" || fail "kiln serve exited $? on SIGTERM"
serve=""
grep -q 'kiln serve' /var/log/kiln/serve.log || fail "kiln serve wrote nothing to /var/log/kiln/serve.log"

# An upgrade (here: the same package again) keeps the operator's changes.
dpkg -i --force-confold "$deb" >"$work/dpkg2.log" 2>&1 || { cat "$work/dpkg2.log"; fail "reinstalling failed"; }
grep -q "^metrics_listen: 127.0.0.1:$metrics$" /etc/kiln/kiln.yaml || fail "reinstalling lost the changed conffile"

# A purge leaves nothing of the package.
dpkg --purge kiln >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge failed"; }
for p in /usr/lib/kiln /usr/bin/kiln /usr/share/kiln /etc/kiln /var/lib/kiln /var/log/kiln \
  /lib/systemd/system/kiln.service /etc/logrotate.d/kiln; do
  [[ ! -e $p && ! -L $p ]] || fail "$p is left after the purge"
done
echo "PASS: installed, served /healthz, kept its conffile, purged"
