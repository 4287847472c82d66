#!/usr/bin/env bash
# The main job on a set-up machine: boot the bundled example image to READY (cold start).
set -euo pipefail
cd "$(dirname "$0")/.."
sprout=build/cli/sprout
$sprout boot build/images/hello
