#!/usr/bin/env bash
# Instructions per job (a batch of empty jobs), per task (fib, every call
# a task) and per waiting job (one waker wait) on one worker, from
# callgrind's exact counts: the difference of
# two sizes divided by the difference in jobs (tasks), so set-up and
# teardown cancel out. Repeatable whatever the machine's load.
#   tools/callgrind.sh [BUILD_DIR]     (default build-rel; needs wsched_overhead)
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
build=${1:-build-rel}
exe=$build/wsched_overhead
[ -x "$exe" ] || { echo "callgrind.sh: $exe missing (build the wsched_overhead target)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() { # total instructions of one run
    valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file="$tmp/cg.out" "$exe" "$@" \
        >/dev/null 2>"$tmp/cg.err"
    awk '/^summary:/ {print $2}' "$tmp/cg.out"
}
e1=$(count empty 1000000)
e2=$(count empty 2000000)
f1=$(count fib 24)
f2=$(count fib 25)
w1=$(count wake 100000)
w2=$(count wake 200000)
r1=$(count range 1000000)
r2=$(count range 2000000)
s1=$(count single 20000)
s2=$(count single 40000)
p1=$(count post 20000)
p2=$(count post 40000)
# calls of fib(n): 2*F(n+1) - 1, so fib(25) makes 242785 and fib(24) 150049.
awk -v e1="$e1" -v e2="$e2" -v f1="$f1" -v f2="$f2" -v w1="$w1" -v w2="$w2" \
    -v r1="$r1" -v r2="$r2" -v s1="$s1" -v s2="$s2" -v p1="$p1" -v p2="$p2" 'BEGIN {
    printf "instructions per empty job: %.2f  (10^6 vs 2x10^6 jobs)\n", (e2 - e1) / 1000000
    printf "instructions per waiting job (one self-woken waker wait): %.2f  (10^5 vs 2x10^5 jobs)\n", (w2 - w1) / 100000
    printf "instructions per fib task:  %.2f  (fib(24) vs fib(25))\n", (f2 - f1) / (242785 - 150049)
    printf "instructions per empty range job: %.2f  (10^6 vs 2x10^6 jobs, default grain)\n", (r2 - r1) / 1000000
    printf "instructions per single-job submit, run, wait and free from outside: %.1f  (2x10^4 vs 4x10^4, all threads, spinning included)\n", (s2 - s1) / 20000
    printf "instructions per single job posted, run and waited for from outside: %.1f  (wsched_post; 2x10^4 vs 4x10^4, all threads, spinning included)\n", (p2 - p1) / 20000
}'
