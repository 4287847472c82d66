#!/usr/bin/env bash
# The main job on a set-up machine: prewarm the bundled hello image into a snapshot (one cold boot to
# READY), then restore copy-on-write clones of it and invoke each one. No daemon needed.
set -euo pipefail
cd "$(dirname "$0")/.."
sprout=build/cli/sprout
snap=build/hello.snap

$sprout prewarm build/images/hello -o "$snap"
$sprout clone --direct "$snap" -n 5 --invoke '{"name":"sprout"}'
