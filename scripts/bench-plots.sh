#!/usr/bin/env bash
# The pictures of docs/benchmarks.md, made from the benchmarks' own --json output so that they are
# regenerated, never drawn by hand (gnuplot, from Debian's gnuplot-nox).
#
#   scripts/bench-plots.sh run DIR [CLONES] [DENSITY_N]   run the benchmarks, --json into DIR
#   scripts/bench-plots.sh plot DIR [OUT]                 DIR's JSON into SVGs in OUT (default DIR)
#
# run: `sprout bench clone` of the hello snapshot with the QEMU peer (clone.json), `sprout bench api`
# against a sproutd with workers and one without (api-workers.json, api-inproc.json), and `sprout
# bench density` (density.json), plus host.txt naming the machine. Root, after scripts/setup.sh,
# with nothing else loading the machine; CLONES defaults to 500, DENSITY_N to 2000.
# plot: latency-cdf.svg (restore and restore + first invoke, sprout against QEMU; warm and fresh
# invocations through the API, with workers and without), throughput.svg
# (one-shot invocations per second and p99 against the client count) and density.svg (creation
# rate, host memory per clone and first-invoke latency against the live clones). A plot whose
# input is missing is skipped, and said.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

run() {
  local dir=$1 clones=${2:-500} dn=${3:-2000}
  local sprout=${SPROUT_BUILD:-build}/cli/sprout image=${SPROUT_BUILD:-build}/images/hello
  [[ -x $sprout && -d $image ]] || { echo "bench-plots: build first (scripts/setup.sh)" >&2; exit 2; }
  mkdir -p "$dir"
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  echo "bench-plots: $(date -u +%T) prewarm" >&2
  "$sprout" prewarm "$image" -o "$tmp/hello.snap" >/dev/null
  echo "bench-plots: $(date -u +%T) sprout bench clone -n $clones (with the QEMU peer)" >&2
  # The host kind is what sprout reports (bench clone's first line); the rest identifies the machine.
  "$sprout" bench clone "$tmp/hello.snap" -n "$clones" --json >"$dir/clone.json"
  local kind
  kind=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["host_kind"])' \
    <"$dir/clone.json")
  {
    echo "host_kind=$kind"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "cpus=$(nproc)"
    echo "kernel=$(uname -r)"
    echo "date=$(date -u +%Y-%m-%d)"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  } >"$dir/host.txt"
  echo "bench-plots: $(date -u +%T) sprout bench api, in-process and with workers" >&2
  SPROUT_BENCH_JSON=$tmp/w scripts/bench-workers.sh hop 1
  mv "$tmp/w/hop-inproc-1.json" "$dir/api-inproc.json"
  mv "$tmp/w/hop-workers-1.json" "$dir/api-workers.json"
  echo "bench-plots: $(date -u +%T) sprout bench density -n $dn" >&2
  SPROUT_BENCH_JSON=$tmp/w scripts/bench-workers.sh density "$dn" $((dn / 8)) 64
  mv "$tmp/w/density-k64.json" "$dir/density.json"
  echo "bench-plots: JSON in $dir; now: scripts/bench-plots.sh plot $dir" >&2
}

# extract DIR OUT: the JSON rows as gnuplot data files in OUT, and OUT/title the machine's line.
extract() {
  python3 - "$1" "$2" <<'EOF'
import json, os, sys
src, out = sys.argv[1:3]

def rows(name):
    path = os.path.join(src, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]

def write(name, lines):
    if not lines:  # no file, so the plot that needs it is skipped (and said)
        return
    with open(os.path.join(out, name), "w") as f:
        f.write("\n".join(lines) + "\n")

host = {}
if os.path.exists(os.path.join(src, "host.txt")):
    for line in open(os.path.join(src, "host.txt")):
        k, _, v = line.strip().partition("=")
        host[k] = v
title = ", ".join(x for x in (host.get("host_kind", "?") + " host", host.get("cpu"),
                              host.get("cpus") and host["cpus"] + " CPUs",
                              host.get("kernel"), host.get("date")) if x)
write("title", [title])
made = []

def cdf_series(rs, series, suffix=""):
    for r in rs:
        name = series.get(r.get("metric"))
        if name and r.get("cdf"):
            fn = f"cdf-{len(made)}.dat"
            write(fn, [f"{v} {p}" for p, v in r["cdf"] if v > 0])
            made.append(f"{fn}\t{name}{suffix}")
        elif r.get("failed"):
            made.append(f"failed\t{r['metric']}: {r['failed']}")

# The restore and the first request of a clone, against QEMU restoring the same guest.
clone = rows("clone.json") or []
cdf_series(clone, {"restore (pooled shell)": "sprout restore (pooled shell)",
                   "restore + first invoke": "sprout restore + first invoke",
                   "qemu: restore from file to running": "QEMU restore from file to running"})
for layout in ("workers", "inproc"):
    api = rows(f"api-{layout}.json")
    if not api:
        continue
    # Through the API: a warm clone, and a fresh one-shot clone.
    cdf_series(api, {"warm invoke, through the API": "warm invoke via the API",
                     "one-shot fresh, through the API": "fresh one-shot via the API"},
               f", {layout}")
    for mode in ("fresh", "reuse"):
        pts = [r for r in api if r.get("mode") == mode]
        write(f"api-{layout}-{mode}.dat",
              [f"{r['clients']} {r['per_s']} {r['p50_ms']} {r['p99_ms']}" for r in pts])
write("cdf.list", made)
dens = rows("density.json")
if dens:
    write("density.dat", [f"{r['clones']} {r['create_per_s']} {r['host_kib_per_clone']} "
                          f"{r['invoke_p50_ms']} {r['invoke_p99_ms']}"
                          for r in dens if r.get("clones")])
EOF
}

plot() {
  local dir=$1 out=${2:-$1}
  command -v gnuplot >/dev/null || { echo "bench-plots: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 2; }
  mkdir -p "$out"
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  extract "$dir" "$tmp"
  local title
  title=$(cat "$tmp/title")
  # SPROUT_PLOT_PNG=1: PNG instead (to look at one without a browser).
  local ext=svg term="svg size 760,440 dynamic font 'sans,12'"
  if [[ -n ${SPROUT_PLOT_PNG:-} ]]; then ext=png term="pngcairo size 760,440 font 'sans,10'"; fi
  local common="set terminal $term; set grid; set key left top"
  local made=0

  if [[ -s $tmp/cdf.list ]]; then
    local plots="" failed=""
    while IFS=$'\t' read -r f name; do
      if [[ $f == failed ]]; then failed="$failed $name"; continue; fi
      plots="${plots:+$plots, }'$tmp/$f' using 1:2 with steps lw 2 title '$name'"
    done <"$tmp/cdf.list"
    if [[ -n $plots ]]; then
      gnuplot -e "$common; set output '$out/latency-cdf.$ext';
        set title \"Latency distributions\\n{/*0.8 $title${failed:+; FAILED:$failed}}\";
        set logscale x; set xlabel 'milliseconds (log scale)'; set ylabel 'percent of runs at or below';
        set yrange [0:100]; set key right bottom; plot $plots"
      made=$((made + 1))
    fi
  else
    echo "bench-plots: no clone.json or api-*.json in $dir: no latency-cdf.svg" >&2
  fi

  local tp=""
  for layout in workers inproc; do
    for mode in fresh reuse; do
      local f=$tmp/api-$layout-$mode.dat
      [[ -s $f ]] || continue
      tp="${tp:+$tp, }'$f' using 1:2 with linespoints lw 2 title '$mode clones, $layout'"
    done
  done
  if [[ -n $tp ]]; then
    local p99=${tp//using 1:2/using 1:4}
    gnuplot -e "$common; set output '$out/throughput.$ext';
      set multiplot layout 1,2 title \"One-shot invocations against the number of clients\\n{/*0.8 $title}\";
      set logscale x 2; set xlabel 'clients'; set ylabel 'invocations per second'; set logscale y;
      plot $tp; set ylabel 'p99 latency, ms'; set key left top; plot $p99; unset multiplot"
    made=$((made + 1))
  else
    echo "bench-plots: no api-*.json in $dir: no throughput.svg" >&2
  fi

  if [[ -s $tmp/density.dat ]]; then
    local d=$tmp/density.dat
    gnuplot -e "$common; set output '$out/density.$ext';
      set multiplot layout 1,2 title \"Live idle clones on one host\\n{/*0.8 $title}\";
      set xlabel 'live clones'; set format x '%.0s%c'; set ylabel 'clones created per second'; set y2label 'host KiB per clone';
      set ytics nomirror; set y2tics; set yrange [0:*]; set y2range [0:*]; set key left bottom;
      plot '$d' using 1:2 with linespoints lw 2 title 'creation rate', '$d' using 1:3 axes x1y2 with linespoints lw 2 title 'KiB per clone';
      unset y2label; unset y2tics; set ytics mirror; set ylabel 'first invoke, ms'; set key left top;
      plot '$d' using 1:4 with linespoints lw 2 title 'p50', '$d' using 1:5 with linespoints lw 2 title 'p99';
      unset multiplot"
    made=$((made + 1))
  else
    echo "bench-plots: no density.json in $dir: no density.svg" >&2
  fi
  echo "bench-plots: $made plot(s) in $out" >&2
  ((made > 0))
}

case ${1:-} in
  run) [[ $# -ge 2 ]] || usage; shift; run "$@" ;;
  plot) [[ $# -ge 2 ]] || usage; shift; plot "$@" ;;
  *) usage ;;
esac
