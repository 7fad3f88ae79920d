#!/usr/bin/env bash
# The toolchain image suite (CTest label slow-images): the shipped recipes
# built for real with mmdebstrap from Debian's archive, their digests
# reproducible, the demo's sample repository tested inside the python
# image. A few minutes; .ci/run runs it after scripts/test.sh, which builds
# what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source "$root/scripts/stage.sh"
"$root/scripts/install-deps.sh"

stage "build (RelWithDebInfo)"
"$root/scripts/build.sh" build

stage "image builds (mmdebstrap)"
ctest --test-dir build --output-on-failure -L slow-images --timeout 1800

stage_done "image builds passed"
