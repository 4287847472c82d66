#!/usr/bin/env bash
# The sprout CLI as a user meets it: --help everywhere, exit codes (0 ok, 1 failed, 2 usage), and a
# clear message for each bad input. Needs no VM boot. Usage: test_cli.sh SPROUT_BINARY IMAGES_DIR
set -u
sprout=$1
images=$2
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect CODE PATTERN -- COMMAND...: runs it, checks the exit code and that stderr+stdout match.
expect() {
  local code=$1 pattern=$2
  shift 3
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [[ $rc == "$code" ]] && grep -qE -- "$pattern" <<<"$out"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL: '$*' gave $rc (want $code), output lacks /$pattern/:" >&2
    echo "$out" | head -5 >&2
  fi
}

expect 0 "usage: sprout" -- "$sprout" --help
expect 0 "^sprout [0-9]+\.[0-9]+\.[0-9]+$" -- "$sprout" --version
expect 2 "unknown command" -- "$sprout" frobnicate
expect 2 "usage: sprout" -- "$sprout"
for cmd in build boot prewarm inspect import clone bench; do
  expect 0 "usage: sprout $cmd" -- "$sprout" "$cmd" --help
  expect 2 "usage|expected|unrecognized|invalid" -- "$sprout" "$cmd" --no-such-option
done
expect 2 "timeout" -- "$sprout" boot "$images/hello" --timeout 0
expect 2 "memory" -- "$sprout" boot "$images/hello" --memory 1
expect 1 "missing-image: No such file" -- "$sprout" boot "$tmp/missing-image"
expect 3 "-o FILE" -- "$sprout" prewarm "$images/hello" --socket "$tmp/no-daemon.sock"

# Hostile snapshot files: each refused with a reason, exit 1.
expect 1 "No such file" -- "$sprout" inspect "$tmp/none.snap"
head -c 100 /dev/urandom >"$tmp/garbage.snap"
expect 1 "magic|too small|truncated|short" -- "$sprout" inspect "$tmp/garbage.snap"
: >"$tmp/empty.snap"
expect 1 "magic|too small|truncated|short|empty" -- "$sprout" inspect "$tmp/empty.snap"
expect 1 "magic|too small|truncated|short" -- "$sprout" clone --direct "$tmp/garbage.snap"
# import: only into a state directory sproutd has made (its key), and only a valid snapshot.
expect 1 "not a sproutd state directory" -- "$sprout" import "$tmp/garbage.snap" --state-dir "$tmp/nostate"
mkdir -p "$tmp/state/snapshots"
expect 1 "no snapshot key: start sproutd once" -- "$sprout" import "$tmp/garbage.snap" --state-dir "$tmp/state"
head -c 32 /dev/urandom >"$tmp/state/snapshot.key" && chmod 600 "$tmp/state/snapshot.key"
expect 1 "magic|too small|truncated|short" -- "$sprout" import "$tmp/garbage.snap" --state-dir "$tmp/state"
expect 2 "usage: sprout import" -- "$sprout" import

# No /dev/kvm: a private mount namespace with an empty /dev hides it for real.
if command -v unshare >/dev/null && [[ $(id -u) == 0 ]]; then
  expect 1 "/dev/kvm does not exist" -- unshare -m sh -c \
    "mount -t tmpfs none /dev && exec '$sprout' boot '$images/hello'"
else
  fail=$((fail + 1))
  echo "FAIL: cannot hide /dev/kvm (needs root and unshare)" >&2
fi

echo "$pass passed, $fail failed"
# A run that checked nothing proves nothing: it fails too.
[[ $fail == 0 && $pass -gt 0 ]]
