#!/usr/bin/env bash
# Build the benchmarks (Release, build-bench/), run the suite one process per
# design and workload, take first-burst samples (one fresh process each), and
# write bench/results/report.md (with PNG plots when matplotlib is there).
#
# usage: bench/report.sh [--short | --full] [--workers=1,2,...] [--samples=N]
#                        [--no-pin] [--no-build] [--jobs=N]
#   (default)    the comparison tables first wanted, in a few minutes on 2 CPUs:
#                fan-out 1 us and 100 ns (4 clients, 1 client, tasks; steady
#                state and first burst), singles (10^7 jobs), round trip,
#                empty batches, fib; the largest worker count only; glibc
#                malloc; peers serial, mutex, tbb, omp
#   --full       every cell at full size and every worker count, thread per
#                job too, glibc malloc then jemalloc, the open loop and
#                bench_micro (tens of minutes)
#   --short      CI smoke: every cell at small sizes, 3 repetitions, one
#                warm-up round, glibc malloc only, the open loop, bench_micro;
#                about a minute
#   --samples=N  first-burst processes per cell (default 7; --short 2)
#   --workers=   worker counts (default: the CPUs; --full/--short: 1, 2, 4, ... up to them)
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

mode_name=default
workers=""
samples=""
pin=()
do_build=1
jobs=2
for arg in "$@"; do
    case $arg in
    --short) mode_name=short ;;
    --full) mode_name=full ;;
    --workers=*) workers=${arg#--workers=} ;;
    --samples=*) samples=${arg#--samples=} ;;
    --no-pin) pin=(--no-pin) ;;
    --no-build) do_build=0 ;;
    --jobs=*) jobs=${arg#--jobs=} ;;
    -h | --help)
        awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"
        exit 0
        ;;
    *)
        echo "report.sh: unknown argument '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done
case $samples in
'' | [1-9] | [1-9][0-9]) ;;
*) echo "report.sh: --samples takes a count from 1 to 99" >&2; exit 2 ;;
esac

start=$(date +%s)
log() { printf '[report %3ds] %s\n' "$(($(date +%s) - start))" "$*"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# All CPUs' time and the part the hypervisor stole (/proc/stat, in ticks).
cputicks() { awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $9}' /proc/stat; }
load_before=$(loadavg)
ticks_before=$(cputicks)
log "mode $mode_name; load average $load_before"

if [ "$do_build" = 1 ]; then
    mkdir -p "$build"
    log "configure $build"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DWSCHED_BUILD_BENCH=ON \
        >"$build/report-configure.log" 2>&1 ||
        { cat "$build/report-configure.log" >&2; exit 1; }
    log "build (-j$jobs)"
    cmake --build "$build" -j"$jobs" --target wsched_bench wsched_openloop \
        >"$build/report-build.log" 2>&1 ||
        { tail -50 "$build/report-build.log" >&2; exit 1; }
fi
bench=$build/bench/wsched_bench
openloop=$build/bench/wsched_openloop
for exe in "$bench" "$openloop"; do
    [ -x "$exe" ] || { echo "report.sh: $exe is missing (build first)" >&2; exit 1; }
done

# Sizes, repetitions and cells per mode. Each entry of $workloads is
# name=filter: one process per design and entry.
ncpu=$(nproc)
case $mode_name in
short)
    mode=(--short --warmup=1)
    gb=(--benchmark_repetitions=3 --benchmark_min_time=0.01)
    workloads="fanout=^fanout/ fanout-1c=^fanout-1c/ fanout-tasks=^fanout-tasks/ singles=^singles/
        empty=^empty/ fib=^fib/ uts=^uts/ slots=^slots/ idle=^idle/ light=^light/"
    samples=${samples:-2}
    ;;
full)
    mode=()
    gb=(--benchmark_repetitions=5 --benchmark_min_time=0.2)
    workloads="fanout=^fanout/ fanout-1c=^fanout-1c/ fanout-tasks=^fanout-tasks/ singles=^singles/
        empty=^empty/ fib=^fib/ uts=^uts/ slots=^slots/ idle=^idle/ light=^light/"
    samples=${samples:-7}
    ;;
default)
    workers=${workers:-$ncpu}
    mode=()
    gb=(--benchmark_repetitions=5 --benchmark_min_time=0.1)
    workloads="fanout=^fanout/(1us|100ns)/ fanout-1c=^fanout-1c/ fanout-tasks=^fanout-tasks/(1us|100ns)/
        singles=^singles/ empty=^empty/(ext-b1|ext-b1000000|in-b1000000)/ fib=^fib/"
    samples=${samples:-7}
    ;;
esac
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
allocators=(glibc)
if [ "$mode_name" = full ]; then
    jemalloc=${WSCHED_BENCH_JEMALLOC:-$(ldconfig -p 2>/dev/null | awk '/libjemalloc\.so\.2 / && !f {print $NF; f = 1}')}
    if [ -n "$jemalloc" ]; then
        allocators+=(jemalloc)
    else
        log "libjemalloc.so.2 not found (apt-get install libjemalloc2): jemalloc pass skipped"
    fi
fi

# Only the report's own files: bench/gateway.sh keeps its runs here too.
mkdir -p "$results"
rm -rf "$results"/glibc "$results"/jemalloc "$results"/report.md "$results"/machine.txt \
    "$results"/micro.json "$results"/micro.txt "$results"/*.png
designs=$("$bench" --list-designs)
# The default report leaves thread per job out (a second a round creating
# 15,000 threads; --full has it).
[ "$mode_name" = default ] && designs=$(printf '%s\n' $designs | grep -vx tpj || true)
failed=0
for alloc in "${allocators[@]}"; do
    dir=$results/$alloc
    mkdir -p "$dir"
    preload=()
    [ "$alloc" = jemalloc ] && preload=(env "LD_PRELOAD=$jemalloc")
    # One process per design and workload: peak RSS, allocator state and
    # runtime thread pools start fresh for each.
    for d in $designs; do
        log "$alloc: steady state, design $d"
        for entry in $workloads; do
            w=${entry%%=*}
            filter=${entry#*=}
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

    # First burst: every fan-out cell (1 us and 100 ns, each model) in a
    # process of its own, the pool just created, one timed round without
    # warm-up; $samples processes per cell, taken round-robin over the cells
    # so that a slow phase of the machine spreads over all of them.
    cells=()
    for d in $designs; do
        while IFS= read -r name; do
            [ -n "$name" ] && cells+=("${name%%/iterations:*}")
        done < <("$bench" "${mode[@]}" --first-burst --designs="$d" \
            --benchmark_filter='^fanout(-1c|-tasks)?/(1us|100ns)/' --benchmark_list_tests 2>/dev/null || true)
    done
    log "$alloc: first burst, ${#cells[@]} cells x $samples processes"
    for ((k = 1; k <= samples; k++)); do
        for c in "${cells[@]}"; do
            d=$(echo "$c" | cut -d/ -f3)
            out=$dir/burst-$(echo "$c" | tr '/:' '__')-$k
            if ! "${preload[@]}" "$bench" "${mode[@]}" --first-burst --designs="$d" \
                --benchmark_filter="^$c/" --benchmark_out="$out.json" --benchmark_out_format=json \
                >"$out.txt" 2>&1; then
                log "$alloc: first burst $c FAILED (see $out.txt)"
                failed=1
            fi
            # wsched again with wsched_reserve(1000 request-shaped batches)
            # at pool creation, reported as the design wsched-reserve.
            [ "$d" = wsched ] || continue
            if ! "${preload[@]}" "$bench" "${mode[@]}" --first-burst --designs="$d" --reserve=1000 \
                --benchmark_filter="^$c/" --benchmark_out="$out-rsv.json" --benchmark_out_format=json \
                >"$out-rsv.txt" 2>&1; then
                log "$alloc: first burst $c with --reserve FAILED (see $out-rsv.txt)"
                failed=1
            fi
            sed -i 's|/wsched/workers|/wsched-reserve/workers|g' "$out-rsv.json"
        done
        log "$alloc: first burst, sample $k of $samples done"
    done

    [ "$mode_name" = default ] && continue
    log "$alloc: open loop"
    # Short: the largest worker count only; full: every count asked for (the
    # CPUs by default).
    ol=("${pin[@]}")
    if [ "$mode_name" = short ]; then
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

# Per-job overhead and the cost of each request-semantics feature (not in
# the default report). bench_micro is built here, after the suite ran: a
# failed build fails the report but spoils nothing else.
if [ "$mode_name" != default ] && [ "$do_build" = 1 ]; then
    log "build bench_micro"
    cmake --build "$build" -j"$jobs" --target bench_micro >>"$build/report-build.log" 2>&1 ||
        { log "bench_micro build FAILED (see $build/report-build.log)"; failed=1; }
fi
if [ "$mode_name" != default ] && [ -x "$build/bench_micro" ]; then
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
# The machine, for the report's header.
load_after=$(loadavg)
ticks_after=$(cputicks)
{
    echo "cpu=$( (lscpu 2>/dev/null || true) | awk -F': *' '/^Model name/ && !f {print $2; f = 1}')"
    echo "cpu_more=$( (lscpu 2>/dev/null || true) | awk -F': *' '/^CPU family/ {f = $2} /^Model:/ {m = $2}
        /^Hypervisor vendor/ {h = $2} /^L3 cache/ {l = $2}
        END {printf "family %s model %s%s%s", f, m, l ? ", L3 " l : "", h ? ", " h " guest" : ""}')"
    echo "cpu_proc=$(awk -F'[[:space:]]*: ' '/^model name/ && !f {print $2; f = 1}' /proc/cpuinfo)"
    echo "nproc=$ncpu"
    echo "kernel=$(uname -srm)"
    echo "mem=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "load_before=$load_before"
    echo "load_after=$load_after"
    echo "mode=$mode_name"
    echo "samples=$samples"
    echo "repetitions=$(printf '%s\n' "${gb[@]}" | sed -n 's/^--benchmark_repetitions=//p')"
    echo "bench_wall_s=$(($(date +%s) - start))"
    echo "steal_pct=$(echo "$ticks_before $ticks_after" |
        awk '{d = $3 - $1; if (d > 0) printf "%.1f", 100 * ($4 - $2) / d}')"
} >"$results/machine.txt"
log "report (load average $load_after)"
"$py" "$here/report.py" --results "$results" || failed=1
log "done: $results/report.md"
exit $failed
