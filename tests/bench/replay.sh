#!/usr/bin/env bash
# kiln replay's overhead per replayed turn (issue: replay and audit). Usage:
# tests/bench/replay.sh BUILD_DIR
#
# Records two runs with `kiln run` on the demo repository, a scripted model
# and a shell tool call per turn (`echo N`): one of 200 turns and one of 20.
# Then replays each KILN_BENCH_RUNS times (default 5) and prints the medians:
# the replay's wall time (the whole `kiln replay` process: verification,
# provisioning, the sandbox, the comparison), its tool time (the time between
# each tool.call and its tool.result in the replay's own log: the commands
# themselves), and the anchor measured in the same run, the original's tool
# time. kiln's overhead per replayed turn is the replay's time outside its
# tools, per turn: as a whole ((wall - tools) / 200), and at the margin,
# without the fixed cost of a replay (the 200-turn replay less the 20-turn
# one, over the 180 turns between them). Goal: under 2 ms per turn.
set -euo pipefail
build=$(realpath "${1:-build}")
kiln=$build/controller/kiln
runs=${KILN_BENCH_RUNS:-5}
[[ $(id -u) -eq 0 ]] || { echo "replay bench: run as root" >&2; exit 1; }
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
# shellcheck source=tests/bench/lib/controller.sh
source "$(dirname "$0")/lib/controller.sh"
tmp=$(mktemp -d /tmp/kiln-bench-replay-XXXXXX)
chmod 755 "$tmp"
trap 'bench_cleanup "$build" "$tmp"' EXIT
# One conversation per length, told apart by the task.
{
  echo "conversations:"
  for turns in 200 20; do
    echo "  - match: \"$turns turns\""
    echo "    replies:"
    for i in $(seq "$turns"); do
      echo "      - tool_calls: [{name: shell, input: {command: \"echo $i\"}}]"
    done
    echo "      - tool_calls: [{name: submit, input: {summary: done}}]"
  done
} >"$tmp/script.yaml"
mkdir -p "$tmp/skills/worker"
printf -- '---\nname: worker\ndescription: one command a turn\nbudgets: {max_turns: 250}\n---\nWork.\n' \
  >"$tmp/skills/worker/SKILL.md"
bench_controller "$build" "$tmp" "$tmp/script.yaml"

declare -A original
for turns in 200 20; do
  "$kiln" run --config "$tmp/kiln.yaml" --repo "$tmp/demo" --commit main --role worker \
    --task "$turns turns" --json >"$tmp/run-$turns.json" 2>"$tmp/run-$turns.err" ||
    { echo "replay bench: the $turns-turn run failed:" >&2; cat "$tmp/run-$turns.err" >&2; exit 1; }
  original[$turns]=$(jq -r .log_path "$tmp/run-$turns.json")
  id=$(jq -r .id "$tmp/run-$turns.json")
  for i in $(seq "$runs"); do
    t0=$(date +%s%N)
    "$kiln" replay --config "$tmp/kiln.yaml" "$id" --json >"$tmp/replay-$turns-$i.json" 2>/dev/null ||
      { echo "replay bench: replay $i of the $turns-turn run did not come out identical:" >&2
        cat "$tmp/replay-$turns-$i.json" >&2; exit 1; }
    t1=$(date +%s%N)
    echo "$(((t1 - t0) / 1000)) $(jq -r .replay.log "$tmp/replay-$turns-$i.json")"
  done >"$tmp/replays-$turns.txt"
done

python3 - "$tmp" "$runs" "${original[200]}" "${original[20]}" <<'PY'
import json, statistics, sys
from datetime import datetime, timezone
tmp, runs, orig200, orig20 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def ns(ts):  # RFC 3339 with nine fractional digits
    whole, frac = ts[:-1].split(".")
    t = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return int(t.timestamp()) * 10**9 + int(frac)

def tool_us(log):
    """The time between each tool.call and its tool.result, summed (us); turns."""
    calls, total, turns = {}, 0, 0
    for line in open(log):
        r = json.loads(line)
        p = r.get("payload") or {}
        if r["type"] == "tool.call":
            calls[p["call_id"]] = ns(r["ts"])
        elif r["type"] == "tool.result" and p.get("call_id") in calls:
            total += ns(r["ts"]) - calls.pop(p["call_id"])
            turns += 1
    return total / 1000, turns

rows = {}
for turns in (200, 20):
    walls, tools = [], []
    for line in open(f"{tmp}/replays-{turns}.txt"):
        wall, log = line.split()
        walls.append(int(wall))
        tools.append(tool_us(log)[0])
    rows[turns] = (statistics.median(walls), statistics.median(tools))
orig_tools, calls = tool_us(orig200)
w200, t200 = rows[200]
w20, t20 = rows[20]
print(f"replay of a recorded run, median of {runs} replays each (us)")
print(f"  {'':34} {'200 turns':>12} {'20 turns':>12}")
print(f"  {'replay wall (kiln replay)':34} {w200:12.0f} {w20:12.0f}")
print(f"  {'replay tool time':34} {t200:12.0f} {t20:12.0f}")
print(f"  {'anchor: original tool time':34} {orig_tools:12.0f} {tool_us(orig20)[0]:12.0f}")
print(f"  replay wall / original tool time (200 turns): {w200 / orig_tools:.2f}x")
print(f"  {calls} tool calls replayed per 200-turn replay")
whole = (w200 - t200) / 200 / 1000
margin = ((w200 - t200) - (w20 - t20)) / 180 / 1000
print(f"  kiln's overhead per replayed turn: {whole:.2f} ms as a whole, {margin:.2f} ms at the margin"
      f" (goal < 2 ms)")
PY
