#!/usr/bin/env bash
# Noisy neighbours (issue 10): fan-out throughput at 2 workers while another
# process takes CPU 0. A busy loop pinned there with `taskset -c 0` (the same
# niceness as the benchmark) runs for the whole process of every "hog"
# condition and is killed after it. Conditions, interleaved round by round
# (A B C ... A B C ...), one fresh wsched_bench process each, cells
# fanout/1us (4 clients) and fanout-1c/1us:
#   wsched        wsched pinned (the default), no hog
#   wsched+hog    wsched pinned, hog on CPU 0
#   nopin+hog     wsched --no-pin, hog
#   tbb+hog       oneTBB, hog                  (if compiled in)
#   mutex+hog     textbook mutex pool, hog
#   serial+hog    serial (fanout/1us at workers:1), hog: the reference
#   nopin, tbb, mutex   the peers without the hog (their own degradation)
#   serial        serial without the hog (what the rest of the machine leaves)
# Reports per condition and cell the median wall time of a round (ms) and
# jobs/s over the rounds, the spread ((max - min) / median), the ratio to the
# best unpinned peer under the hog (target of the issue: wsched+hog >= 0.9x)
# and to the same design without the hog (Arora, Blumofe and Plaxton: a
# work stealer's throughput follows the processors actually available, P_A;
# the hog's measured CPU share gives P_A = 2 - share). Writes
# bench/results/noisy.txt; prints the load average before and after.
#
# usage: bench/noisy.sh [--build DIR] [--rounds N]
#   --build DIR  build directory holding bench/wsched_bench (default
#                $WSCHED_BENCH_BUILD or build-bench/); configured (Release,
#                -DWSCHED_BUILD_BENCH=ON) and built there if the binary is missing
#   --rounds N   rounds of all conditions (default 5)
# Environment: WSCHED_BENCH_CALIB (reuse a calibration; measured once, without
# the hog, otherwise). Needs taskset (util-linux) and python3.
# Exit status: 0, or 1 when a run failed or a cell's checksum was wrong.
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${WSCHED_BENCH_BUILD:-$root/build-bench}
rounds=5
while [ $# -gt 0 ]; do
    case $1 in
    --build) [ $# -ge 2 ] || { echo "noisy.sh: --build takes a directory" >&2; exit 2; }
        build=$2; shift ;;
    --build=*) build=${1#--build=} ;;
    --rounds) [ $# -ge 2 ] || { echo "noisy.sh: --rounds takes a count" >&2; exit 2; }
        rounds=$2; shift ;;
    --rounds=*) rounds=${1#--rounds=} ;;
    -h | --help)
        awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"
        exit 0 ;;
    *) echo "noisy.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
case $rounds in
[1-9] | [1-9][0-9]) ;;
*) echo "noisy.sh: --rounds takes a count from 1 to 99" >&2; exit 2 ;;
esac
command -v taskset >/dev/null || { echo "noisy.sh: taskset (util-linux) is required" >&2; exit 2; }
command -v python3 >/dev/null || { echo "noisy.sh: python3 is required" >&2; exit 2; }

start=$(date +%s)
log() { printf '[noisy %3ds] %s\n' "$(($(date +%s) - start))" "$*"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/noisy.XXXXXX")
hog=""
kill_hog() {
    if [ -n "$hog" ]; then
        kill "$hog" 2>/dev/null || true
        wait "$hog" 2>/dev/null || true
        hog=""
    fi
}
cleanup() { kill_hog; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# All CPUs' time and the part the hypervisor stole (/proc/stat, in ticks).
cputicks() { awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $9}' /proc/stat; }
load_before=$(loadavg)
ticks_before=$(cputicks)
log "load average $load_before; $(nproc) CPUs; build $build; $rounds rounds"

bench=$build/bench/wsched_bench
if [ ! -x "$bench" ]; then
    log "building wsched_bench in $build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWSCHED_BUILD_BENCH=ON \
        >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log" >&2; exit 1; }
    cmake --build "$build" -j2 --target wsched_bench >"$tmp/build.log" 2>&1 ||
        { tail -40 "$tmp/build.log" >&2; exit 1; }
fi

if [ -z "${WSCHED_BENCH_CALIB:-}" ]; then
    WSCHED_BENCH_CALIB=$("$bench" --calibrate)
    log "calibration $WSCHED_BENCH_CALIB (measured now, no hog)"
else
    log "calibration $WSCHED_BENCH_CALIB (from the environment)"
fi
export WSCHED_BENCH_CALIB

designs=" $("$bench" --list-designs | tr '\n' ' ') "
has() { case $designs in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# label | design | hog (0/1) | extra flag
conds=("wsched|wsched|0|" "wsched+hog|wsched|1|" "nopin+hog|wsched|1|--no-pin")
has tbb && conds+=("tbb+hog|tbb|1|")
has mutex && conds+=("mutex+hog|mutex|1|")
conds+=("serial+hog|serial|1|" "nopin|wsched|0|--no-pin")
has tbb && conds+=("tbb|tbb|0|")
has mutex && conds+=("mutex|mutex|0|")
conds+=("serial|serial|0|")

# CPU ticks (user + system) of a process so far.
ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
now_ns() { date +%s%N; }
hz=$(getconf CLK_TCK)

manifest=$tmp/manifest.tsv
: >"$manifest"
failed=0
for ((r = 1; r <= rounds; r++)); do
    log "round $r/$rounds"
    for c in "${conds[@]}"; do
        IFS='|' read -r label design with_hog flag <<<"$c"
        if [ "$design" = serial ]; then
            filter='^fanout/1us/serial/workers:1/'
        else
            filter="^fanout(-1c)?/1us/$design/workers:2/"
        fi
        out=$tmp/r$r-${label//+/_}.json
        if [ "$with_hog" = 1 ]; then
            taskset -c 0 sh -c 'while :; do :; done' &
            hog=$!
            t0=$(now_ns)
        fi
        rc=0
        "$bench" --designs="$design" --workers=2 ${flag:+"$flag"} --warmup=1 \
            --benchmark_filter="$filter" --benchmark_min_time=0.2 \
            --benchmark_repetitions=1 --benchmark_out="$out" --benchmark_out_format=json \
            >"$tmp/run.out" 2>&1 || rc=$?
        share=0
        if [ "$with_hog" = 1 ]; then
            used=$(ticks "$hog")
            t1=$(now_ns)
            kill_hog
            share=$(awk -v u="$used" -v hz="$hz" -v ns=$((t1 - t0)) 'BEGIN {printf "%.3f", u / hz / (ns / 1e9)}')
        fi
        if [ "$rc" != 0 ]; then
            echo "noisy.sh: $label (round $r) exited $rc:" >&2
            tail -20 "$tmp/run.out" >&2
            failed=1
        fi
        printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$label" "$out" "$share" "$rc" >>"$manifest"
    done
done

load_after=$(loadavg)
read -r tb sb <<<"$ticks_before"
read -r ta sa <<<"$(cputicks)"
steal=$(awk -v t=$((ta - tb)) -v s=$((sa - sb)) 'BEGIN {printf "%.1f", (t > 0 ? 100 * s / t : 0)}')
elapsed=$(($(date +%s) - start))
log "load average $load_after"

mkdir -p "$here/results"
report=$here/results/noisy.txt
python3 - "$manifest" "$report" "$load_before" "$load_after" "$elapsed" "$rounds" \
    "$WSCHED_BENCH_CALIB" "$steal" "$(nproc)" "$(uname -r)" \
    "$(awk -F': ' '/^model name/ && !seen {print $2; seen = 1}' /proc/cpuinfo)" <<'EOF' || failed=1
import json, os, statistics, sys

manifest, report, load_before, load_after, elapsed, rounds, calib, steal, ncpu, kernel, cpu = sys.argv[1:]
order, runs, shares, bad = [], {}, {}, []
for line in open(manifest):
    r, label, path, share, rc = line.rstrip("\n").split("\t")
    if label not in order:
        order.append(label)
    if label.endswith("+hog"):
        shares.setdefault(label, []).append(float(share))
    if rc != "0" or not os.path.exists(path) or os.path.getsize(path) == 0:
        bad.append(f"{label} round {r}: exit {rc}")
        continue
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        cell = b["name"].split("/")[0] + "/1us"
        if b.get("error_occurred") or b.get("ok", 0) != 1:
            bad.append(f"{label} {cell} round {r}: {b.get('error_message', 'checksum wrong')}")
            continue
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
        runs.setdefault((label, cell), []).append((b["real_time"] * scale, b["jobs_per_s"]))

cells = ["fanout/1us", "fanout-1c/1us"]
peers = [l for l in ("nopin+hog", "tbb+hog", "mutex+hog") if l in order]
med = {}
for k, v in runs.items():
    ms = sorted(x[0] for x in v)
    jps = statistics.median(x[1] for x in v)
    med[k] = (statistics.median(ms), jps, (ms[-1] - ms[0]) / statistics.median(ms), len(v))

def base(label):  # the same design without the hog
    return {"wsched+hog": "wsched", "nopin+hog": "nopin", "tbb+hog": "tbb",
            "mutex+hog": "mutex", "serial+hog": "serial"}.get(label)

lines = []
p = lines.append
p("# Noisy neighbours (issue 10): bench/noisy.sh")
p("")
p(f"machine: {cpu}, {ncpu} CPUs, Linux {kernel}")
p(f"load average before: {load_before}   after: {load_after}")
p(f"CPU time stolen by the hypervisor during the runs: {steal} %")
p(f"calibration (WSCHED_BENCH_CALIB): {calib}")
p(f"{rounds} rounds, conditions interleaved; per run --workers=2 --warmup=1 "
  "--benchmark_min_time=0.2 --benchmark_repetitions=1; one fresh process per run")
p("hog: taskset -c 0 sh -c 'while :; do :; done', same niceness, started before the "
  "process and killed after it")
hs = [s for v in shares.values() for s in v]
if hs:
    share = statistics.median(hs)
    p(f"hog's CPU share over its runs (median): {share:.2f} of CPU 0, so P_A = "
      f"{2 - share:.2f} CPUs left: Arora-Blumofe-Plaxton yardstick x{(2 - share) / 2:.2f} "
      "of the no-hog throughput")
p(f"script wall time: {elapsed} s")
p("")
p("median over rounds; spread = (max - min) / median of the wall times; "
  "x peer = jobs/s / best unpinned peer under the hog (nopin+hog, tbb+hog, mutex+hog) "
  "in the same cell; x no-hog = jobs/s / the same design without the hog")
p("")
hdr = f"{'cell':<15} {'condition':<11} {'ms':>8} {'jobs/s':>11} {'spread':>7} {'x peer':>7} {'x no-hog':>8} {'n':>2}"
for cell in cells:
    best = max(((med[(l, cell)][1], l) for l in peers if (l, cell) in med), default=None)
    p(hdr)
    for label in order:
        k = (label, cell)
        if label.startswith("serial"):
            k = (label, "fanout/1us")  # serial's fanout cell is every model's baseline
        if k not in med:
            continue
        ms, jps, spread, n = med[k]
        xp = f"{jps / best[0]:.2f}" if best else "-"
        b = base(label)
        xb = f"{jps / med[(b, cell)][1]:.2f}" if b and (b, cell) in med else ""
        flag = " !" if spread > 0.25 else ""
        p(f"{cell:<15} {label:<11} {ms:8.2f} {jps:11.0f} {spread:6.0%}{flag:1} {xp:>7} {xb:>8} {n:>2}")
    if best:
        w = med.get(("wsched+hog", cell))
        if w:
            ratio = w[1] / best[0]
            p(f"  -> wsched+hog / best unpinned peer ({best[1]}): {ratio:.2f} "
              f"(target >= 0.90: {'met' if ratio >= 0.9 else 'MISSED'})")
    p("")
p("! spread over 25 %: too wide to trust")
if bad:
    p("")
    p("FAILED RUNS:")
    for b in bad:
        p("  " + b)
text = "\n".join(lines) + "\n"
open(report, "w").write(text)
sys.stdout.write(text)
sys.exit(1 if bad else 0)
EOF
log "wrote $report"
exit "$failed"
