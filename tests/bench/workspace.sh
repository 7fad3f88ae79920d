#!/usr/bin/env bash
# Workspace benchmark (issue: repository provisioning through libgit2).
# Usage: tests/bench/workspace.sh BUILD_DIR
#
# A repository of KILN_BENCH_FILES (default 50,000) files in 1,000
# directories and KILN_BENCH_COMMITS (default 1,000) commits, each after the
# first changing 5 files, made once with `git fast-import` + `git repack` and
# cached under /tmp keyed by those parameters. Then, in one run, for its last
# commit:
#   (a) first run of the commit, cold cache: Resolve (libgit2 clone of the
#       mirror) + Tree (checkout) + MountWorkspace, once;
#   (b) next runs of the same commit: Resolve (no fetch) + Tree (cached) +
#       MountWorkspace, median of KILN_BENCH_RUNS (default 20) runs in one
#       process; and the same as a whole process (exec, teardown included);
#   (c) `git clone --local --no-checkout` + `git checkout --detach COMMIT`;
#   (d) `git worktree add --detach DIR COMMIT`;
# (c) and (d) with hyperfine, median of KILN_BENCH_GIT_RUNS (default 5) runs
# (each writes 50,000 files: tens of seconds on a busy VM). Prints a table
# and the ratio (c)/(b); the goal is (b) at least 10x faster than (c). Also
# times Collect over the untouched workspace and after 5 files changed, each
# both ways: walking every file (read and hashed), and guided by the
# overlay's upper directory as the runner does (goal: <= 5 ms for the 5-file
# change, whatever the tree's size).
set -euo pipefail
build=$(realpath "${1:?usage: tests/bench/workspace.sh BUILD_DIR}")
files=${KILN_BENCH_FILES:-50000}
commits=${KILN_BENCH_COMMITS:-1000}
runs=${KILN_BENCH_RUNS:-20}
git_runs=${KILN_BENCH_GIT_RUNS:-5}
bench=$(find "$build" -type f -name kiln-workspace-bench -perm -u+x | head -n 1)
[[ -n $bench ]] || { echo "workspace bench: kiln-workspace-bench not built in $build" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "workspace bench: run as root (overlay mounts)" >&2; exit 1; }
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
# shellcheck source=tests/bench/lib/repo.sh
source "$(dirname "$0")/lib/repo.sh"

repo=$(bench_repo "$files" "$commits")
commit=$(git -C "$repo" rev-parse main)
tmp=$(mktemp -d /tmp/kiln-bench-workspace-XXXXXX)
cleanup() {
  for d in "$tmp"/run*; do [[ -d $d/workspace ]] && umount -l "$d/workspace" 2>/dev/null || true; done
  git -C "$repo" worktree prune 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
sync
median() { jq -s "map(.$1) | sort | .[length / 2 | floor]"; }
fmt() { printf '%.2f' "$1"; }

# (a) cold cache: the mirror is cloned, the tree checked out.
modify=()
for i in 0 1 2 3 4; do modify+=(--modify "$(printf 'src/d%02d/s00/file%06d.txt' "$i" "$i")"); done
a=$("$bench" --root "$tmp/cache" --url "$repo" --rev "$commit" --run-dir "$tmp/run" --collect \
  "${modify[@]}")
[[ $(jq .changed_files <<<"$a") == 5 && $(jq .changed_upper_files <<<"$a") == 5 ]] ||
  { echo "workspace bench: Collect did not find the 5 changed files: $a" >&2; exit 1; }
[[ $(jq -r .fetched <<<"$a") == true ]] || { echo "workspace bench: (a) did not clone" >&2; exit 1; }
# (b) warm: the same commit again, in one process, then as whole processes.
"$bench" --root "$tmp/cache" --url "$repo" --rev "$commit" --run-dir "$tmp/run" \
  --runs "$runs" >"$tmp/b.jsonl"
[[ $(jq -s 'map(.fetched) | any' "$tmp/b.jsonl") == false ]] ||
  { echo "workspace bench: (b) fetched" >&2; exit 1; }
# hf NAME RUNS HYPERFINE-ARGS...: the median in ms.
hf() { hyperfine -N --style basic --warmup 1 --runs "$2" --export-json "$tmp/$1.json" "${@:3}" \
  >"$tmp/$1.log" 2>&1 || { cat "$tmp/$1.log"; exit 1; }; jq '.results[0].median * 1000' "$tmp/$1.json"; }
bp=$(hf bp "$runs" "$bench --root $tmp/cache --url $repo --rev $commit --run-dir $tmp/run")
# (c) and (d): git itself.
c=$(hf c "$git_runs" --prepare "rm -rf $tmp/clone" \
  "sh -c 'git clone -q --local --no-checkout $repo $tmp/clone && git -C $tmp/clone checkout -q --detach $commit'")
d=$(hf d "$git_runs" --prepare "sh -c 'rm -rf $tmp/wt; git -C $repo worktree prune'" \
  "git -C $repo worktree add -q --detach $tmp/wt $commit")

b_resolve=$(median resolve_ms <"$tmp/b.jsonl")
b_tree=$(median tree_ms <"$tmp/b.jsonl")
b_mount=$(median mount_ms <"$tmp/b.jsonl")
b=$(median total_ms <"$tmp/b.jsonl")
ratio() { echo "scale=1; $1 / $b" | bc -l | sed 's/^\./0./'; }
pack=$(du -sm "$repo/objects/pack" | cut -f1)

printf 'Workspace: %s files, %s commits, %s MB of packs (%s, %s cpus); medians of %s runs, git %s\n' \
  "$files" "$commits" "$pack" "$(uname -m)" "$(nproc)" "$runs" "$git_runs"
printf '%-62s %12s %10s\n' "measure" "time" "x (b)"
printf '%-62s %9s ms %10s\n' "(a) first run: Resolve (clone) + Tree (checkout) + Mount" \
  "$(fmt "$(jq .total_ms <<<"$a")")" "$(ratio "$(jq .total_ms <<<"$a")")"
printf '%-62s %s\n' "    Resolve / Tree / Mount" \
  "$(fmt "$(jq .resolve_ms <<<"$a")") / $(fmt "$(jq .tree_ms <<<"$a")") / $(fmt "$(jq .mount_ms <<<"$a")") ms"
printf '%-62s %9s ms %10s\n' "(b) next run: Resolve (no fetch) + Tree (cached) + Mount" "$(fmt "$b")" "1.0"
printf '%-62s %s\n' "    Resolve / Tree / Mount" \
  "$(fmt "$b_resolve") / $(fmt "$b_tree") / $(fmt "$b_mount") ms"
printf '%-62s %9s ms %10s\n' "(b) as a process: exec, libgit2 init, (b), teardown" "$(fmt "$bp")" "$(ratio "$bp")"
printf '%-62s %9s ms %10s\n' "(c) git clone --local --no-checkout + git checkout --detach" "$(fmt "$c")" "$(ratio "$c")"
printf '%-62s %9s ms %10s\n' "(d) git worktree add --detach" "$(fmt "$d")" "$(ratio "$d")"
collect_row() {
  printf '%-62s %9s ms %10s\n' "$1" "$(fmt "$(jq ".$2_ms" <<<"$a")")" "$3"
}
collect_row "Collect, untouched, every file read" collect ""
collect_row "Collect, untouched, guided by the upper directory" collect_upper ""
collect_row "Collect, 5 files changed, every file read" changed ""
collect_row "Collect, 5 files changed, guided by the upper directory" changed_upper ""
goal=$(echo "$c / $b >= 10" | bc -l)
printf 'ratio (c)/(b): %s  (%s goal >= 10)\n' "$(ratio "$c")" "$([[ $goal == 1 ]] && echo meets || echo BELOW)"
printf 'ratio (c)/(b as a process): %s\n' "$(echo "scale=1; $c / $bp" | bc -l)"
printf 'ratio Collect every file / guided, 5 files changed: %s  (goal: guided <= 5 ms: %s)\n' \
  "$(jq '.changed_ms / .changed_upper_ms | floor' <<<"$a")" \
  "$(jq -r 'if .changed_upper_ms <= 5 then "meets" else "MISSES" end' <<<"$a")"
