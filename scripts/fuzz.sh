#!/usr/bin/env bash
# The libFuzzer targets (tests/fuzz): configure and build build-fuzz (clang, SPROUT_FUZZ=ON), replay
# every crash reproducer in tests/fuzz/regress/, then fuzz each target for SECONDS (default 60), one
# after the other on one core, and print per target the CPU seconds, the executions and whether it
# crashed. Exits non-zero if a reproducer or a fuzz run crashed; crashing inputs are left in
# build-fuzz/fuzz-crashes/<target>/.
#   scripts/fuzz.sh [SECONDS] [TARGET...]   e.g. scripts/fuzz.sh 600 snapshot
#   scripts/fuzz.sh --seeds                 rewrite tests/fuzz/corpus/snapshot from the real writer
# New inputs go to build-fuzz/fuzz-corpus/<target>/ (kept between runs); the committed seeds in
# tests/fuzz/corpus/ are only read. libFuzzer runs in-process here, one worker: no -jobs, -workers
# or -fork, which would add processes (and -jobs=N>1 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${SPROUT_FUZZ_BUILD_DIR:-build-fuzz}
TARGETS=(snapshot image_json image_build api device working_set)

if ! command -v clang >/dev/null; then
  echo "fuzz: clang is not installed (scripts/setup.sh installs it)" >&2
  exit 1
fi
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DSPROUT_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$BUILD" -j2 --target fuzz >/dev/null
bin=$BUILD/tests/fuzz

if [[ ${1:-} == --seeds ]]; then
  rm -f tests/fuzz/corpus/snapshot/*
  "$bin/gen_snapshot_seeds" tests/fuzz/corpus/snapshot
  chmod 0644 tests/fuzz/corpus/snapshot/*
  ls -l tests/fuzz/corpus/snapshot
  exit 0
fi
seconds=${1:-60}
shift || true
(($#)) && TARGETS=("$@")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0

# Each reproducer once: a crash fixed once must stay fixed.
for t in "${TARGETS[@]}"; do
  dir=tests/fuzz/regress/$t
  [[ -d $dir ]] && compgen -G "$dir/*" >/dev/null || continue
  log=$BUILD/fuzz-$t-regress.log
  if "$bin/fuzz_$t" "$dir"/* >"$log" 2>&1; then
    echo "fuzz: $t: $(ls "$dir" | wc -l) reproducers replayed, none crashes"
  else
    echo "fuzz: $t: a reproducer in $dir crashes again (see $log)" >&2
    failed=1
  fi
done

# Inputs past these sizes only slow a target down: the seeds are a few hundred bytes (the
# snapshots about 1 KiB).
declare -A MAX_LEN=([snapshot]=16384 [image_json]=4096 [image_build]=4096 [api]=4096 [device]=4096 [working_set]=4096)
ok=0 bad=0
printf '%-12s %9s %12s  %s\n' target cpu_s execs result
for t in "${TARGETS[@]}"; do
  corpus=$BUILD/fuzz-corpus/$t crashes=$BUILD/fuzz-crashes/$t log=$BUILD/fuzz-$t.log
  mkdir -p "$corpus" "$crashes"
  TIMEFORMAT='%3U %3S'
  rc=0
  { time "$bin/fuzz_$t" -max_total_time="$seconds" -timeout=30 -max_len="${MAX_LEN[$t]}" \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" "tests/fuzz/corpus/$t" \
    >"$log" 2>&1; } 2>"$log.time" || rc=$?
  cpu=$(awk '{printf "%.1f", $1 + $2}' "$log.time")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if ((rc == 0)); then
    result=ok
  else
    result="CRASHED (exit $rc; $log, inputs in $crashes/)"
    failed=1
  fi
  printf '%-12s %9s %12s  %s\n' "$t" "$cpu" "${execs:-?}" "$result"
  if ((rc == 0)); then ok=$((ok + 1)); else bad=$((bad + 1)); fi
done
# The closing line counts the targets that ran clean and those that crashed.
echo "fuzz: $ok passed, $bad failed"
exit $failed
