#!/usr/bin/env bash
# scripts/bench-plots.sh turns the benchmarks' --json output into the SVGs of docs/benchmarks.md:
# run on the JSON of a real run (the fixture, kept as sprout printed it), every plot is made and
# holds its series; a missing input skips only its plot; a QEMU peer that failed is shown as
# FAILED, not dropped; no input at all is an error. Needs gnuplot, no VM.
#   test_plots.sh SOURCE_DIR
set -u
src=$1
fixture=$src/tests/bench/plots-fixture
passed=0 failed=0
check() { # check WHAT COMMAND...
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what" >&2; fi
}
tmp=$(mktemp -d /tmp/sprout-plots.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$src/scripts/bench-plots.sh" plot "$fixture" "$tmp/all" 2>"$tmp/all.err"
check "plot exits 0 on a full set" test $? -eq 0
for f in latency-cdf throughput density; do
  check "$f.svg is an SVG" grep -q '<svg' "$tmp/all/$f.svg"
done
check "the CDF has both layouts' series" sh -c "grep -q 'warm invoke via the API, workers' '$tmp/all/latency-cdf.svg' && grep -q 'fresh one-shot via the API, inproc' '$tmp/all/latency-cdf.svg'"
check "the CDF names the host kind" grep -q 'host' "$tmp/all/latency-cdf.svg"
check "throughput has both layouts" sh -c "grep -q 'fresh clones, workers' '$tmp/all/throughput.svg' && grep -q 'fresh clones, inproc' '$tmp/all/throughput.svg'"
check "density plots KiB per clone" grep -q 'KiB per clone' "$tmp/all/density.svg"
check "the density curve has a point per step" test "$(grep -c . "$fixture/density.json")" -ge 3

mkdir "$tmp/part"
cp "$fixture/api-workers.json" "$fixture/host.txt" "$tmp/part/"
# A QEMU peer that failed, as sprout prints it (bench_failed_row): a row of its own.
echo '{"metric":"qemu","failed":"qemu-system-x86_64: MSR 0x10a"}' >"$tmp/part/clone.json"
"$src/scripts/bench-plots.sh" plot "$tmp/part" "$tmp/part-out" 2>"$tmp/part.err"
check "a partial set still plots" test $? -eq 0
check "the density plot is skipped, the others made" sh -c "[ -s '$tmp/part-out/latency-cdf.svg' ] && [ ! -e '$tmp/part-out/density.svg' ]"
check "the skipped plots are said" grep -q 'no density.json' "$tmp/part.err"
check "a failed peer is shown" grep -q 'FAILED' "$tmp/part-out/latency-cdf.svg"

mkdir "$tmp/none"
"$src/scripts/bench-plots.sh" plot "$tmp/none" "$tmp/none-out" 2>/dev/null
check "no input is an error" test $? -ne 0
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
