#!/usr/bin/env bash
# The network fan-out benchmark: tests/examples/gateway.c's backend and
# gateway as separate processes on loopback, each gateway variant in turn
# (interleaved: every round runs every connection count and variant once),
# driven by wrk. Every HTTP request fans out 10-20 backend calls (seeded),
# each answered after --delay-us; a request's deadline is 1 s.
#
# usage: bench/gateway.sh [--short] [--build=DIR] [--duration=S] [--rounds=N]
#                         [--conns=100,1000] [--variants=wsched,threads,pool]
#                         [--workers=N] [--pool-threads=N] [--delay-us=US]
#                         [--backend-loops=N] [--wrk-threads=N] [--quiet=PCT]
#                         [--fail-pct=P] [--stall-pct=P] [--stall-ms=MS]
#                         [--attempt-timeout-ms=MS] [--hedge-ms=MS] [--hedge-pct=P]
#   --short        CI smoke: 2 s runs, one round, no warm-up (well under a minute)
#   --build=DIR    the build directory holding tests/example_gateway
#                  (default: $GATEWAY_BUILD, else build/)
#   --duration=S   seconds of each measured wrk run (default 10)
#   --rounds=N     rounds (default 1); the table gives every run, then the
#                  median per variant and connection count when N > 1
#   --conns=LIST   wrk connection counts (default 100,1000)
#   --variants=    gateway variants (default wsched,threads,pool); also
#                  wsched+policies: wsched with the backend's calls through a
#                  downstream (retries, budget, breaker: gateway_wsched.c)
#   --fail-pct=P   a degraded backend: each call attempt fails with P % chance
#                  (issue 11's scenario; default 0)
#   --stall-pct=P  a stalling backend: each call attempt that does not fail
#                  takes --stall-ms (default 2000) instead, with P % chance
#   --attempt-timeout-ms=MS, --hedge-ms=MS, --hedge-pct=P  wsched+policies:
#                  the per-attempt timeout (default 300), the hedge delay
#                  (default 0: none), adaptive at percentile P (default 0: fixed)
#   --workers=N    wsched workers (default 2)
#   --pool-threads=N  threads of the pool variant (default 64)
#   --delay-us=US  backend delay of every call (default 1000)
#   --backend-loops=N  backend epoll threads (default 1)
#   --wrk-threads=N    wrk -t (default 2)
#   --quiet=PCT    before each run wait (up to 3 minutes) until the machine is
#                  below PCT% busy over 2 s: a shared machine's other work
#                  shows in the table's "other" column either way
# Needs wrk (Debian: apt-get install -y wrk). Raw wrk output, the gateway's
# own counts and the table go to bench/results/gateway-<date>.txt.
# Exit status: 0, or 1 when a process failed or a run returned no figures
# (errors are reported in the table, not failed).
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${GATEWAY_BUILD:-$root/build}
duration=10
rounds=1
conns_list=100,1000
variants_list=wsched,threads,pool
workers=2
pool_threads=64
delay_us=1000
backend_loops=1
wrk_threads=2
warmup=1
quiet=0
fail_pct=0
stall_pct=0
stall_ms=2000
attempt_timeout_ms=300
hedge_ms=0
hedge_pct=0
for arg in "$@"; do
    case $arg in
    --short) duration=2 warmup=0 rounds=1 ;;
    --build=*) build=${arg#--build=} ;;
    --duration=*) duration=${arg#--duration=} ;;
    --rounds=*) rounds=${arg#--rounds=} ;;
    --conns=*) conns_list=${arg#--conns=} ;;
    --variants=*) variants_list=${arg#--variants=} ;;
    --workers=*) workers=${arg#--workers=} ;;
    --pool-threads=*) pool_threads=${arg#--pool-threads=} ;;
    --delay-us=*) delay_us=${arg#--delay-us=} ;;
    --backend-loops=*) backend_loops=${arg#--backend-loops=} ;;
    --wrk-threads=*) wrk_threads=${arg#--wrk-threads=} ;;
    --quiet=*) quiet=${arg#--quiet=} ;;
    --fail-pct=*) fail_pct=${arg#--fail-pct=} ;;
    --stall-pct=*) stall_pct=${arg#--stall-pct=} ;;
    --stall-ms=*) stall_ms=${arg#--stall-ms=} ;;
    --attempt-timeout-ms=*) attempt_timeout_ms=${arg#--attempt-timeout-ms=} ;;
    --hedge-ms=*) hedge_ms=${arg#--hedge-ms=} ;;
    --hedge-pct=*) hedge_pct=${arg#--hedge-pct=} ;;
    -h | --help)
        sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "gateway.sh: unknown argument '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

bin=$build/tests/example_gateway
if [ ! -x "$bin" ]; then
    echo "gateway.sh: no $bin: build it (make -C $build example_gateway) or pass --build=DIR" >&2
    exit 1
fi
if ! command -v wrk >/dev/null; then
    echo "gateway.sh: wrk not found (Debian: apt-get install -y wrk)" >&2
    exit 1
fi
# 1,000 connections fanning out 20 calls each: about 20,000 sockets a side.
ulimit -n "$(ulimit -Hn)"

mkdir -p "$here/results"
stamp=$(date +%Y%m%d-%H%M%S)
out=$here/results/gateway-$stamp.txt
tmp=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do # (only those not stopped yet)
        kill "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

IFS=, read -r -a conns_arr <<<"$conns_list"
IFS=, read -r -a variants_arr <<<"$variants_list"
clk=$(getconf CLK_TCK)

# Start "$@" in the background with stdout to $1's log; wait for its
# "listening on 127.0.0.1:PORT" line; sets $started_pid and $started_port.
start_server() {
    local log=$1
    shift
    : >"$log" # here, not in the child: the wait below must not read the last run's port
    "$@" >"$log" 2>&1 &
    started_pid=$!
    pids+=("$started_pid")
    local i line
    for ((i = 0; i < 200; i++)); do
        line=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" || true)
        if [ -n "$line" ]; then
            started_port=${line##*:}
            return 0
        fi
        if ! kill -0 "$started_pid" 2>/dev/null; then
            echo "gateway.sh: $* exited:" >&2
            cat "$log" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "gateway.sh: $* did not start listening" >&2
    return 1
}

stop_server() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" || true
    local p keep=()
    for p in "${pids[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    pids=("${keep[@]}")
}

# utime + stime of a process, in clock ticks.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
}

# Busy ticks of the whole machine (all CPUs: /proc/stat's cpu line less
# idle and iowait), then its softirq ticks: loopback TCP's receive work
# (and the wake-ups it makes) is accounted there, charged to no process.
system_busy() {
    local cpu user nice sys idle iowait irq softirq steal rest
    read -r cpu user nice sys idle iowait irq softirq steal rest </proc/stat
    echo $((user + nice + sys + irq + softirq + steal)) "$softirq"
}

# Busy and total ticks of the whole machine.
system_ticks() {
    local cpu user nice sys idle iowait irq softirq steal rest
    read -r cpu user nice sys idle iowait irq softirq steal rest </proc/stat
    echo $((user + nice + sys + irq + softirq + steal)) $((user + nice + sys + irq + softirq + steal + idle + iowait))
}

# --quiet: wait until the machine is below $quiet% busy over 2 s (at most
# 3 minutes); prints how busy it was when the run starts.
wait_quiet() {
    local i a0 t0 a1 t1 pct=0
    for ((i = 0; i < 90; i++)); do
        read -r a0 t0 <<<"$(system_ticks)"
        sleep 2
        read -r a1 t1 <<<"$(system_ticks)"
        pct=$(((a1 - a0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1)))
        [ "$pct" -lt "$quiet" ] && break
    done
    echo "$pct"
}

# A wrk latency figure (850.00us, 1.23ms, 2.00s) in ms.
to_ms() {
    awk -v v="$1" 'BEGIN {
        u = v; sub(/^[0-9.]+/, "", u); n = v + 0
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

{
    echo "# bench/gateway.sh $stamp on $(uname -n): $(nproc) CPUs, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# backend delay ${delay_us} us, ${backend_loops} backend loop(s), wsched workers ${workers}, pool threads ${pool_threads}"
    echo "# wrk -t${wrk_threads} -c<conns> -d${duration}s --latency --timeout 5s, ${warmup}s warm-up before each run; rounds ${rounds}"
} | tee "$out"

rows=()
failed=0
for ((round = 1; round <= rounds; round++)); do
    for c in "${conns_arr[@]}"; do
        for v in "${variants_arr[@]}"; do
            if [ "$quiet" -gt 0 ]; then
                echo "# (round $round, $v, $c: machine $(wait_quiet)% busy at the start)" >>"$out"
            fi
            # A fresh backend and gateway per run: no sockets or TIME_WAIT
            # carried over from the previous variant.
            start_server "$tmp/backend.log" "$bin" backend --loops "$backend_loops" || { failed=1; continue; }
            be_pid=$started_pid
            be_port=$started_port
            vargs=(--variant "$v")
            [ "$v" = wsched+policies ] && vargs=(--variant wsched --policies \
                --attempt-timeout-ms "$attempt_timeout_ms" --hedge-ms "$hedge_ms" \
                --hedge-pct "$hedge_pct")
            if ! start_server "$tmp/gw.log" "$bin" serve "${vargs[@]}" --backend-port "$be_port" \
                --workers "$workers" --pool-threads "$pool_threads" --delay-us "$delay_us" \
                --deadline-ms 1000 --fail-pct "$fail_pct" --stall-pct "$stall_pct" \
                --stall-ms "$stall_ms"; then
                failed=1
                stop_server "$be_pid"
                continue
            fi
            gw_pid=$started_pid
            url=http://127.0.0.1:$started_port/
            if [ "$warmup" -gt 0 ]; then
                wrk -t"$wrk_threads" -c"$c" -d"${warmup}s" --timeout 5s "$url" >/dev/null 2>&1 || true
            fi
            gw0=$(cpu_ticks "$gw_pid")
            be0=$(cpu_ticks "$be_pid")
            read -r sys0 sirq0 <<<"$(system_busy)"
            TIMEFORMAT='%U %S'
            { time wrk -t"$wrk_threads" -c"$c" -d"${duration}s" --latency --timeout 5s "$url" \
                >"$tmp/wrk.txt" 2>&1; } 2>"$tmp/wrk.time" || true
            gw1=$(cpu_ticks "$gw_pid")
            be1=$(cpu_ticks "$be_pid")
            read -r sys1 sirq1 <<<"$(system_busy)"
            stop_server "$gw_pid"
            stop_server "$be_pid"
            {
                echo
                echo "## round $round, $v, $c connections"
                cat "$tmp/wrk.txt"
                grep -e 'requests:' -e 'response' -e 'downstream' "$tmp/gw.log" || true
                grep -e 'calls answered' "$tmp/backend.log" || true
            } >>"$out"
            rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk.txt")
            p50=$(awk '$1 == "50%" {print $2}' "$tmp/wrk.txt")
            p99=$(awk '$1 == "99%" {print $2}' "$tmp/wrk.txt")
            sock=$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$tmp/wrk.txt")
            non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$tmp/wrk.txt")
            if [ -z "$rps" ] || [ -z "$p50" ] || [ -z "$p99" ]; then
                echo "gateway.sh: no figures from wrk for $v at $c connections:" >&2
                cat "$tmp/wrk.txt" >&2
                failed=1
                continue
            fi
            errors=$((${sock:-0} + ${non2xx:-0}))
            # Backend calls per request (warm-up included in both).
            be_calls=$(awk '/calls answered/ {print $2}' "$tmp/backend.log")
            reqs=$(awk '/requests in/ {print $1}' "$tmp/wrk.txt")
            cpr=$(awk -v c="${be_calls:-0}" -v r="${reqs:-0}" 'BEGIN {printf "%.1f", (r > 0 ? c / r : 0)}')
            gw_cpu=$(awk -v a="$gw0" -v b="$gw1" -v t="$clk" -v d="$duration" 'BEGIN {printf "%.0f", (b - a) / t / d * 100}')
            be_cpu=$(awk -v a="$be0" -v b="$be1" -v t="$clk" -v d="$duration" 'BEGIN {printf "%.0f", (b - a) / t / d * 100}')
            wrk_cpu=$(awk -v d="$duration" '{printf "%.0f", ($1 + $2) / d * 100}' "$tmp/wrk.time")
            sirq_cpu=$(awk -v a="$sirq0" -v b="$sirq1" -v t="$clk" -v d="$duration" 'BEGIN {printf "%.0f", (b - a) / t / d * 100}')
            # Everything else the machine ran meanwhile (other users' work).
            other_cpu=$(awk -v a="$sys0" -v b="$sys1" -v t="$clk" -v d="$duration" -v g="$gw_cpu" \
                -v e="$be_cpu" -v w="$wrk_cpu" -v q="$sirq_cpu" 'BEGIN {o = (b - a) / t / d * 100 - g - e - w - q; printf "%.0f", o < 0 ? 0 : o}')
            row=$(printf '%-8s %6s %6s %10.0f %9s %9s %8s %6s%% %6s%% %6s%% %6s%% %6s%% %9s' "$v" "$c" \
                "$round" "$rps" "$(to_ms "$p50")" "$(to_ms "$p99")" "$errors" "$gw_cpu" "$be_cpu" \
                "$wrk_cpu" "$sirq_cpu" "$other_cpu" "$cpr")
            rows+=("$row")
            echo "$row"
        done
    done
done

{
    echo
    echo "# variant   conns  round  requests/s  p50 (ms)  p99 (ms)   errors     gw     be    wrk   sirq  other calls/req"
    printf '%s\n' "${rows[@]}"
    if [ "$rounds" -gt 1 ]; then
        echo
        echo "# the median run (by requests/s) of $rounds rounds: variant conns requests/s p50 p99 errors"
        printf '%s\n' "${rows[@]}" | sort -k1,1 -k2,2n -k4,4n | awk -v r="$rounds" '
            { k = $1 " " $2; n[k]++; rps[k, n[k]] = $4; p50[k, n[k]] = $5; p99[k, n[k]] = $6; err[k, n[k]] = $7 }
            END { for (k in n) { m = int((n[k] + 1) / 2); printf "%-8s %6s %10.0f %9s %9s %8s\n", substr(k, 1, index(k, " ") - 1), substr(k, index(k, " ") + 1), rps[k, m], p50[k, m], p99[k, m], err[k, m] } }' | sort -k1,1 -k2,2n
    fi
    echo "# errors: wrk socket errors + non-2xx responses (502/504/503). gw, be, wrk: CPU of the gateway,"
    echo "# the backend and wrk, % of one CPU over the measured run; sirq: the machine's softirq time"
    echo "# (loopback TCP, charged to no process); other: the rest of its busy time (others' work)."
    echo "# calls/req: backend calls answered per request sent (warm-up included)."
    [ "$fail_pct" -gt 0 ] && echo "# a degraded backend: each call attempt failed with $fail_pct % chance."
    [ "$stall_pct" -gt 0 ] && echo "# a stalling backend: each call attempt took $stall_ms ms with $stall_pct % chance."
    echo "# wsched+policies: attempt timeout $attempt_timeout_ms ms, hedge after $hedge_ms ms (0: none)," \
        "percentile $hedge_pct (0: fixed)."
    echo "# $(nproc) CPUs = $(($(nproc) * 100))%"
} | tee -a "$out"
echo "gateway.sh: raw output in $out"
exit $failed
