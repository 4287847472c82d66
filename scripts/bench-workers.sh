#!/usr/bin/env bash
# The workers and recycling benchmarks of docs/benchmarks.md (issues 12 and 9), made repeatable:
# each mode starts its own sproutd(s) in a scratch state directory, prewarms the built hello image,
# runs `sprout bench` and stops the daemons. Run as root after scripts/setup.sh, with nothing else
# loading the machine.
#
#   scripts/bench-workers.sh hop [ROUNDS]            in-process (K=0) against workers (K=64), alternating
#   scripts/bench-workers.sh hop-vs BUILD [ROUNDS]   workers of this build against those of another
#                                                    build directory (an older tree), alternating
#   scripts/bench-workers.sh density N STEP K...     one fresh sproutd per K: sprout bench density -n N
#   scripts/bench-workers.sh recycle [ROUNDS] [POOL] fresh one-shots, --recycle 1 against 0, alternating
#
# Extra environment: SPROUT_BENCH_JSON=DIR also writes each run's --json output into DIR.
# SPROUT_DENSITY_FLAGS="FLAG VALUE ..." adds sproutd flags to the density runs (e.g.
# "--prefault-shells 1", the old place of the working set); SPROUT_DENSITY_ARGS="..." adds
# arguments to `sprout bench density` (e.g. "--idle-s 15", a longer idle window).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SPROUT_BUILD:-build}
sprout=$build/cli/sprout
sproutd=$build/daemon/sproutd
image=$build/images/hello
[[ -x $sproutd && -d $image ]] || { echo "bench-workers: build first (scripts/setup.sh)" >&2; exit 2; }

pids=()
dirs=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for d in "${dirs[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

# start_daemon NAME K [FLAGS...]: sets sock to the socket path once sproutd answers. Not called in
# $(...): the pids and dirs it records must reach cleanup.
start_daemon() {
  local name=$1 k=$2
  shift 2
  local dir
  dir=$(mktemp -d "/tmp/sprout-bench-$name.XXXXXX")
  dirs+=("$dir")
  mkdir -p "$dir/images"
  cp -r "$image" "$dir/images/hello"
  "${daemon_bin:-$sproutd}" --state-dir "$dir" --clones-per-worker "$k" --log-level warn "$@" \
    >"$dir/sproutd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    [[ -S $dir/sproutd.sock ]] && { sock=$dir/sproutd.sock; return 0; }
    sleep 0.1
  done
  echo "bench-workers: sproutd ($name) did not start; its log:" >&2
  cat "$dir/sproutd.log" >&2
  return 1
}

prewarm() { "$sprout" prewarm --socket "$1" "$(dirname "$1")/images/hello"; }

json_to() { # json_to NAME: the --json flag and its destination, when SPROUT_BENCH_JSON is set
  if [[ -n ${SPROUT_BENCH_JSON:-} ]]; then mkdir -p "$SPROUT_BENCH_JSON"; echo "$SPROUT_BENCH_JSON/$1.json"; fi
}

run() { # run NAME ARGS...: sprout bench ARGS, human output, and --json into SPROUT_BENCH_JSON
  local name=$1 out
  shift
  out=$(json_to "$name")
  if [[ -n $out ]]; then
    "$sprout" bench "$@" --json >"$out"
    cat "$out"
  else
    "$sprout" bench "$@"
  fi
}

# compare ROUNDS N A "LABEL A" "K FLAGS..." B "LABEL B" "K FLAGS..." [SPROUTD B]: two daemons, each
# with its own prewarmed hello, and `sprout bench api` alternating between them ROUNDS times (JSON as
# A-r, B-r). B's sproutd is this build's unless given.
compare() {
  local rounds=$1 n=$2 a=$3 la=$4 fa=$5 b=$6 lb=$7 fb=$8 sa sb ia ib
  # shellcheck disable=SC2086 # the flags are words
  start_daemon "$a" $fa
  sa=$sock
  # shellcheck disable=SC2086
  daemon_bin=${9:-} start_daemon "$b" $fb
  sb=$sock
  ia=$(prewarm "$sa")
  ib=$(prewarm "$sb")
  for r in $(seq "$rounds"); do
    echo "== round $r: $la"
    SPROUT_SOCKET=$sa run "$a-$r" api "$ia" --duration 3 -n "$n"
    echo "== round $r: $lb"
    SPROUT_SOCKET=$sb run "$b-$r" api "$ib" --duration 3 -n "$n"
  done
}

case ${1:-} in
  hop)
    compare "${2:-2}" 2000 hop-inproc "in-process (K=0)" "0" hop-workers "workers (K=64)" "64"
    ;;
  hop-vs)
    other=${2:?BUILD}
    [[ -x $other/daemon/sproutd ]] || { echo "bench-workers: no $other/daemon/sproutd" >&2; exit 2; }
    compare "${3:-2}" 2000 hop-this "workers, this build" "64" hop-other "workers, $other" "64" \
      "$other/daemon/sproutd"
    ;;
  recycle)
    pool=${3:-8}
    compare "${2:-2}" 400 recycle-on "recycling (--recycle 1, --pool-ready $pool)" \
      "64 --pool-ready $pool --recycle 1" recycle-off \
      "destroy and restore (--recycle 0, --pool-ready $pool)" "64 --pool-ready $pool --recycle 0"
    ;;
  density)
    n=${2:?N}
    step=${3:?STEP}
    shift 3
    for k in "${@:-64}"; do
      # Idle clones stay for the whole run, however slow the host creates them.
      # shellcheck disable=SC2086 # the flags are words
      start_daemon "density-k$k" "$k" --max-clones $((n + 100)) --pool-ready 0 --idle-timeout-s 86400 ${SPROUT_DENSITY_FLAGS:-}
      id=$(prewarm "$sock")
      echo "== K=$k: $n clones"
      # shellcheck disable=SC2086 # the arguments are words
      SPROUT_SOCKET=$sock run "density-k$k" density "$id" -n "$n" --step "$step" ${SPROUT_DENSITY_ARGS:-}
      kill "${pids[-1]}"
      wait "${pids[-1]}" || true
    done
    ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
