#!/usr/bin/env bash
# Web view benchmark (issue 21): a finished run's page with a 10,000-record
# log, opened cold (the log read and verified) and warm, against the 1 s the
# issue allows; and server-sent-event fan-out, 50 pages watching a run whose
# log grows by 1,000 records a second: every page must see every item, and
# the controller's added CPU per record is printed against the writer's own
# cost per record (the log append) in the same run. With chromium and the
# page scripts installed (scripts/install-deps.sh), the page of another such
# run is also opened in headless chromium, six times: the first opening cold,
# the median of the other five warm.
#
#   tests/bench/web.sh BUILD_DIR
#
# Env: KILN_BENCH_WEB_RECORDS (10000), KILN_BENCH_WEB_PAGES (50),
# KILN_BENCH_WEB_RATE (1000), KILN_BENCH_WEB_SECONDS (5).
set -euo pipefail

BUILD=${1:?usage: tests/bench/web.sh BUILD_DIR}
bench=$(find "$BUILD" -type f -name kiln_web_bench -perm -u+x | head -n 1)
[[ -n $bench ]] || { echo "web bench: kiln_web_bench not built in $BUILD" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-web.XXXXXX")
trap 'rm -rf "$work"' EXIT

pages=${KILN_BENCH_WEB_PAGES:-50}
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ -x /usr/bin/chromium && -d $root/tests/browser/node_modules/playwright-core ]]; then
  export KILN_BENCH_WEB_BROWSER="node $root/tests/browser/open-time.mjs"
else
  echo "web bench: no chromium or playwright-core (scripts/install-deps.sh): the browser rows are left out" >&2
fi
json=$("$bench" "$work" "${KILN_BENCH_WEB_RECORDS:-10000}" "$pages" \
  "${KILN_BENCH_WEB_RATE:-1000}" "${KILN_BENCH_WEB_SECONDS:-5}")
j() { jq -r "$1" <<<"$json"; }
ratio() { echo "scale=3; $1 / $2" | bc -l | sed 's/^\./0./'; }

printf 'Web view (%s, %s cpus)\n' "$(uname -m)" "$(nproc)"
printf '%-52s %12s %8s  %s\n' "measure" "value" "ratio" "anchor"
cold=$(j '.page.cold_ms')
warm=$(j '.page.warm_ms')
printf '%-52s %9.1f ms %8s  %s\n' "run page, $(j .page.records)-record log, cold (read + verify)" \
  "$cold" "$(ratio "$cold" 1000)" "the 1 s allowed"
printf '%-52s %9.1f ms %8s  %s\n' "run page, same log, warm" "$warm" "$(ratio "$warm" 1000)" \
  "the 1 s allowed"
printf '%-52s %9s B\n' "run page size (newest 300 items)" "$(j .page.html_bytes)"
items=$(j .fanout.items)
seen=$(j .fanout.fewest_items_seen)
printf '%-52s %12s %8s  %s\n' "fan-out: items seen by the slowest of $pages pages" "$seen/$items" \
  "$(ratio "$seen" "$items")" "every item"
added=$(j .fanout.added_cpu_us_per_record)
writer=$(j .fanout.writer_cpu_us_per_record)
printf '%-52s %9.1f us %8s  %s\n' "fan-out: controller CPU added per record" "$added" \
  "$(ratio "$added" "$writer")" "the log append per record"
printf '%-52s %9.1f us %8s\n' "the log append per record (the anchor)" "$writer" "1"
printf '%-52s %9.1f ms\n' "idle CPU per second, $pages streams open" "$(j .fanout.idle_cpu_ms_per_s)"
if [[ $(j '.browser // empty') ]]; then
  median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
  for what in load first_contentful_paint; do
    # A paint the browser never reported is nan, not a number.
    cold=$(j ".browser[0].${what}_ms // \"nan\"")
    warm=$(j "[.browser[1:][].${what}_ms | select(. != null)][]" | median)
    warm=${warm:-nan}
    printf '%-52s %9.1f ms %8s  %s\n' "chromium: ${what//_/ }, cold" "$cold" "$(ratio "$cold" 1000)" \
      "the 1 s allowed"
    printf '%-52s %9.1f ms %8s  %s\n' "chromium: ${what//_/ }, warm (median of 5)" "$warm" \
      "$(ratio "$warm" 1000)" "the 1 s allowed"
  done
  printf '%-52s %12s\n' "chromium: timeline items on the page" "$(j '.browser[0].items')"
fi
