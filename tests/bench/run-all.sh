#!/usr/bin/env bash
# Runs every sprout benchmark on this machine and prints the numbers (nothing passes or fails).
# Needs a set-up machine (scripts/setup.sh). Takes several minutes: each cold boot is tens of
# seconds on a PVM host. Usage: tests/bench/run-all.sh [BOOT_RUNS] [CLONES]
set -euo pipefail
cd "$(dirname "$0")/../.."
boot_runs=${1:-5}
clones=${2:-1000}
sprout=build/cli/sprout
snap=$(mktemp -d)/hello.snap
trap 'rm -rf "$(dirname "$snap")"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) CPUs, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo
echo "## sprout bench boot build/images/hello -n $boot_runs"
$sprout bench boot build/images/hello -n "$boot_runs"
echo
echo "## sprout prewarm build/images/hello"
$sprout prewarm build/images/hello -o "$snap"
echo
echo "## sprout bench clone (hello snapshot) -n $clones"
$sprout bench clone "$snap" -n "$clones"
