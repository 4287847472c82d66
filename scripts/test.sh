#!/usr/bin/env bash
# The test run: every test (unit and real-KVM integration) on the normal build, then again on a build
# with AddressSanitizer and UndefinedBehaviorSanitizer, then a short run of every fuzz target
# (scripts/fuzz.sh: the crash reproducers, and SPROUT_TEST_FUZZ_SECONDS, default 30, per target; 0
# skips it). Each build is brought up to date first, so an edit is never tested against stale
# binaries. Run scripts/setup.sh first (the README's test command does). Extra arguments go to
# ctest, e.g. `scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

if [[ ! -e /dev/kvm ]]; then
  echo "== tests: WARNING: this host has no /dev/kvm; the KVM tests will be reported as skipped" >&2
  echo "==        (SPROUT_REQUIRE_KVM=1 makes that a failure)" >&2
fi

echo "== tests: build" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build -j"$jobs" --output-on-failure "$@"

echo "== tests: build-asan (ASan + UBSan)" >&2
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSPROUT_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -j"$jobs" --output-on-failure "$@"

echo "== tests: the Debian package (scripts/package.sh)" >&2
tests/package/test_package.sh "$(scripts/package.sh)" "$PWD"

# Not ctest tests of the fuzz build: fuzzers must run one at a time on one core, and fuzz.sh both
# keeps them so and prints what each one did.
fuzz_seconds=${SPROUT_TEST_FUZZ_SECONDS:-30}
if ((fuzz_seconds > 0)); then
  echo "== tests: fuzz targets, ${fuzz_seconds}s each (build-fuzz)" >&2
  scripts/fuzz.sh "$fuzz_seconds"
fi
