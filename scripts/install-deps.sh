#!/usr/bin/env bash
# Installs every Debian package that kiln's build, tests and benchmarks need.
# Idempotent: packages already present are skipped, so running it twice is cheap.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang clang-format
  libclang-rt-14-dev
  # libraries
  libseccomp-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libssl-dev
  # test and benchmark tools
  bubblewrap util-linux iproute2 jq hyperfine procps python3 file curl
  # runtime and scripted model server
  libcurl4-openssl-dev libboost-dev libyaml-cpp-dev
  # controller: run store, repositories
  libsqlite3-dev libgit2-dev libpq-dev
  # the PostgreSQL store's tests: a server the tests start (scripts/postgres-test-server.sh)
  postgresql
  # schedules: cron in IANA time zones (the date library and the tz database)
  libhowardhinnant-date-dev tzdata
  # toolchain images: tars of layers (libarchive), Debian trees (mmdebstrap)
  libarchive-dev mmdebstrap
  # page tests: Debian's chromium, driven by playwright-core (tests/browser)
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js and npm run the page tests' driver; a machine that has them from
# elsewhere (NodeSource) keeps them.
command -v npm >/dev/null || missing+=(nodejs npm)

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
elif [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# tests/browser's packages, pinned by its package-lock.json: playwright-core
# (it drives the chromium above and downloads no browser of its own), and
# GitHub's client and OpenAPI description for the forge API's test. npm ci
# runs again whenever the lock file is not the one last installed (a stamp
# of its SHA-256 in node_modules).
browser="$(dirname "$0")/../tests/browser"
lock_sum="$(sha256sum "$browser/package-lock.json" | cut -d' ' -f1)"
stamp="$browser/node_modules/.kiln-package-lock.sha256"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" ]]; then
  echo "install-deps: npm ci in tests/browser"
  npm ci --prefix "$browser" --no-audit --no-fund --loglevel=error
  echo "$lock_sum" >"$stamp"
fi
