#!/usr/bin/env bash
# Toolchain image benchmark (issue: toolchain images). Usage:
# tests/bench/images.sh BUILD_DIR
#
# 1. Start-to-exit of `true`, median of KILN_BENCH_RUNS (default 100) runs
#    each, in one hyperfine run: kiln's sandbox on the built `base` image
#    (its layers as overlay lowers) against the same sandbox on the host
#    image, and against `podman run --rm` of the same root filesystem
#    (Debian's podman with runc, the image pulled from kiln's OCI export).
# 2. Build time of `base` (images/base.yaml), KILN_BENCH_BUILDS (default 2)
#    builds each, median: `kiln image build base --force` against mmdebstrap
#    alone with the same variant, packages and apt sources.
# 3. Handing a run the `base` image (images::Store::Resolve, issue: a run's
#    own cost), median of KILN_BENCH_RUNS: every layer's seal checked by a
#    walk (the anchor: `kiln run`, and `kiln serve` before the watch) against
#    the seals kept checked by fanotify (`kiln serve`).
set -euo pipefail
build=$(realpath "${1:-build}")
root=$(realpath "$(dirname "$0")/../..")
kiln=$build/controller/kiln
runs=${KILN_BENCH_RUNS:-100}
builds=${KILN_BENCH_BUILDS:-2}
[[ $(id -u) -eq 0 ]] || { echo "images bench: run as root (mmdebstrap, cgroups)" >&2; exit 1; }
# podman with runc: crun, podman's default, refuses this host's hybrid cgroup
# layout (cgroup v1 controllers beside v2).
command -v podman >/dev/null && command -v runc >/dev/null ||
  apt-get install -y -qq --no-install-recommends podman runc >/dev/null
tmp=$(mktemp -d /tmp/kiln-bench-XXXXXX)
chmod 755 "$tmp"
pod=(podman --root "$tmp/podman" --runroot "$tmp/podman-run" --storage-driver overlay)
trap '"${pod[@]}" rm -a -f >/dev/null 2>&1 || true; umount -R "$tmp/podman" 2>/dev/null || true; rm -rf "$tmp"' EXIT
state=$tmp/state
cfg=$tmp/kiln.yaml
printf 'state_dir: %s\nimages_dir: %s/images\n' "$state" "$root" >"$cfg"

echo "== building base once (fills the package cache)"
"$kiln" image build base --config "$cfg" 2>/dev/null
layers=()
while read -r l; do layers+=(--layer "$l"); done < <("$kiln" image inspect base --config "$cfg" | jq -r '.layers[].path')
# podman names what it pulls after the layout's path, which must be lowercase.
oci=/tmp/kiln-bench-oci-$$
"$kiln" image export base "$oci" --config "$cfg" >/dev/null
"${pod[@]}" pull -q "oci:$oci:base" >/dev/null
rm -rf "$oci"
podman_image=$("${pod[@]}" images -q | head -1)
"$kiln" sandbox run --state-dir "$state" -- true  # warm the host image and filter cache

echo "== start-to-exit of true, median of $runs runs (hyperfine)"
hyperfine -N --style basic --warmup 10 --runs "$runs" --export-json "$tmp/start.json" \
  -n image "$kiln sandbox run --state-dir $state ${layers[*]} -- /bin/true" \
  -n host "$kiln sandbox run --state-dir $state -- /bin/true" \
  -n podman "${pod[*]} --runtime runc run --rm --network=none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 $podman_image /bin/true" \
  >"$tmp/hyperfine.log" 2>&1 || { cat "$tmp/hyperfine.log"; exit 1; }
jq -r '.results | map({(.command): .median}) | add |
  "kiln, base image  \(.image*1000 | . * 100 | round / 100) ms\n" +
  "kiln, host image  \(.host*1000 | . * 100 | round / 100) ms\n" +
  "podman run --rm   \(.podman*1000 | . * 100 | round / 100) ms\n" +
  "ratio image/host   \(.image/.host | . * 100 | round / 100)\n" +
  "ratio image/podman \(.image/.podman | . * 1000 | round / 1000)"' "$tmp/start.json"

echo "== handing a run the base image, median of $runs (kiln_seal_bench)"
seal_bench=$(find "$build" -type f -name kiln_seal_bench -perm -u+x | head -n 1)
"$seal_bench" "$state" base "$runs" | jq -r '
  "entries in its layers        \(.entries)\n" +
  "walk at every run            \(.walk_ms * 100 | round / 100) ms\n" +
  "watched: first run (a walk)  \(.watch_first_ms * 100 | round / 100) ms\n" +
  "watched: each run after      \(.watch_ms * 1000 | round / 1000) ms\n" +
  "ratio watched/walk           \(.watch_ms / .walk_ms * 10000 | round / 10000)"'

echo "== build time of base, median of $builds builds each"
packages=$(sed -n 's/^packages: \[\(.*\)\]$/\1/p' "$root/images/base.yaml" | tr -d ' ')
since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { print e - s }'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
kiln_times=() alone_times=()
for ((i = 0; i < builds; i++)); do
  s=$(date +%s.%N)
  "$kiln" image build base --force --config "$cfg" >/dev/null 2>&1
  kiln_times+=("$(since "$s")")
  s=$(date +%s.%N)
  SOURCE_DATE_EPOCH=1700000000 mmdebstrap --quiet --mode=root --variant=apt \
    --include="$packages" --format=tar bookworm "$tmp/alone.tar" \
    /etc/apt/sources.list.d/debian.sources >/dev/null 2>&1
  alone_times+=("$(since "$s")")
  rm -f "$tmp/alone.tar"
done
k=$(printf '%s\n' "${kiln_times[@]}" | median)
a=$(printf '%s\n' "${alone_times[@]}" | median)
printf 'kiln image build base --force  %.1f s\n' "$k"
printf 'mmdebstrap alone               %.1f s\n' "$a"
awk -v k="$k" -v a="$a" 'BEGIN { printf "kiln overhead                  %.1f%%\n", (k - a) * 100 / a }'
