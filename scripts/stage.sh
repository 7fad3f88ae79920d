# Sourced by the test scripts: "=== name" banners with the time each stage
# took, so a slow stage shows in CI's output.
_stage_name=""
_stage_start=$SECONDS
_stage_end() {
  if [[ -n $_stage_name ]]; then
    echo "=== $_stage_name: $((SECONDS - _stage_start)) s"
  fi
}
stage() {
  _stage_end
  _stage_name=$1
  _stage_start=$SECONDS
  echo "=== $1"
}
stage_done() {
  _stage_end
  echo "=== $1 (${SECONDS} s in all)"
}
