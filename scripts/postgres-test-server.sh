#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests of the PostgreSQL store (CTest
# fixture kiln_postgres, tests/CMakeLists.txt):
#
#   scripts/postgres-test-server.sh start STATE_DIR
#   scripts/postgres-test-server.sh stop STATE_DIR
#
# start: initdb in a fresh temporary directory, owned by and run as the
# unprivileged user nobody (PostgreSQL refuses root), with password
# authentication, listening on a free loopback port and a socket in that
# directory; then writes STATE_DIR/url (postgres://kiln:PASSWORD@127.0.0.1:PORT/postgres,
# a superuser, so that each test can create a database of its own) and
# STATE_DIR/dir. Where Debian's postgresql is not installed it writes
# STATE_DIR/skip with the reason instead, and the tests skip naming it.
# stop: stops that server and removes its directory.
# down / up: stop the running server (fast: connections are cut, as when it
# restarts) and start it again on the same port with the same data, for the
# tests of what the store does while its server is away.
set -euo pipefail

cmd=${1:-}
state=${2:-}
if [[ -z $cmd || -z $state ]]; then
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
fi

stop() {
  [[ -f $state/dir ]] || return 0
  local dir
  dir=$(cat "$state/dir")
  if [[ -d $dir/data ]]; then
    runuser -u nobody -- "$(cat "$state/bin")/pg_ctl" -D "$dir/data" -m immediate -w stop \
      >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  rm -f "$state/dir" "$state/url" "$state/bin" "$state/options"
}

server() {
  runuser -u nobody -- "$(cat "$state/bin")/pg_ctl" -D "$(cat "$state/dir")/data" "$@" >/dev/null
}

case $cmd in
  stop)
    stop
    exit 0
    ;;
  down)
    server -m fast -w stop
    exit 0
    ;;
  up)
    server -l "$(cat "$state/dir")/data/server.log" -w -t 60 start -o "$(cat "$state/options")"
    exit 0
    ;;
  start) ;;
  *)
    echo "$0: unknown command '$cmd' (start, stop, down or up)" >&2
    exit 2
    ;;
esac

mkdir -p "$state"
stop
rm -f "$state/skip"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z $bin || ! -x $bin/initdb ]]; then
  echo "Debian's postgresql is not installed (no /usr/lib/postgresql/*/bin/initdb)" >"$state/skip"
  echo "postgres-test-server: skipped: $(cat "$state/skip")"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "not root: cannot start PostgreSQL as the user nobody" >"$state/skip"
  echo "postgres-test-server: skipped: $(cat "$state/skip")"
  exit 0
fi

# Under /tmp, not the build tree: nobody must reach it, and a checkout under
# /root is closed to other users.
dir=$(mktemp -d /tmp/kiln-postgres.XXXXXX)
chmod 755 "$dir"
echo "$dir" >"$state/dir"
echo "$bin" >"$state/bin"
mkdir "$dir/data" "$dir/sock"
chown nobody:nogroup "$dir/data" "$dir/sock"
password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
printf '%s\n' "$password" >"$dir/pwfile"
chown nobody:nogroup "$dir/pwfile"
chmod 600 "$dir/pwfile"

as_nobody() { runuser -u nobody -- "$@"; }
as_nobody "$bin/initdb" -D "$dir/data" -U kiln --pwfile="$dir/pwfile" --auth=scram-sha-256 \
  -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
  cat "$dir/initdb.log" >&2
  echo "postgres-test-server: initdb failed" >&2
  exit 1
}
rm -f "$dir/pwfile"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# fsync off: a test server's data may be lost with the machine; the tests
# check kiln's logic, not the disk (KILN_POSTGRES_FSYNC=on for a benchmark,
# as a real server runs). Many connections: three hosts' tests.
echo "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=${KILN_POSTGRES_FSYNC:-off} -c max_connections=200" \
  >"$state/options"
as_nobody "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 start \
  -o "$(cat "$state/options")" >/dev/null || {
  cat "$dir/data/server.log" >&2
  echo "postgres-test-server: the server did not start" >&2
  exit 1
}
echo "postgres://kiln:$password@127.0.0.1:$port/postgres" >"$state/url"
echo "postgres-test-server: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $dir"
