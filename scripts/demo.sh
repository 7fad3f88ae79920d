#!/usr/bin/env bash
# kiln's main job on a fresh Debian 12 machine, from an issue to a pull
# request. Installs what it needs, builds kiln, creates a local forge holding
# a small sample repository (demo/sample: a real bug and a failing test),
# files an issue, and drives the whole pipeline — triage, spec, the
# maintainer's approval (played by this script), implementation, review and
# verification — to a pull request whose diff fixes the bug and whose verify
# run passes. Every step is a sandboxed, logged run. Then an audit: the
# implementation run replayed from its session log, and its report. Last, the
# outer loop: the maintainer corrects kiln's triage of two feature requests,
# the improver's schedule is fired, and a pull request proposes guidance for
# the triage role, with its evidence and a comparison of past tasks re-run
# with the old and the new guidance.
#
# The model is the scripted model server (demo/model-script.yaml) unless
# ANTHROPIC_API_KEY or OPENAI_API_KEY is set, in which case the agents talk to
# that real model through kiln's egress proxy. Run as root.
#
#   scripts/demo.sh               the demo, in a fresh temporary state directory
#   KEEP=1 scripts/demo.sh        keep the state directory to look around after
#   IMAGE=python scripts/demo.sh  every run in the python toolchain image
#                                 (images/python.yaml), built first with
#                                 mmdebstrap (about two minutes) instead of
#                                 the host image
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
"$root/scripts/install-deps.sh"
echo "== building kiln"
"$root/scripts/build.sh" build >/dev/null
bin=$root/build
kiln=$bin/controller/kiln
start=$(date +%s)

state=$(mktemp -d /tmp/kiln-demo-XXXXXX)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  if [[ ${KEEP:-0} == 1 ]]; then echo "state kept in $state"; else rm -rf "$state"; fi
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

# The model: a real one when a key is set, else the scripted server.
if [[ -n ${ANTHROPIC_API_KEY:-} ]]; then
  model_config="model: {provider: anthropic, name: ${KILN_DEMO_MODEL:-claude-sonnet-4-5}}
proxy: {allow: []}"
  echo "model: Anthropic (${KILN_DEMO_MODEL:-claude-sonnet-4-5}), key from ANTHROPIC_API_KEY"
elif [[ -n ${OPENAI_API_KEY:-} ]]; then
  model_config="model: {provider: openai, name: ${KILN_DEMO_MODEL:-gpt-4.1}}"
  echo "model: OpenAI (${KILN_DEMO_MODEL:-gpt-4.1}), key from OPENAI_API_KEY"
else
  coproc MODEL { exec "$bin/tests/modelserver/kiln-model-server" \
    --script "$root/demo/model-script.yaml" --record "$state/model-requests.jsonl"; }
  server_pid=$MODEL_PID
  read -r port <&"${MODEL[0]}"
  model_config="models: {scripted: {provider: anthropic, upstream: \"http://127.0.0.1:$port\", api_key_env: \"\"}}
model: {provider: scripted, name: scripted-demo}"
  echo "model: the scripted model server on 127.0.0.1:$port (demo/model-script.yaml)"
fi

config=$state/kiln.yaml
cat >"$config" <<EOF
state_dir: $state
skills_dir: $root/skills
runtime_binary: $bin/runtime/kiln-runtime
forward_binary: $bin/controller/proxy/kiln-proxy-forward
metrics_listen: ""
poll_interval: 100ms
pipeline: {api_listen: ""}
images_dir: $root/images
sandbox: {timeout: 10m, memory: 2G, image: ${IMAGE:-host}}
schedules:
  - name: improve-triage          # docs/improver.md
    cron: "0 6 * * MON"
    time_zone: Europe/Berlin
    improve: {role: triage, repo: demo/stats}
$model_config
EOF

k() { "$kiln" "$@" --config "$config"; }
drive() { "$kiln" serve --config "$config" --until-idle 2>>"$state/serve.log"; }
repo=demo/stats

if [[ -n ${IMAGE:-} ]]; then
  step "the $IMAGE toolchain image (images/$IMAGE.yaml)"
  k image build "$IMAGE"
fi

step "a local forge with the sample repository (maintainer: maintainer)"
k forge init "$repo" --from "$root/demo/sample" --maintainer maintainer

step "a user files an issue"
k issue new --repo "$repo" --as reporter --title "median() is wrong for an even number of values" \
  --body "median([4, 1, 3, 2]) returns 3, but the docstring promises 2.5 (the mean of the two
middle values). test_median_of_an_even_number_of_values fails."

step "kiln triages it"
drive
k issue show --repo "$repo" 1

step "the maintainer asks for a spec: label ready-to-spec"
k issue label --repo "$repo" 1 --add ready-to-spec --as maintainer
drive
k pr list --repo "$repo"
spec_pr=$(k pr list --repo "$repo" --json | jq -r '.[] | select(.head.ref == "kiln/spec-1") | .number')
k pr diff --repo "$repo" "$spec_pr" | head -40

step "the maintainer approves the spec (pull request #$spec_pr)"
k pr approve --repo "$repo" "$spec_pr" --as maintainer --body "Spec looks right."
drive

impl_pr=$(k pr list --repo "$repo" --json | jq -r '.[] | select(.head.ref == "kiln/implement-1") | .number')
if [[ -z $impl_pr ]]; then
  echo "demo: no implementation pull request was opened; see $state/serve.log" >&2
  KEEP=1
  exit 1
fi
step "the pull request kiln opened (#$impl_pr), its review and its verify status"
k pr show --repo "$repo" "$impl_pr"
step "its diff"
k pr diff --repo "$repo" "$impl_pr"

step "every run, and its session log verified"
k runs list
for log in "$state"/logs/*.log; do
  "$kiln" log verify --key-dir "$state/keys" "$log"
done

step "an audit: the implement run replayed from its log, and written up"
impl_run=$(k runs list --role implement --json | jq -r '.[0].id')
# The same sandbox, tools run again, the model answered from the log: the
# first divergence, or "identical" (docs/replay.md).
k replay "$impl_run"
k audit "$impl_run" --format html -o "$state/audit-$impl_run.html"
echo "the audit report (docs/audit.md): $state/audit-$impl_run.html (KEEP=1 keeps it)"

step "the maintainer corrects kiln's triage of two feature requests"
for f in "mode() of a list" "variance() of a list"; do
  k issue new --repo "$repo" --as reporter --title "Feature request: ${f%% *}" \
    --body "Please add ${f} to stats, next to median()."
done
drive
for n in 4 5; do
  k issue show --repo "$repo" "$n" | sed -n '1,4p'
  k issue label --repo "$repo" "$n" --add enhancement --remove bug --as maintainer
done

step "the improver's weekly schedule, fired now: a pull request on the triage guidance"
k schedules list
k schedules run improve-triage
drive
improve_pr=$(k pr list --repo "$repo" --json |
  jq -r '.[] | select(.head.ref == "kiln/improve-triage") | .number')
if [[ -z $improve_pr ]]; then
  echo "demo: the improver opened no pull request; see $state/serve.log" >&2
  KEEP=1
  exit 1
fi
k pr show --repo "$repo" "$improve_pr"
k pr diff --repo "$repo" "$improve_pr"

verify_state=$(k pr show --repo "$repo" "$impl_pr" --json |
  jq -r '[.statuses[] | select(.context == "kiln/verify") | .state] | last')
echo
echo "kiln/verify on pull request #$impl_pr: $verify_state; pipeline took $(($(date +%s) - start)) s"
[[ $verify_state == success ]]
