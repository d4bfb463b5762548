#!/usr/bin/env bash
# Build the benchmarks (Release, build-bench/), run the suite once per design,
# workload and allocator (glibc malloc, then jemalloc through LD_PRELOAD), run
# the open-loop generator, and write bench/results/report.md with PNG plots.
#
# usage: bench/report.sh [--short] [--workers=1,2,...] [--no-pin] [--no-build] [--jobs=N]
#   --short      CI smoke: small sizes, 3 repetitions, well under two minutes
#   --workers=   worker counts (default: 1, 2, 4, ... up to the CPUs)
#   --no-pin     wsched pools with WSCHED_POOL_NO_PIN (default: the library's pinning)
#   --no-build   use the binaries already in the build directory
#   --jobs=N     build parallelism (default 2)
# Environment: WSCHED_BENCH_BUILD (build directory, default build-bench/),
# WSCHED_BENCH_CALIB (reuse a calibration; measured once per report otherwise),
# WSCHED_BENCH_JEMALLOC (libjemalloc.so.2 to preload; found by ldconfig otherwise).
# Exit status: 0, or 1 when a program failed or a cell gave wrong results
# (missed performance targets are reported, not failed).
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${WSCHED_BENCH_BUILD:-$root/build-bench}
results=$here/results

short=0
workers=""
pin=()
do_build=1
jobs=2
for arg in "$@"; do
    case $arg in
    --short) short=1 ;;
    --workers=*) workers=${arg#--workers=} ;;
    --no-pin) pin=(--no-pin) ;;
    --no-build) do_build=0 ;;
    --jobs=*) jobs=${arg#--jobs=} ;;
    -h | --help)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "report.sh: unknown argument '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

start=$(date +%s)
log() { printf '[report %3ds] %s\n' "$(($(date +%s) - start))" "$*"; }

if [ "$do_build" = 1 ]; then
    mkdir -p "$build"
    log "configure $build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWSCHED_BUILD_BENCH=ON \
        >"$build/report-configure.log" 2>&1 ||
        { cat "$build/report-configure.log" >&2; exit 1; }
    log "build (-j$jobs)"
    cmake --build "$build" -j"$jobs" --target wsched_bench wsched_openloop bench_micro \
        >"$build/report-build.log" 2>&1 ||
        { tail -50 "$build/report-build.log" >&2; exit 1; }
fi
bench=$build/bench/wsched_bench
openloop=$build/bench/wsched_openloop
for exe in "$bench" "$openloop"; do
    [ -x "$exe" ] || { echo "report.sh: $exe is missing (build first)" >&2; exit 1; }
done

if [ "$short" = 1 ]; then
    mode=(--short)
    gb=(--benchmark_repetitions=3 --benchmark_min_time=0.01)
else
    mode=()
    gb=(--benchmark_repetitions=5 --benchmark_min_time=0.2)
fi
[ -n "$workers" ] && mode+=("--workers=$workers")
mode+=("${pin[@]}")

# One calibration for every process, so every design runs the same
# iteration counts and the checksums agree.
if [ -z "${WSCHED_BENCH_CALIB:-}" ]; then
    WSCHED_BENCH_CALIB=$("$bench" --calibrate)
fi
export WSCHED_BENCH_CALIB
log "calibration $WSCHED_BENCH_CALIB"

# awk reads all of ldconfig's output (no early exit: under pipefail a
# writer killed by SIGPIPE would end the script silently).
jemalloc=${WSCHED_BENCH_JEMALLOC:-$(ldconfig -p 2>/dev/null | awk '/libjemalloc\.so\.2 / && !f {print $NF; f = 1}')}
allocators=(glibc)
if [ -n "$jemalloc" ]; then
    allocators+=(jemalloc)
else
    log "libjemalloc.so.2 not found (apt-get install libjemalloc2): jemalloc pass skipped"
fi

rm -rf "$results"
mkdir -p "$results"
designs=$("$bench" --list-designs)
workloads="fanout fanout-tasks empty fib uts slots idle light"
failed=0
for alloc in "${allocators[@]}"; do
    dir=$results/$alloc
    mkdir -p "$dir"
    preload=()
    [ "$alloc" = jemalloc ] && preload=(env "LD_PRELOAD=$jemalloc")
    # One process per design and workload: peak RSS, allocator state and
    # runtime thread pools start fresh for each.
    for d in $designs; do
        log "$alloc: suite, design $d"
        for w in $workloads; do
            filter="^$w/"
            listed=$("$bench" "${mode[@]}" --designs="$d" --benchmark_filter="$filter" \
                --benchmark_list_tests 2>/dev/null) || listed=""
            [ -n "$listed" ] || continue
            out=$dir/suite-$d-$w
            if ! "${preload[@]}" "$bench" "${mode[@]}" --designs="$d" "${gb[@]}" \
                --benchmark_filter="$filter" --benchmark_display_aggregates_only=true \
                --benchmark_out="$out.json" --benchmark_out_format=json \
                >"$out.txt" 2>&1; then
                log "$alloc: design $d, $w FAILED (see $out.txt)"
                failed=1
            fi
        done
    done
    log "$alloc: open loop"
    # Short: the largest worker count only; full: every count asked for (the
    # CPUs by default).
    ol=("${pin[@]}")
    if [ "$short" = 1 ]; then
        ol+=(--short)
        [ -n "$workers" ] && ol+=("--workers=${workers##*,}")
    else
        [ -n "$workers" ] && ol+=("--workers=$workers")
    fi
    if ! "${preload[@]}" "$openloop" "${ol[@]}" --out="$dir/openloop.json" \
        >"$dir/openloop.txt" 2>&1; then
        log "$alloc: open loop FAILED (see $dir/openloop.txt)"
        failed=1
    fi
done

# Per-job overhead and the cost of each request-semantics feature.
if [ -x "$build/bench_micro" ]; then
    log "micro: per-job cost and feature costs"
    "$build/bench_micro" "${gb[@]}" --benchmark_display_aggregates_only=true \
        --benchmark_out="$results/micro.json" --benchmark_out_format=json \
        >"$results/micro.txt" 2>&1 || { log "micro FAILED (see $results/micro.txt)"; failed=1; }
fi

# Debian's python3 has python3-matplotlib; another python3 first on PATH
# (pyenv, venv) may not. The report is written either way.
py=python3
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    py=/usr/bin/python3
fi
log "report"
"$py" "$here/report.py" --results "$results" || failed=1
log "done: $results/report.md"
exit $failed
