#!/usr/bin/env bash
# Long stress (issue 7): builds a release build in build-stress/ and runs
#   1. the deque torture (tests/stress/test_deque_torture.c) to OPS
#      operations (push + pop + steal attempts),
#   2. the fan-out soak (tests/stress/soak.c) for SECONDS, RSS sampled and
#      required flat,
#   3. the stress tests test_park_wake, test_work_conserving,
#      test_policies_stress, test_destroy and test_pool_isolation, ROUNDS
#      times each,
# then prints a summary (ops and rate, hours, the RSS curve) and exits
# non-zero if any run failed. With --debug the same runs are repeated on a
# -DWSCHED_DEBUG=ON build (build-stress-debug/: invariant assertions, and
# the deque's and pool's delay points active with WSCHED_DEBUG_DELAY).
#
#   tools/stress.sh [--short] [--debug] [--ops N] [--soak SECONDS]
#                   [--rounds N] [--delay N] [--logs DIR]
#     --short         CI: a few seconds each (1e7 ops, 5 s soak, 2 rounds)
#     --ops N         torture operations (default 1e9)
#     --soak SECONDS  soak duration (default 3600)
#     --rounds N      rounds of the stress tests (default 100)
#     --debug         also run everything on the WSCHED_DEBUG build
#     --delay N       WSCHED_DEBUG_DELAY for that build: one point in N
#                     delays (default 100)
#     --logs DIR      where the logs go (default build-stress/stress-logs)
# Run it niced on a shared machine: nice -n 19 tools/stress.sh
set -euo pipefail
trap 'echo "$(basename "$0"): line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
cd "$(dirname "$0")/.."

ops=1e9
soak=3600
rounds=100
debug=0
delay=100
logs=build-stress/stress-logs
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --short) ops=1e7 soak=5 rounds=2 ;;
    --debug) debug=1 ;;
    --ops) ops=$2; shift ;;
    --soak) soak=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --delay) delay=$2; shift ;;
    --logs) logs=$2; shift ;;
    -h|--help) usage ;;
    *) echo "stress.sh: unknown argument: $1" >&2; usage ;;
  esac
  shift
done
case "$soak$rounds$delay" in *[!0-9]*) echo "stress.sh: --soak, --rounds, --delay take integers" >&2; exit 2 ;; esac
mkdir -p "$logs"
stress_tests=(test_park_wake test_work_conserving test_policies_stress test_destroy test_pool_isolation
  test_waits test_waits_stress test_wakers_stress)

# The soak needs its CMake target (tests/CMakeLists.txt).
if ! grep -q 'stress/soak.c' tests/CMakeLists.txt; then
  echo "stress.sh: tests/CMakeLists.txt has no soak target; add: wsched_test(soak stress/soak.c)" >&2
  exit 1
fi

gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
build() { # dir, extra cmake args...
  local dir=$1; shift
  echo "=== configure and build $dir"
  cmake -S . -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DWSCHED_BUILD_TESTS=ON \
    -DWSCHED_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)" --target test_deque_torture soak "${stress_tests[@]}"
}

failures=()
summary=()
t_start=$(date +%s)

# run NAME LOG CMD...: the command's output to the terminal and LOG; a
# failure is recorded, not fatal (the other runs still run).
run() {
  local name=$1 log=$2; shift 2
  echo "=== $name: $*"
  local t0 rc=0
  t0=$(date +%s)
  "$@" >"$log" 2>&1 &
  local pid=$!
  # Follow the log while it runs (progress lines of the long runs).
  tail -n +1 -f "$log" --pid="$pid" || true
  wait "$pid" || rc=$?
  local dt=$(( $(date +%s) - t0 ))
  if [ "$rc" -ne 0 ]; then
    echo "=== $name FAILED (exit $rc after ${dt} s; log $log)"
    failures+=("$name (exit $rc, $log)")
  fi
  return 0
}

# The figures of one variant, from its logs.
figures() { # variant label, log prefix
  local label=$1 p=$2 line
  line=$(grep -E '^test_deque_torture: [0-9]+ ops in' "$p-torture.log" || true)
  if [ -n "$line" ]; then
    summary+=("$label torture: $(echo "$line" | sed -E 's/^test_deque_torture: ([0-9]+ ops in [0-9.]+ s \([0-9.]+ M ops\/s\)).*/\1/')")
  fi
  line=$(grep -E '^soak: [0-9]+ s, [0-9]+ batches' "$p-soak.log" || true)
  if [ -n "$line" ]; then
    summary+=("$label soak: $(echo "$line" | sed -E 's/^soak: ([0-9]+) s, ([0-9]+ batches).*/\1 s (\2)/')")
  fi
  line=$(grep -E '^soak: RSS KiB' "$p-soak.log" || true)
  [ -z "$line" ] || summary+=("$label soak ${line#soak: }")
  local curve
  curve=$(sed -nE 's/^\[ *([0-9.]+) s\] rss +([0-9]+) KiB.*/\2/p' "$p-soak.log" | tr '\n' ' ')
  [ -z "$curve" ] || summary+=("$label soak RSS curve (KiB, one sample per interval): $curve")
}

variant() { # label, build dir, env...
  local label=$1 dir=$2; shift 2
  local p="$logs/$label"
  run "$label torture ($ops ops)" "$p-torture.log" env "$@" "$dir/tests/test_deque_torture" "$ops"
  run "$label soak ($soak s)" "$p-soak.log" env "$@" "$dir/tests/soak" "$soak"
  local r t rc fails=0
  : >"$p-stress.log"
  echo "=== $label stress tests: ${stress_tests[*]}, $rounds rounds (log $p-stress.log)"
  for ((r = 1; r <= rounds; r++)); do
    for t in "${stress_tests[@]}"; do
      rc=0
      echo "--- round $r: $t" >>"$p-stress.log"
      env "$@" "$dir/tests/$t" >"$p-one.log" 2>&1 || rc=$?
      cat "$p-one.log" >>"$p-stress.log"
      if [ "$rc" -ne 0 ]; then
        echo "=== $label $t FAILED in round $r (exit $rc; log $p-stress.log); its last lines:"
        tail -n 20 "$p-one.log" | sed 's/^/    | /'
        failures+=("$label $t round $r (exit $rc, $p-stress.log)")
        fails=$((fails + 1))
      fi
    done
    if [ $((r % 10)) -eq 0 ] || [ "$r" -eq "$rounds" ]; then
      echo "    round $r/$rounds done, $fails failed"
    fi
  done
  figures "$label" "$p"
  summary+=("$label stress tests: $rounds rounds x ${#stress_tests[@]} tests, $fails failed")
}

build build-stress
variant release build-stress
if [ "$debug" -eq 1 ]; then
  build build-stress-debug -DWSCHED_DEBUG=ON
  variant debug build-stress-debug WSCHED_DEBUG_DELAY="$delay"
fi

t_total=$(( $(date +%s) - t_start ))
echo
echo "=== stress summary ($(awk -v s="$t_total" 'BEGIN { printf "%.2f h", s / 3600 }'), logs in $logs)"
for s in "${summary[@]}"; do echo "  $s"; done
if [ ${#failures[@]} -gt 0 ]; then
  echo "=== FAILED:"
  for f in "${failures[@]}"; do echo "  $f"; done
  exit 1
fi
echo "=== stress: all passed"
