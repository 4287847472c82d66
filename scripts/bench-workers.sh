#!/usr/bin/env bash
# The workers and recycling benchmarks of docs/benchmarks.md (issues 12 and 9), made repeatable:
# each mode starts its own sproutd(s) in a scratch state directory, prewarms the built hello image,
# runs `sprout bench` and stops the daemons. Run as root after scripts/setup.sh, with nothing else
# loading the machine.
#
#   scripts/bench-workers.sh hop [ROUNDS]            in-process (K=0) against workers (K=64), alternating
#   scripts/bench-workers.sh density N STEP K...     one fresh sproutd per K: sprout bench density -n N
#   scripts/bench-workers.sh recycle [ROUNDS] [POOL] fresh one-shots, --recycle 1 against 0, alternating
#
# Extra environment: SPROUT_BENCH_JSON=DIR also writes each run's --json output into DIR.
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
  "$sproutd" --state-dir "$dir" --clones-per-worker "$k" --log-level warn "$@" \
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

case ${1:-} in
  hop)
    rounds=${2:-2}
    start_daemon inproc 0
    sock0=$sock
    start_daemon workers 64
    sock64=$sock
    id0=$(prewarm "$sock0")
    id64=$(prewarm "$sock64")
    for r in $(seq "$rounds"); do
      echo "== round $r: in-process (K=0)"
      SPROUT_SOCKET=$sock0 run "hop-inproc-$r" api "$id0" --duration 3 -n 2000
      echo "== round $r: workers (K=64)"
      SPROUT_SOCKET=$sock64 run "hop-workers-$r" api "$id64" --duration 3 -n 2000
    done
    ;;
  recycle)
    rounds=${2:-2}
    pool=${3:-8}
    start_daemon recycle-on 64 --pool-ready "$pool" --recycle 1
    sock_on=$sock
    start_daemon recycle-off 64 --pool-ready "$pool" --recycle 0
    sock_off=$sock
    id_on=$(prewarm "$sock_on")
    id_off=$(prewarm "$sock_off")
    for r in $(seq "$rounds"); do
      echo "== round $r: recycling (--recycle 1, --pool-ready $pool)"
      SPROUT_SOCKET=$sock_on run "recycle-on-$r" api "$id_on" --duration 3 -n 400
      echo "== round $r: destroy and restore (--recycle 0, --pool-ready $pool)"
      SPROUT_SOCKET=$sock_off run "recycle-off-$r" api "$id_off" --duration 3 -n 400
    done
    ;;
  density)
    n=${2:?N}
    step=${3:?STEP}
    shift 3
    for k in "${@:-64}"; do
      start_daemon "density-k$k" "$k" --max-clones $((n + 100)) --pool-ready 0
      id=$(prewarm "$sock")
      echo "== K=$k: $n clones"
      SPROUT_SOCKET=$sock run "density-k$k" density "$id" -n "$n" --step "$step"
      kill "${pids[-1]}"
      wait "${pids[-1]}" || true
    done
    ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
